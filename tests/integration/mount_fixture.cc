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

#include "mount_fixture_internal.h"

namespace vyit {

bool IsObjectId(const std::string& s) {
  if (s.size() != 17 || s[0] != 'o') return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsBlobId(const std::string& s) { return IsObjectId(s) && s[1] >= '8'; }

std::map<int, long> SwitchesByThread(pid_t pid) {
  std::map<int, long> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/status");
    std::string line;
    long n = 0;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        n += std::stol(line.substr(line.find(':') + 1));
      }
    }
    out[std::atoi(e->d_name)] = n;
  }
  closedir(d);
  return out;
}

std::pair<long, long> TopTwo(const std::map<int, long>& before, const std::map<int, long>& after) {
  long most = 0, others = 0;
  for (auto& [tid, n] : after) {
    auto it = before.find(tid);
    long grew = n - (it == before.end() ? 0 : it->second);
    if (grew > most) std::swap(grew, most);
    others = std::max(others, grew);
  }
  return {most, others};
}

std::string ListOfTensorsBatch(size_t tensors) {
  std::string body = R"({"entries":[)";
  std::string list =
      R"({"meta":{"typename":"vineyard::List","__elements_-size":)" + std::to_string(tensors);
  for (size_t i = 0; i < tensors; ++i) {
    body += R"({"blob":[)" + std::to_string(i) +
            R"(,1]},{"meta":{"typename":"vineyard::Tensor<uint8>","shape_":"[1]",)" +
            R"("buffer_":{"id":"#)" + std::to_string(2 * i) + R"("}}},)";
    list += R"(,"__elements_-)" + std::to_string(i) + R"(":{"id":"#)" +
            std::to_string(2 * i + 1) + R"("})";
  }
  body += list + "}}]}";
  body.push_back('\0');
  body += std::string(tensors, 'x');
  return body;
}

int OpenUpload(const std::string& path, const std::string& body) {
  int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  for (size_t done = 0; fd >= 0 && done < body.size();) {
    ssize_t w = write(fd, body.data() + done, body.size() - done);
    if (w <= 0) {
      const int err = w < 0 ? errno : EIO;
      close(fd);
      errno = err;
      return -1;
    }
    done += static_cast<size_t>(w);
  }
  return fd;
}

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

}  // namespace vyit
