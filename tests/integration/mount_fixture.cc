#include "mount_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace vyit {

bool IsObjectId(const std::string& s) {
  if (s.size() != 17 || s[0] != 'o') return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsBlobId(const std::string& s) { return IsObjectId(s) && s[1] >= '8'; }

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

bool PollUntil(const std::function<bool()>& pred, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int SealErrno(const std::string& path) {
  char name[64] = {};
  ssize_t n = lgetxattr(path.c_str(), "user.vineyard.errno", name, sizeof name - 1);
  if (n <= 0) return 0;
  for (int e = 1; e < 200; ++e) {
    const char* s = strerrorname_np(e);
    if (s && std::strcmp(s, name) == 0) return e;
  }
  return EIO;
}

bool IsMounted(const std::string& path) {
  std::ifstream in("/proc/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string dev, point;
    f >> dev >> point;
    if (point == path || point.rfind(path + "/", 0) == 0) return true;
  }
  return false;
}

namespace {

// Reads everything from fd until EOF.
// Reads `fd` to its end; a read error stops it and is stored in *err (if given).
std::string Drain(int fd, int* err = nullptr) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && err) *err = errno;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool WriteFull(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// waitpid with a deadline; returns the status or -1 on timeout.
int WaitWithTimeout(pid_t pid, int timeout_ms) {
  int status = -1;
  bool done = PollUntil(
      [&] {
        pid_t r = waitpid(pid, &status, WNOHANG);
        return r == pid || (r < 0 && errno == ECHILD);
      },
      timeout_ms);
  return done ? status : -1;
}

int DecodeStatus(int status) {
  if (status == -1) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Forks a child that runs fn and sends its bytes back on a pipe; the first 4
// bytes are the errno (0 for success).
std::string ChildTransfer(const std::function<std::string(int*)>& fn, int* err) {
  int fds[2];
  if (pipe(fds) != 0) {
    *err = errno;
    return {};
  }
  pid_t pid = ForkOutsideUploads();
  if (pid == 0) {
    close(fds[0]);
    int e = 0;
    std::string data = fn(&e);
    int32_t e32 = e;
    WriteFull(fds[1], reinterpret_cast<const char*>(&e32), sizeof e32);
    if (e == 0) WriteFull(fds[1], data.data(), data.size());
    _exit(0);
  }
  close(fds[1]);
  std::string all = Drain(fds[0]);
  close(fds[0]);
  int status = WaitWithTimeout(pid, 30000);
  if (status == -1 || all.size() < 4) {
    *err = -1;
    return {};
  }
  int32_t e32;
  std::memcpy(&e32, all.data(), 4);
  *err = e32;
  return e32 == 0 ? all.substr(4) : std::string();
}

}  // namespace

std::shared_mutex& ForkMutex() {
  static std::shared_mutex mu;
  return mu;
}

std::shared_lock<std::shared_mutex> UploadWriteGuard() {
  return std::shared_lock<std::shared_mutex>(ForkMutex());
}

pid_t ForkOutsideUploads() {
  std::unique_lock<std::shared_mutex> lock(ForkMutex());
  return fork();
}

CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_s) {
  CommandResult r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  pid_t pid = ForkOutsideUploads();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  // Read on a thread so that a stuck command can still be killed on time.
  std::string out;
  std::thread reader([&] { out = Drain(fds[0]); });
  int status = WaitWithTimeout(pid, timeout_s * 1000);
  if (status == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  reader.join();
  close(fds[0]);
  r.exit_code = DecodeStatus(status);
  r.output = out;
  return r;
}

// ---- mount lifecycle ------------------------------------------------------------

pid_t SpawnDaemon(const std::string& mnt, const std::string& opts, const std::string& log) {
  int logfd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t parent = getpid();
  pid_t pid = ForkOutsideUploads();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << strerror(errno);
    if (logfd >= 0) close(logfd);
    return -1;
  }
  if (pid == 0) {
    // If the test process dies, take the daemon with it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (logfd >= 0) {
      dup2(logfd, 1);
      dup2(logfd, 2);
    }
    execl(VINEYARDFS_BIN, VINEYARDFS_BIN, "vineyard", mnt.c_str(), "-f", "-o", opts.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  if (logfd >= 0) close(logfd);
  return pid;
}

std::string LogTail(const std::string& path, size_t max) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() <= max ? text : "[...]\n" + text.substr(text.size() - max);
}

bool WaitMounted(pid_t* pid, const std::string& mnt, const std::string& log,
                 const std::string& what) {
  const std::string status_path = mnt + "/status.json";
  bool exited = false;
  bool up = PollUntil(
      [&] {
        int st;
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
          exited = true;
          return true;
        }
        struct stat sb;
        return stat(status_path.c_str(), &sb) == 0;
      },
      10000);
  if (exited) *pid = -1;
  if (up && !exited) return true;
  ADD_FAILURE() << what << " failed (" << (exited ? "daemon exited" : "timeout")
                << "); daemon log:\n"
                << LogTail(log, 20000);
  return false;
}

void MountTest::SetUp() {
  char tmpl[] = "/tmp/vyit.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr) << strerror(errno);
  tmp_ = tmpl;
  mnt_ = tmp_ + "/mnt";
  arena_ = tmp_ + "/arena";
  state_ = tmp_ + "/state";
  log_ = tmp_ + "/daemon.log";
  // Other uids (RunAs) must reach the mount point.
  ASSERT_EQ(chmod(tmp_.c_str(), 0755), 0);
  for (auto* d : {&mnt_, &arena_, &state_}) ASSERT_EQ(mkdir(d->c_str(), 0755), 0);
  ASSERT_TRUE(Mount(DefaultOptions()));
}

void MountTest::TearDown() {
  if (tmp_.empty()) return;
  Unmount();
  WipeArena();
  if (IsMounted(tmp_)) {
    ADD_FAILURE() << "something is still mounted under " << tmp_ << "; leaving it";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp_, ec);
}

bool MountTest::Mount(const std::string& opts) {
  if (pid_ > 0) {
    ADD_FAILURE() << "Mount() while the daemon is still running";
    return false;
  }
  last_opts_ = opts;
  std::string all = "arena=" + arena_ + ",state=" + state_;
  if (opts.find("size=") == std::string::npos && opts.find("config=") == std::string::npos) {
    all += ",size=256M";
  }
  if (!opts.empty()) all += "," + opts;

  pid_ = SpawnDaemon(mnt_, all, log_);
  if (pid_ < 0) return false;
  if (WaitMounted(&pid_, mnt_, log_, "mount with -o " + all)) return true;
  if (pid_ > 0) Unmount();
  return false;
}

bool MountTest::Exited(int timeout_ms) {
  if (pid_ <= 0) return true;
  int status = WaitWithTimeout(pid_, timeout_ms);
  if (status == -1) return false;
  pid_ = -1;
  return true;
}

pid_t MountTest::ReleaseDaemon() {
  pid_t p = pid_;
  pid_ = -1;
  return p;
}

void MountTest::Unmount() {
  if (IsMounted(mnt_)) umount2(mnt_.c_str(), MNT_DETACH);
  // A clean unmount first drains the durable writer (durability=async), which under
  // a loaded machine can take many seconds for a test's large payloads.
  if (pid_ > 0 && !Exited(kExitAfterUnmountMs)) {
    ADD_FAILURE() << "daemon " << pid_ << " did not exit within " << kExitAfterUnmountMs / 1000
                  << " s after unmount; killing it";
    kill(pid_, SIGKILL);
    Exited(10000);
    pid_ = -1;
  }
}

void MountTest::Crash() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    if (!Exited(10000)) ADD_FAILURE() << "daemon survived SIGKILL";
  }
  if (IsMounted(mnt_)) umount2(mnt_.c_str(), MNT_DETACH);
}

void MountTest::WipeArena() {
  for (int i = 0; i < 8 && IsMounted(arena_); ++i) {
    if (umount2(arena_.c_str(), MNT_DETACH) != 0) break;
  }
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(arena_, ec)) {
    std::filesystem::remove_all(e.path(), ec);
  }
}

// ---- file helpers ---------------------------------------------------------------

int MountTest::TryWriteNew(const std::string& name, const std::string& bytes, std::string* id) {
  const std::string path = Path("new/" + name);
  {
    auto no_fork = UploadWriteGuard();
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    if (!WriteFull(fd, bytes.data(), bytes.size())) {
      int e = errno;
      close(fd);
      return e;
    }
    if (close(fd) != 0) return errno;
  }
  if (int e = SealErrno(path)) return e;
  if (id) {
    *id = LinkedId("new/" + name);
    if (id->empty()) return EPROTO;
  }
  return 0;
}

std::string MountTest::WriteNew(const std::string& name, const std::string& bytes) {
  std::string id;
  int e = TryWriteNew(name, bytes, &id);
  if (e != 0) {
    ADD_FAILURE() << "writing new/" << name << " (" << bytes.size() << " bytes): "
                  << (e == EPROTO ? "no link to an object after close()" : strerror(e));
    return {};
  }
  return id;
}

std::string MountTest::WriteNewMmap(const std::string& name, const std::string& bytes) {
  const std::string path = Path("new/" + name);
  int fd = open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << strerror(errno);
    return {};
  }
  if (ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) {
    ADD_FAILURE() << "ftruncate " << path << ": " << strerror(errno);
    close(fd);
    return {};
  }
  if (!bytes.empty()) {
    void* p = mmap(nullptr, bytes.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ADD_FAILURE() << "mmap " << path << ": " << strerror(errno);
      close(fd);
      return {};
    }
    std::memcpy(p, bytes.data(), bytes.size());
    if (munmap(p, bytes.size()) != 0) ADD_FAILURE() << "munmap: " << strerror(errno);
  }
  if (close(fd) != 0) {
    ADD_FAILURE() << "close " << path << ": " << strerror(errno);
    return {};
  }
  std::string id;
  if (!PollUntil([&] { return !(id = LinkedId("new/" + name)).empty(); }, 5000)) {
    ADD_FAILURE() << "new/" << name << " was not sealed within 5 s after munmap+close";
  }
  return id;
}

std::string MountTest::ReadAll(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << strerror(errno);
    return {};
  }
  std::string s = Drain(fd);
  close(fd);
  return s;
}

// Runs `fn` (path -> bytes, errno in *ce) in a child; reports a failure as `how`.
static std::string ChildFetch(const char* how, const std::string& path,
                              const std::function<std::string(int*)>& fn, int* err) {
  int e = 0;
  std::string s = ChildTransfer(fn, &e);
  if (err) {
    *err = e;
  } else if (e != 0) {
    ADD_FAILURE() << "child " << how << " of " << path << ": "
                  << (e < 0 ? "child died" : strerror(e));
  }
  return s;
}

std::string MountTest::ChildRead(const std::string& path, int* err) {
  return ChildFetch(
      "read", path,
      [&](int* ce) {
        int fd = open(path.c_str(), O_RDONLY);
        if (fd < 0) {
          *ce = errno;
          return std::string();
        }
        std::string out = Drain(fd, ce);
        close(fd);
        return out;
      },
      err);
}

std::string MountTest::ChildMmap(const std::string& path, int* err) {
  return ChildFetch(
      "mmap", path,
      [&](int* ce) {
        int fd = open(path.c_str(), O_RDONLY);
        if (fd < 0) {
          *ce = errno;
          return std::string();
        }
        struct stat sb;
        std::string out;
        if (fstat(fd, &sb) != 0) {
          *ce = errno;
        } else if (sb.st_size > 0) {
          const size_t n = static_cast<size_t>(sb.st_size);
          void* p = mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, 0);
          if (p == MAP_FAILED) {
            *ce = errno;
          } else {
            out.assign(static_cast<const char*>(p), n);
            munmap(p, n);
          }
        }
        close(fd);
        return out;
      },
      err);
}

std::string MountTest::ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

std::string MountTest::LinkedId(const std::string& rel) {
  std::string target = ReadLink(Path(rel));
  const std::string prefix = "../objects/";
  if (target.rfind(prefix, 0) != 0) return {};
  std::string id = target.substr(prefix.size());
  return IsObjectId(id) ? id : std::string();
}

std::vector<std::string> MountTest::ListDir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

int MountTest::RunAs(uid_t uid, const std::function<int()>& fn) {
  pid_t pid = ForkOutsideUploads();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(255);
    _exit(fn() & 0xff);
  }
  int st = WaitWithTimeout(pid, 30000);
  int code = DecodeStatus(st);
  return code == 255 || code >= 128 || code < 0 ? -1 : code;
}

int MountTest::InChild(const std::function<int()>& fn) {
  pid_t pid = ForkOutsideUploads();
  if (pid == 0) _exit(fn() & 0xff);
  int code = DecodeStatus(WaitWithTimeout(pid, 30000));
  return code >= 128 || code < 0 ? -1 : code;
}

nlohmann::json MountTest::ReadStatus() {
  std::string s = ReadAll(Path("status.json"));
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded()) ADD_FAILURE() << "status.json is not JSON:\n" << s;
  return j;
}

nlohmann::json MountTest::ReadMeta(const std::string& id) {
  std::string s = ReadAll(ObjPath(id, "meta.json"));
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded()) ADD_FAILURE() << "objects/" << id << "/meta.json is not JSON:\n" << s;
  return j;
}

MountTest::Snapshot MountTest::TakeSnapshot() {
  Snapshot snap;
  for (auto& id : ListDir(Path("objects"))) {
    std::string data;
    if (IsBlobId(id)) data = ReadAll(ObjPath(id, "data"));
    snap[id] = {ReadAll(ObjPath(id, "meta.json")), data};
  }
  return snap;
}

void MountTest::ExpectUntouched(const Snapshot& before, const std::set<std::string>& extra) {
  std::set<std::string> expected = extra;
  for (auto& [id, v] : before) expected.insert(id);
  auto now = ListDir(Path("objects"));
  EXPECT_EQ(std::set<std::string>(now.begin(), now.end()), expected)
      << "objects/ changed beyond the expected set";
  for (auto& [id, v] : before) {
    int e = 0;
    std::string meta = ChildRead(ObjPath(id, "meta.json"), &e);
    EXPECT_EQ(e, 0) << id << " meta.json: " << strerror(e);
    EXPECT_EQ(meta, v.first) << id << " meta.json changed";
    if (IsBlobId(id)) {
      std::string data = ChildRead(ObjPath(id, "data"), &e);
      EXPECT_EQ(e, 0) << id << " data: " << strerror(e);
      EXPECT_TRUE(data == v.second)
          << id << " data changed (" << data.size() << " vs " << v.second.size() << " bytes)";
    }
  }
}

}  // namespace vyit
