// Mounting is safe (tools/mount_safety.h): the daemon refuses a mount point that is a
// vineyardfs mount already, live or dead, and a state= that another daemon serves,
// at once and saying what to do; a mount that fails leaves nothing behind (no arena
// tmpfs, no directories, no lock file). The log (meta/log.h): log=FILE, the default
// file without syslog, timestamps and levels on every line, -d's request trace.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "mount_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits up to `ms` for our child `pid`: its exit code, 128+signal, or -1 on timeout.
int WaitWithTimeoutMs(pid_t pid, int ms) {
  int status = 0;
  if (!PollUntil([&] { return waitpid(pid, &status, WNOHANG) == pid; }, ms)) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Mounts of `type` on exactly `point`, from /proc/mounts.
int MountsAt(const std::string& point, const std::string& type) {
  std::ifstream in("/proc/mounts");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string dev, p, t;
    f >> dev >> p >> t;
    n += p == point && t == type;
  }
  return n;
}

// A daemon started in the background (vineyardfs returns once it is mounted): found
// through the pid in its state's lock file, unmounted and waited for even when the
// test fails.
struct BackgroundMount {
  std::string mnt, arena, state;
  pid_t pid = -1;
  ~BackgroundMount() { Stop(); }
  std::vector<std::string> Argv(const std::string& extra) const {
    std::string opts = "size=64M,arena=" + arena + ",state=" + state;
    if (!extra.empty()) opts += "," + extra;
    return {VINEYARDFS_BIN, "vineyard", mnt, "-o", opts};
  }
  // Runs vineyardfs; on success remembers the daemon's pid.
  CommandResult Start(const std::string& extra = "") {
    for (auto& d : {mnt, state}) mkdir(d.c_str(), 0755);
    CommandResult r = RunCommand(Argv(extra));
    if (r.exit_code == 0) pid = std::atoi(ReadFile(state + "/vineyardfs.pid").c_str());
    return r;
  }
  void Stop() {
    if (IsMounted(mnt)) umount2(mnt.c_str(), MNT_DETACH);
    if (pid > 0 && !PollUntil([&] { return kill(pid, 0) != 0; }, 10000)) {
      ADD_FAILURE() << "daemon " << pid << " did not exit after its unmount; killing it";
      kill(pid, SIGKILL);
    }
    pid = -1;
    for (int i = 0; i < 4 && IsMounted(arena); ++i) umount2(arena.c_str(), MNT_DETACH);
  }
};

class MountSafety : public MountTest {
 protected:
  BackgroundMount Other(const std::string& name) {
    BackgroundMount b;
    b.mnt = tmp() + "/" + name + "-mnt";
    b.arena = tmp() + "/" + name + "-arena";
    b.state = tmp() + "/" + name + "-state";
    return b;
  }
};

TEST_F(MountSafety, RefusesALiveVineyardfsMountAndSaysWhatToDo) {
  BackgroundMount b = Other("second");
  b.mnt = mnt();
  CommandResult r = RunCommand(b.Argv(""));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("already a vineyardfs mount"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fusermount3 -u " + mnt()), std::string::npos) << r.output;
  EXPECT_EQ(MountsAt(mnt(), "fuse.vineyardfs"), 1) << "mounted twice";
  EXPECT_FALSE(Exists(b.state)) << "a refused mount created its state";
  EXPECT_FALSE(Exists(b.arena)) << "a refused mount created its arena";
  EXPECT_FALSE(ReadStatus().empty()) << "the first mount still serves";
}

TEST_F(MountSafety, RefusesADeadVineyardfsMountUntilItIsUnmountedOnce) {
  const std::string id = WriteNew("kept", "survives kill -9");
  ASSERT_TRUE(IsBlobId(id));
  pid_t pid = ReleaseDaemon();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  struct statfs sfs;  // (stat may be answered from the attribute cache)
  ASSERT_NE(statfs(mnt().c_str(), &sfs), 0);
  ASSERT_EQ(errno, ENOTCONN) << "a dead FUSE mount answers ENOTCONN";

  CommandResult r = RunCommand(
      {VINEYARDFS_BIN, "vineyard", mnt(), "-o", "size=64M,arena=" + arena() + ",state=" + state()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("dead vineyardfs mount"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fusermount3 -u " + mnt()), std::string::npos) << r.output;
  EXPECT_EQ(MountsAt(mnt(), "fuse.vineyardfs"), 1) << "mounted over the dead mount";

  // The way out the message gives: one unmount, and the next mount finds everything.
  r = RunCommand({"/usr/bin/fusermount3", "-u", mnt()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(MountsAt(mnt(), "fuse.vineyardfs"), 0);
  ASSERT_TRUE(Remount());
  EXPECT_EQ(ChildRead(ObjPath(id, "data")), "survives kill -9");
}

TEST_F(MountSafety, ASecondDaemonOnTheSameStateIsRefusedAtOnce) {
  BackgroundMount b = Other("second");
  b.state = state();
  mkdir(b.mnt.c_str(), 0755);
  const auto t0 = std::chrono::steady_clock::now();
  CommandResult r = RunCommand(b.Argv("log=" + tmp() + "/second.log"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(secs, 5.0) << "waited for RocksDB's lock instead of refusing at once";
  // The reason reaches the terminal even though the log goes to a file.
  EXPECT_NE(r.output.find("state " + state() + " is in use by another vineyardfs daemon (pid " +
                          std::to_string(daemon_pid()) + ") serving " + mnt()),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(IsMounted(b.mnt));
  EXPECT_FALSE(Exists(b.arena)) << "the refused daemon left its arena";
  EXPECT_FALSE(Exists(tmp() + "/second.log")) << "the refused daemon left its log file";
  EXPECT_FALSE(ReadStatus().empty()) << "the first mount still serves";
}

TEST_F(MountSafety, ACleanUnmountReleasesTheStateForTheNextDaemon) {
  ASSERT_TRUE(Exists(state() + "/vineyardfs.pid"));
  EXPECT_EQ(std::atoi(ReadFile(state() + "/vineyardfs.pid").c_str()), daemon_pid());
  Unmount();
  EXPECT_FALSE(Exists(state() + "/vineyardfs.pid")) << "the lock file outlived its daemon";
  EXPECT_TRUE(Remount());
}

TEST_F(MountSafety, AMissingMountPointIsRefusedBeforeAnythingIsCreated) {
  BackgroundMount b = Other("missing");
  CommandResult r = RunCommand(b.Argv(""));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("mount point " + b.mnt + " does not exist"), std::string::npos)
      << r.output;
  EXPECT_FALSE(Exists(b.state));
  EXPECT_FALSE(Exists(b.arena));
  EXPECT_FALSE(IsMounted(b.arena)) << "the arena tmpfs outlived a failed mount";
}

TEST_F(MountSafety, AFailedMountUndoesTheArenaTmpfsAndWhatItCreated) {
  if (geteuid() != 0) GTEST_SKIP() << "only root mounts an arena tmpfs";
  // A listen= port that another socket holds: the failure comes after the state and
  // the arena tmpfs were made.
  int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(sock, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  BackgroundMount b = Other("taken");
  mkdir(b.mnt.c_str(), 0755);
  CommandResult r = RunCommand(b.Argv("listen=" + std::to_string(port)));
  close(sock);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cluster"), std::string::npos) << r.output;
  EXPECT_FALSE(IsMounted(b.arena)) << "the arena tmpfs outlived a failed mount";
  EXPECT_FALSE(IsMounted(b.mnt));
  EXPECT_FALSE(Exists(b.arena)) << "the arena directory it created is still there";
  EXPECT_FALSE(Exists(b.state)) << "the state directory it created is still there";
  EXPECT_EQ(MountsAt(b.arena, "tmpfs"), 0);
}

// ---- the log --------------------------------------------------------------------

// Every line: "2026-12-01T20:03:20.123Z vineyardfs[4242]: info: ...".
void ExpectEveryLineStamped(const std::string& text) {
  static const std::regex kLine(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z vineyardfs\[\d+\]: (error|warning|info|debug): .+$)");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    EXPECT_TRUE(std::regex_match(line, kLine)) << "line " << n << ": " << line;
  }
  EXPECT_GT(n, 0) << "empty log";
}

TEST_F(MountSafety, LogToAFileStampsEveryLineAndTheStarterIsToldWhere) {
  BackgroundMount b = Other("logged");
  const std::string log = tmp() + "/logs/vineyardfs.log";
  CommandResult r = b.Start("log=" + log);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("log: " + log), std::string::npos) << r.output;
  json st = json::parse(ReadFile(b.mnt + "/status.json"), nullptr, false);
  EXPECT_EQ(st["options"]["log"], log);
  b.Stop();
  const std::string text = ReadFile(log);
  ExpectEveryLineStamped(text);
  EXPECT_NE(text.find("info: mounted vineyard on " + b.mnt), std::string::npos) << text;
  EXPECT_NE(text.find("info: unmounted " + b.mnt), std::string::npos) << text;
}

TEST_F(MountSafety, WithoutSyslogTheDefaultLogIsAFileInTheState) {
  struct stat st;
  BackgroundMount b = Other("default");
  CommandResult r = b.Start();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json status = json::parse(ReadFile(b.mnt + "/status.json"), nullptr, false);
  if (stat("/dev/log", &st) == 0) {
    EXPECT_EQ(status["options"]["log"], "syslog") << "/dev/log exists: syslog is the default";
    return;
  }
  const std::string log = b.state + "/vineyardfs.log";
  EXPECT_EQ(status["options"]["log"], log);
  EXPECT_NE(r.output.find("log: " + log), std::string::npos) << r.output;
  b.Stop();
  ExpectEveryLineStamped(ReadFile(log));
}

TEST_F(MountSafety, SyslogWithoutASyslogDaemonIsRefused) {
  struct stat st;
  if (stat("/dev/log", &st) == 0) GTEST_SKIP() << "a syslog daemon listens on /dev/log here";
  BackgroundMount b = Other("syslog");
  mkdir(b.mnt.c_str(), 0755);
  CommandResult r = RunCommand(b.Argv("log=syslog"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("/dev/log does not exist"), std::string::npos) << r.output;
  EXPECT_FALSE(IsMounted(b.mnt));
}

TEST_F(MountSafety, DashDTracesEveryRequestInTheLog) {
  Unmount();
  const std::string log = tmp() + "/debug.log";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl(VINEYARDFS_BIN, VINEYARDFS_BIN, "vineyard", mnt().c_str(), "-d", "-o",
          ("size=64M,arena=" + arena() + ",state=" + state() + ",log=" + log).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  bool up = WaitMounted(&pid, mnt(), log, "mount with -d");
  struct stat st;
  if (up) stat(Path("names/no-such-name").c_str(), &st);
  if (IsMounted(mnt())) umount2(mnt().c_str(), MNT_DETACH);
  if (pid > 0 && WaitWithTimeoutMs(pid, 10000) != 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  ASSERT_TRUE(up);
  const std::string text = ReadFile(log);
  ExpectEveryLineStamped(text);
  // libfuse's trace of the LOOKUP of names/no-such-name, as debug lines.
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(debug: unique: \d+, opcode: LOOKUP)")))
      << text.substr(0, 4000);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(debug: +unique: \d+, error: -2)")))
      << "the reply (ENOENT) is traced too";
}

// ---- systemd --------------------------------------------------------------------

// Type=notify: READY=1 arrives when the mount serves; SIGTERM (systemctl stop)
// unmounts and exits 0 after STOPPING=1.
TEST_F(MountSafety, NotifiesSystemdWhenServingAndStopsCleanlyOnSigterm) {
  Unmount();
  const std::string sock_path = tmp() + "/notify.sock";
  int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{10, 0};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  const std::string log = tmp() + "/notify.log";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("NOTIFY_SOCKET", sock_path.c_str(), 1);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(VINEYARDFS_BIN, VINEYARDFS_BIN, "vineyard", mnt().c_str(), "-f", "-o",
          ("size=64M,arena=" + arena() + ",state=" + state()).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  char buf[512] = {};
  ssize_t n = recv(sock, buf, sizeof buf - 1, 0);
  const std::string ready(buf, n > 0 ? static_cast<size_t>(n) : 0);
  // Serving at the moment READY=1 arrives: no polling.
  const std::string status = ReadFile(Path("status.json"));
  kill(pid, SIGTERM);
  std::memset(buf, 0, sizeof buf);
  n = recv(sock, buf, sizeof buf - 1, 0);
  const std::string stopping(buf, n > 0 ? static_cast<size_t>(n) : 0);
  int code = WaitWithTimeoutMs(pid, 10000);
  if (code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  close(sock);
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready << "\n" << LogTail(log, 4000);
  EXPECT_FALSE(json::parse(status, nullptr, false).is_discarded()) << "status.json: " << status;
  EXPECT_NE(stopping.find("STOPPING=1"), std::string::npos) << stopping;
  EXPECT_EQ(code, 0) << "exit status after SIGTERM";
  EXPECT_FALSE(IsMounted(mnt()));
}

}  // namespace
}  // namespace vyit
