// The fixture of the mount-level tests of the arrow plugin (arrow_test.cc,
// arrow_input_test.cc): a mount with the arrow plugin, and Arrow JS (the npm package
// apache-arrow, pinned in tests/arrow_js/package-lock.json and installed into
// tests/arrow_js/ by tools/setup.sh or, if missing, by these tests with `npm ci`).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>

#include "arrow_format_generated.h"
#include "arrow_ipc.h"
#include "mount_fixture.h"

namespace vyit {

using nlohmann::json;

const std::string kJs = std::string(TESTS_SOURCE_DIR) + "/arrow_js";

template <typename T>
inline std::string Bytes(std::initializer_list<T> v) {
  std::string s;
  for (T x : v) s.append(reinterpret_cast<const char*>(&x), sizeof x);
  return s;
}

class Arrow : public MountTest {
 protected:
  // Installs Arrow JS from the lockfile once; ctest runs each test in its own process,
  // two at a time, so the install is serialised by a lock file next to package.json.
  // The marker is written once `npm ci` has finished (a package's own files appear while
  // it is still unpacking), and only looked at under the lock.
  static void SetUpTestSuite() {
    const std::string marker = kJs + "/node_modules/.vineyardfs-installed";
    int lock = open((kJs + "/.install.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    ASSERT_GE(lock, 0) << strerror(errno);
    flock(lock, LOCK_EX);
    CommandResult r{0, ""};
    if (access(marker.c_str(), R_OK) != 0) {
      r = RunCommand({"/usr/bin/npm", "ci", "--prefix", kJs, "--no-audit", "--no-fund"}, 280);
      if (r.exit_code == 0) close(open(marker.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    }
    close(lock);  // releases the lock
    ASSERT_EQ(r.exit_code, 0) << "npm ci in tests/arrow_js failed:\n" << r.output;
  }
  // The Arrow file at `path` as Arrow JS reads it (tests/arrow_js/read.mjs).
  json ReadWithArrowJs(const std::string& path) {
    auto r = RunCommand({"/usr/bin/node", kJs + "/read.mjs", path}, 120);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    json j = json::parse(r.output, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.output;
    return j;
  }
  static std::string Error(const std::string& path) {
    char buf[4096];
    ssize_t n = getxattr(path.c_str(), "user.vineyard.error", buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
  }
  std::string Blob(const std::string& name, const std::string& bytes) {
    return WriteNew(name + ".blob", bytes);
  }
  // A 1-D Tensor in Vineyard's layout (what Vineyard's and our Python clients write).
  json TensorMeta(const std::string& descr, const std::string& name, uint64_t n,
                  const std::string& blob) {
    return {{"typename", "vineyard::Tensor<" + name + ">"},
            {"value_type_", name},
            {"value_type_meta_", descr},
            {"shape_", "[" + std::to_string(n) + "]"},
            {"partition_index_", "[]"},
            {"order_", "\"C\""},
            {"buffer_", {{"id", blob}}}};
  }
  // The plugin's accounting of the last resolve of `view` of `id` in the daemon log:
  // {generated, ranged, ranges}; all -1 if there is none.
  std::vector<long long> Accounting(const std::string& view, const std::string& id) {
    std::ifstream in(tmp() + "/daemon.log");
    std::string line;
    std::vector<long long> out{-1, -1, -1};
    const std::regex re("arrow: " + view + " of " + id +
                        ": ([0-9]+) bytes generated, ([0-9]+) bytes in ([0-9]+) blob ranges");
    std::smatch m;
    while (std::getline(in, line)) {
      if (std::regex_search(line, m, re))
        out = {std::stoll(m[1]), std::stoll(m[2]), std::stoll(m[3])};
    }
    return out;
  }
  std::string View(const std::string& id, const std::string& file) {
    return ObjPath(id, "views/" + file);
  }
};

}  // namespace vyit
