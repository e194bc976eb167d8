// The daemon as a command and a mount helper (DESIGN.md §2): --help, --version,
// bad options, config=FILE, mount(8) through mount.fuse.vineyardfs, and SIGTERM.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "mount_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

TEST(MountHelper, HelpPrintsUsageAndExitsZero) {
  for (const char* flag : {"--help", "-h"}) {
    CommandResult r = RunCommand({VINEYARDFS_BIN, flag});
    EXPECT_EQ(r.exit_code, 0) << flag;
    EXPECT_NE(r.output.find("usage: vineyardfs"), std::string::npos) << r.output;
    for (const char* opt : {"size=", "arena=", "state=", "durability=", "config="}) {
      EXPECT_NE(r.output.find(opt), std::string::npos) << "usage does not mention " << opt;
    }
  }
}

TEST(MountHelper, VersionPrintsVersionAndExitsZero) {
  CommandResult r = RunCommand({VINEYARDFS_BIN, "--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output.rfind("vineyardfs ", 0), 0u) << r.output;
  EXPECT_NE(r.output.find(VINEYARDFS_VERSION), std::string::npos) << r.output;
  // libfuse's package version as fuse_pkgversion() gives it ("3.14.0"), not the
  // API number fuse_version() gives (314).
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\(libfuse 3\.[0-9]+(\.[0-9]+)?\))")))
      << r.output;
}

TEST(MountHelper, BadOptionExitsTwoWithAMessage) {
  const std::string nowhere = "/tmp/vyit-no-such-mountpoint";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"-o", "bogus=1"}, "bogus"},
      {{"-o", "durability=maybe"}, "durability"},
      {{"-o", "size=12Q"}, "size"},
      {{"-o", "size=1K"}, "size"},
      {{"-o", "instance=0"}, "instance"},
      {{"--frobnicate"}, "frobnicate"},
      {{"-o", "config=/nonexistent/vineyardfs.conf"}, "config"},
      {{"-o", "listen=udp://1.2.3.4:5"}, "tcp://HOST:PORT"},
      {{"-o", "listen=65535"}, "port must be 1..65534"},
      {{"-o", "peer=tcp://127.0.0.1"}, "host:port"},
      {{"-o", "listen=7000,peer=tcp://127.0.0.1:7000"}, "own listen endpoint"},
      {{"-o", "peer=7000,peer=tcp://127.0.0.1:7000"}, "given twice"},
      {{"-o", "listen=7000,curve_secret=/tmp/k.key"}, "go together"},
      {{"-o", "heartbeat_ms=1"}, "heartbeat_ms"},
      {{"-o", "size=64M,reserve=33M"}, "more than half of size"},
      {{"-o", "reserve=lots"}, "size 'lots'"},
  };
  for (auto& c : cases) {
    std::vector<std::string> argv = {VINEYARDFS_BIN, "vineyard", nowhere};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    CommandResult r = RunCommand(argv);
    SCOPED_TRACE(c.args.back());
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << r.output;
  }
  CommandResult r = RunCommand({VINEYARDFS_BIN, "vineyard"});
  EXPECT_EQ(r.exit_code, 2) << "a missing mountpoint: " << r.output;
  EXPECT_FALSE(IsMounted(nowhere));
}

class MountHelperMounted : public MountTest {};

TEST_F(MountHelperMounted, ConfigFileIsHonouredAndOptionsOverrideIt) {
  Unmount();
  WipeArena();
  const std::string conf = tmp() + "/vineyardfs.conf";
  {
    std::ofstream f(conf);
    f << "# test config\nsize = 96M\ndurability=sync   # trailing comment\n";
  }
  ASSERT_TRUE(Mount("config=" + conf));
  json st = ReadStatus();
  EXPECT_EQ(st["arena"]["size"], 96ull << 20);
  EXPECT_EQ(st["state"]["durability"], "sync");
  EXPECT_EQ(st["options"]["size"], std::to_string(96ull << 20));
  EXPECT_EQ(st["options"]["durability"], "sync");
  EXPECT_EQ(st["options"]["config"], conf);
  Unmount();
  WipeArena();
  ASSERT_TRUE(Mount("config=" + conf + ",durability=none"));
  st = ReadStatus();
  EXPECT_EQ(st["arena"]["size"], 96ull << 20) << "size still from the file";
  EXPECT_EQ(st["state"]["durability"], "none") << "-o overrides the file";
}

TEST_F(MountHelperMounted, SigtermUnmountsCleanly) {
  std::string id = WriteNew("a", "before sigterm");
  ASSERT_TRUE(IsBlobId(id));
  pid_t pid = ReleaseDaemon();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  bool exited = PollUntil([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 10000);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(exited) << "the daemon did not exit within 10 s of SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_FALSE(IsMounted(mnt())) << "the mount point is still in /proc/mounts";
  // A clean stop loses nothing.
  ASSERT_TRUE(Remount());
  EXPECT_EQ(ChildRead(ObjPath(id, "data")), "before sigterm");
}

// The pids of processes whose command line has `arg` as one argument.
std::vector<pid_t> PidsWithArg(const std::string& arg) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t pos = 0;
    while (pos < cmd.size()) {
      size_t nul = cmd.find('\0', pos);
      if (nul == std::string::npos) nul = cmd.size();
      if (cmd.compare(pos, nul - pos, arg) == 0 && cmd.find("vineyardfs") != std::string::npos) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
      pos = nul + 1;
    }
  }
  closedir(d);
  return out;
}

// Unmounts what mount(8) mounted and waits for that daemon, even if the test failed.
struct HelperMountGuard {
  std::string mnt, arena, link;
  bool created_link = false;
  ~HelperMountGuard() {
    auto pids = PidsWithArg(mnt);
    if (IsMounted(mnt)) umount2(mnt.c_str(), MNT_DETACH);
    for (pid_t pid : pids) {
      if (!PollUntil([&] { return kill(pid, 0) != 0; }, 10000)) {
        ADD_FAILURE() << "daemon " << pid << " (started by mount(8) here) did not exit; killing it";
        kill(pid, SIGKILL);
      }
    }
    for (int i = 0; i < 8 && IsMounted(arena); ++i) umount2(arena.c_str(), MNT_DETACH);
    if (created_link) unlink(link.c_str());
  }
};

TEST_F(MountHelperMounted, MountDashTUsesTheHelper) {
  HelperMountGuard g;
  g.mnt = tmp() + "/mnt2";
  g.arena = tmp() + "/arena2";
  const std::string state2 = tmp() + "/state2";
  for (auto& d : {g.mnt, g.arena, state2}) ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
  g.link = "/sbin/mount.fuse.vineyardfs";
  struct stat sb;
  if (lstat(g.link.c_str(), &sb) != 0) {
    ASSERT_EQ(symlink(VINEYARDFS_BIN, g.link.c_str()), 0) << strerror(errno);
    g.created_link = true;
  }
  CommandResult r = RunCommand({"/usr/bin/mount", "-t", "fuse.vineyardfs", "vineyard", g.mnt, "-o",
                                "size=64M,arena=" + g.arena + ",state=" + state2});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Ready when mount(8) returns: no polling.
  std::string text;
  {
    std::ifstream in(g.mnt + "/status.json");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  json st = json::parse(text, nullptr, false);
  ASSERT_FALSE(st.is_discarded()) << "status.json right after mount: " << text;
  EXPECT_EQ(st["arena"]["size"], 64ull << 20);
  EXPECT_EQ(st["arena"]["path"], g.arena);
  bool fuse_type = false;
  {
    std::ifstream mounts("/proc/mounts");
    std::string dev, point, type;
    std::string line;
    while (std::getline(mounts, line)) {
      std::istringstream f(line);
      f >> dev >> point >> type;
      if (point == g.mnt) fuse_type = type == "fuse.vineyardfs" && dev == "vineyard";
    }
  }
  EXPECT_TRUE(fuse_type) << "/proc/mounts should show 'vineyard <mnt> fuse.vineyardfs'";
  // It works: an object written there reads back from another process.
  int fd = open((g.mnt + "/new/x").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(write(fd, "helper", 6), 6);
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(ChildRead(g.mnt + "/new/x/data"), "helper");
  // umount(8) stops the daemon.
  auto pids = PidsWithArg(g.mnt);
  EXPECT_EQ(pids.size(), 1u);
  r = RunCommand({"/usr/bin/umount", g.mnt});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (pid_t pid : pids) {
    EXPECT_TRUE(PollUntil([&] { return kill(pid, 0) != 0; }, 10000)) << "daemon survived umount";
  }
  EXPECT_FALSE(IsMounted(g.mnt));
}

}  // namespace
}  // namespace vyit
