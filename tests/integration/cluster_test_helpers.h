// Helpers of the cluster tests on three real daemons (cluster_test.cc,
// cluster_names_test.cc, cluster_join_test.cc) and their fixture, Cluster.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "cluster_fixture.h"

namespace vyit {

using nlohmann::json;

inline std::string PairJson(const std::string& a, const std::string& b, const std::string& extra = "") {
  return R"({"typename":"vineyard::Pair","first_":{"id":")" + a + R"("},"second_":{"id":")" + b +
         "\"}" + extra + "}";
}

inline bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

inline double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class Cluster : public ClusterTest {};

}  // namespace vyit
