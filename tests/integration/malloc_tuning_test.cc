// The daemon runs with malloc on transparent huge pages (tools/malloc_tuning.h): it
// re-executes itself once with glibc.malloc.hugetlb=1 added to GLIBC_TUNABLES, keeps
// what the caller had there, and leaves both alone when told to (VINEYARDFS_HUGE_MALLOC=0)
// or when the caller already chose. What a process was started with is in
// /proc/<pid>/environ (the environment of its last exec), so the daemon's tells whether
// the re-exec happened and with what.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mount_fixture.h"

namespace vyit {
namespace {

// Restores one environment variable of the test process when it goes out of scope.
class EnvVar {
 public:
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~EnvVar() {
    if (had_) {
      setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

std::vector<std::string> StartEnvironment(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/environ");
  std::vector<std::string> out;
  for (std::string v; std::getline(f, v, '\0');) out.push_back(v);
  return out;
}

// The environment block, its entries each ended by '\n' and begun by one.
std::string RawEnvironment(pid_t pid) {
  std::string out = "\n";
  for (auto& v : StartEnvironment(pid)) out += v + "\n";
  return out;
}

// The value of `name` in the environment the daemon was started (last exec'd) with;
// "<unset>" if absent.
std::string StartedWith(pid_t pid, const std::string& name) {
  for (auto& v : StartEnvironment(pid)) {
    if (v.compare(0, name.size() + 1, name + "=") == 0) return v.substr(name.size() + 1);
  }
  return "<unset>";
}

class MallocTuning : public MountTest {
 protected:
  void SetUp() override {}  // each test mounts with its own environment
};

TEST_F(MallocTuning, TheDaemonRunsWithHugePageMallocAndKeepsTheCallersTunables) {
  {
    EnvVar t("GLIBC_TUNABLES", nullptr), off("VINEYARDFS_HUGE_MALLOC", nullptr);
    MountTest::SetUp();
    if (HasFatalFailure()) return;
    EXPECT_EQ(StartedWith(daemon_pid(), "GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1");
    // The mark of the re-exec: the caller had no GLIBC_TUNABLES, restored after it.
    EXPECT_EQ(StartedWith(daemon_pid(), "VINEYARDFS_MALLOC_TUNED"), "-");
    EXPECT_FALSE(WriteNew("a", "bytes").empty());
    Unmount();
  }
  {
    EnvVar t("GLIBC_TUNABLES", "glibc.malloc.arena_max=4"), off("VINEYARDFS_HUGE_MALLOC", nullptr);
    ASSERT_TRUE(Remount());
    // glibc (2.36) ends each tunable it parses with a NUL written over the ':' in the
    // environment block itself, so the block reads "...arena_max=4", NUL, "glibc...".
    std::string raw = RawEnvironment(daemon_pid());
    EXPECT_TRUE(raw.find("\nGLIBC_TUNABLES=glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1\n") !=
                    std::string::npos ||
                raw.find("\nGLIBC_TUNABLES=glibc.malloc.arena_max=4\nglibc.malloc.hugetlb=1\n") !=
                    std::string::npos)
        << raw;
    EXPECT_EQ(StartedWith(daemon_pid(), "VINEYARDFS_MALLOC_TUNED"), "=glibc.malloc.arena_max=4");
    EXPECT_EQ(ListDir(Path("objects")).size(), 1u);  // the remount found the object
  }
}

TEST_F(MallocTuning, NoReexecWhenTurnedOffOrWhenTheCallerChose) {
  {
    EnvVar t("GLIBC_TUNABLES", nullptr), off("VINEYARDFS_HUGE_MALLOC", "0");
    MountTest::SetUp();
    if (HasFatalFailure()) return;
    EXPECT_EQ(StartedWith(daemon_pid(), "GLIBC_TUNABLES"), "<unset>");
    EXPECT_EQ(StartedWith(daemon_pid(), "VINEYARDFS_MALLOC_TUNED"), "<unset>");
    Unmount();
  }
  {
    EnvVar t("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0"), off("VINEYARDFS_HUGE_MALLOC", nullptr);
    ASSERT_TRUE(Remount());
    EXPECT_EQ(StartedWith(daemon_pid(), "GLIBC_TUNABLES"), "glibc.malloc.hugetlb=0");
    EXPECT_EQ(StartedWith(daemon_pid(), "VINEYARDFS_MALLOC_TUNED"), "<unset>");
  }
}

}  // namespace
}  // namespace vyit
