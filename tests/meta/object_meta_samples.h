// Sample ids shared by the tests of meta/object_meta.cc (object_meta_test.cc,
// object_meta_record_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "meta/object_meta.h"

namespace vineyard {

using ojson = nlohmann::ordered_json;

const char* kA = "o0001000000000003";
const char* kB = "o8001000000000001";

}  // namespace vineyard
