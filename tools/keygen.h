// vyctl keygen (tools/keygen.cc).
#pragma once

#include <string>

namespace vineyard {

// Writes PATH.key and PATH.pub; returns the exit code (errors printed to stderr).
int GenerateKeyPair(const std::string& path, const std::string& endpoint);

}  // namespace vineyard
