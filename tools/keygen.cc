// vyctl keygen: a CurveZMQ key pair for a cluster node (DESIGN.md §7).
//
//   vyctl keygen PATH [--endpoint ENDPOINT]
//
// writes PATH.key (mode 0600: the secret key, then "public <key>") for the node's
// curve_secret=, and PATH.pub (mode 0644: the public key, then the endpoint the node
// listens on) to copy into every node's curve_peers= directory. Nothing is
// overwritten. The files and the keys are meta/curve.h's; this is the command line.
#include "tools/keygen.h"

#include <iostream>

#include "meta/curve.h"

namespace vineyard {

int GenerateKeyPair(const std::string& path, const std::string& endpoint) {
  auto files = WriteKeyPair(path, endpoint);
  if (!files.ok()) {
    std::cerr << "vyctl: keygen: " << files.status().message() << "\n";
    return 1;
  }
  std::cout << "secret key: " << files->secret_file << "  (curve_secret=" << files->secret_file
            << ")\n"
            << "public key: " << files->public_file
            << "  (copy into every node's curve_peers= directory)\n";
  return 0;
}

}  // namespace vineyard
