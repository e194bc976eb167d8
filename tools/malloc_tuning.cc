#include "tools/malloc_tuning.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace vineyard {
namespace {

constexpr char kTunables[] = "GLIBC_TUNABLES";
constexpr char kHugetlb[] = "glibc.malloc.hugetlb";
// Set across the exec: "-" when the caller had no GLIBC_TUNABLES, else "=" + its value.
constexpr char kMark[] = "VINEYARDFS_MALLOC_TUNED";

void Restore(const char* mark) {
  if (mark[0] == '=') {
    setenv(kTunables, mark + 1, 1);
  } else {
    unsetenv(kTunables);
  }
}

}  // namespace

void ReexecWithHugePageMalloc(char** argv) {
  if (const char* mark = std::getenv(kMark)) {  // the re-executed daemon: tunables read
    std::string saved = mark;
    Restore(saved.c_str());
    unsetenv(kMark);
    return;
  }
  const char* off = std::getenv("VINEYARDFS_HUGE_MALLOC");
  if (off && std::strcmp(off, "0") == 0) return;
  const char* had = std::getenv(kTunables);
  if (had && std::strstr(had, kHugetlb)) return;  // the operator chose
  std::string mark = had ? std::string("=") + had : std::string("-");
  std::string tunables = had && *had ? std::string(had) + ":" + kHugetlb + "=1"
                                      : std::string(kHugetlb) + "=1";
  setenv(kMark, mark.c_str(), 1);
  setenv(kTunables, tunables.c_str(), 1);
  execv("/proc/self/exe", argv);
  Restore(mark.c_str());  // the exec failed: run as we are
  unsetenv(kMark);
}

}  // namespace vineyard
