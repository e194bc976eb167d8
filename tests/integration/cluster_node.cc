// The cluster fixture's free helpers and Node, one daemon of a test cluster (declared
// in cluster_fixture.h); ClusterTest is in cluster_fixture.cc.
#include "cluster_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

#include "mount_fixture_internal.h"

namespace vyit {

using nlohmann::json;

// ---- free helpers ---------------------------------------------------------------

std::string ReadFileOr(const std::string& path, int* err) {
  int e = 0;
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    e = errno;
  } else {
    char buf[1 << 16];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) e = errno;
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
  }
  if (err) {
    *err = e;
  } else if (e != 0) {
    ADD_FAILURE() << "reading " << path << ": " << strerror(e);
  }
  return e == 0 ? out : std::string();
}

std::string GetXattr(const std::string& path, const std::string& key, int* err) {
  char buf[4096];
  ssize_t n = getxattr(path.c_str(), key.c_str(), buf, sizeof buf);
  int e = n < 0 ? errno : 0;
  if (err) {
    *err = e;
  } else if (e != 0) {
    ADD_FAILURE() << "getxattr " << path << " " << key << ": " << strerror(e);
  }
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

std::string ReadLinkOf(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

bool PortsFree(int first, int count) {
  for (int port = first; port < first + count; ++port) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // No SO_REUSEADDR: a port with connections lingering in TIME_WAIT counts as taken,
    // which only makes the choice more conservative.
    bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
    if (!ok) return false;
  }
  return true;
}


// ---- Node -----------------------------------------------------------------------

Node::Node(int index, const std::string& dir, int port)
    : instance(index), index_(index), port_(port), dir_(dir) {
  mnt_ = dir_ + "/mnt";
  arena_ = dir_ + "/arena";
  state_ = dir_ + "/state";
  log_ = dir_ + "/daemon.log";
  mkdir(dir_.c_str(), 0755);
  for (auto* d : {&mnt_, &arena_, &state_}) {
    if (mkdir(d->c_str(), 0755) != 0 && errno != EEXIST) {
      ADD_FAILURE() << "mkdir " << *d << ": " << strerror(errno);
    }
  }
}

Node::~Node() { Cleanup(); }

std::string Node::LogText() const { return LogTail(log_, std::string::npos); }

bool Node::Start(const std::string& extra) {
  if (pid_ > 0) {
    ADD_FAILURE() << "node " << index_ << ": Start() while its daemon is running";
    return false;
  }
  std::string all = "instance=" + std::to_string(instance) + ",arena=" + arena_ +
                    ",state=" + state_ + ",size=256M,listen=" + std::to_string(port_);
  for (auto& p : peers) all += ",peer=" + p;
  all += ",heartbeat_ms=50,durability=none";
  if (!options.empty()) all += "," + options;
  if (!extra.empty()) all += "," + extra;

  int logfd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logfd >= 0) {
    std::string line = "==== test: starting node " + std::to_string(index_) + " -o " + all + "\n";
    (void)!write(logfd, line.data(), line.size());
  }
  if (logfd >= 0) close(logfd);
  pid_ = SpawnDaemon(mnt_, all, log_);
  if (pid_ < 0) return false;
  paused_ = false;
  if (WaitMounted(&pid_, mnt_, log_, "node " + std::to_string(index_) + " with -o " + all)) {
    return true;
  }
  if (pid_ > 0) Stop();
  return false;
}

bool Node::Exited(int timeout_ms) {
  if (pid_ <= 0) return true;
  int status = WaitWithTimeout(pid_, timeout_ms);
  if (status == -1) return false;
  pid_ = -1;
  paused_ = false;
  return true;
}

void Node::Crash() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    if (!Exited(10000)) ADD_FAILURE() << "node " << index_ << " survived SIGKILL";
  }
  paused_ = false;
  if (IsMounted(mnt_)) umount2(mnt_.c_str(), MNT_DETACH);
}

void Node::Stop() {
  if (paused_) Resume();
  if (IsMounted(mnt_)) umount2(mnt_.c_str(), MNT_DETACH);
  if (pid_ > 0 && !Exited(kExitAfterUnmountMs)) {  // mount_fixture.h
    ADD_FAILURE() << "node " << index_ << " (pid " << pid_
                  << ") did not exit after unmount; killing it";
    kill(pid_, SIGKILL);
    Exited(10000);
    pid_ = -1;
  }
  paused_ = false;
}

void Node::Pause() {
  ASSERT_GT(pid_, 0) << "node " << index_ << " is not running";
  ASSERT_EQ(kill(pid_, SIGSTOP), 0) << strerror(errno);
  paused_ = true;
}

void Node::Resume() {
  if (pid_ > 0 && paused_) kill(pid_, SIGCONT);
  paused_ = false;
}

void Node::Cleanup() {
  Stop();
  // The daemon mounts a tmpfs on its arena as root; a crashed one leaves it behind.
  for (int i = 0; i < 8 && IsMounted(arena_); ++i) {
    if (umount2(arena_.c_str(), MNT_DETACH) != 0) break;
  }
}

int Node::TryWriteNew(const std::string& name, const std::string& bytes, std::string* id) {
  const std::string path = Path("new/" + name);
  {
    auto no_fork = UploadWriteGuard();  // mount_fixture.h: a forked child would hold it
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    for (size_t done = 0; done < bytes.size();) {
      ssize_t w = write(fd, bytes.data() + done, bytes.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int e = w < 0 ? errno : EIO;
        close(fd);
        return e;
      }
      done += static_cast<size_t>(w);
    }
    if (close(fd) != 0) return errno;
  }
  if (int e = SealErrno(path)) return e;
  if (id) {
    std::string target = ReadLinkOf(path);
    const std::string prefix = "../objects/";
    *id = target.rfind(prefix, 0) == 0 ? target.substr(prefix.size()) : std::string();
    if (!IsObjectId(*id)) return EPROTO;
  }
  return 0;
}

std::string Node::WriteNew(const std::string& name, const std::string& bytes) {
  std::string id;
  int e = TryWriteNew(name, bytes, &id);
  if (e != 0) {
    ADD_FAILURE() << "node " << index_ << ": writing new/" << name << " (" << bytes.size()
                  << " bytes): "
                  << (e == EPROTO ? "no link to an object after close()" : strerror(e));
    return {};
  }
  return id;
}

bool Node::Persist(const std::string& id) {
  if (setxattr(ObjPath(id).c_str(), "user.vineyard.persist", "1", 1, 0) != 0) {
    ADD_FAILURE() << "node " << index_ << ": persist " << id << ": " << strerror(errno);
    return false;
  }
  return true;
}

std::string Node::WritePersisted(const std::string& name, const std::string& bytes) {
  std::string id = WriteNew(name, bytes);
  if (id.empty() || !Persist(id)) return {};
  return id;
}

std::string Node::Xattr(const std::string& id, const std::string& key, int* err) {
  return GetXattr(ObjPath(id), "user.vineyard." + key, err);
}

json Node::ReadStatus() {
  std::string s = ReadFileOr(Path("status.json"));
  auto j = json::parse(s, nullptr, false);
  if (j.is_discarded()) ADD_FAILURE() << "node " << index_ << ": status.json is not JSON:\n" << s;
  return j;
}

json Node::ReadInstance(int n) {
  int e = 0;
  std::string s = ReadFileOr(Path("instances/" + std::to_string(n) + ".json"), &e);
  return e != 0 ? json(json::value_t::discarded) : json::parse(s, nullptr, false);
}

std::string Node::InstanceStatus(int n) {
  json j = ReadInstance(n);
  if (j.is_discarded() || !j.is_object() || !j.contains("status") || !j["status"].is_string()) {
    return {};
  }
  return j["status"];
}

std::string Node::NameTarget(const std::string& name) const {
  std::string target = ReadLinkOf(Path("names/" + name));
  const std::string prefix = "../objects/";
  if (target.rfind(prefix, 0) != 0) return {};
  return target.substr(prefix.size());
}

std::string Node::Meta(const std::string& id, int* err) {
  return ReadFileOr(ObjPath(id, "meta.json"), err);
}

std::map<std::string, std::string> Node::Names() const {
  std::map<std::string, std::string> out;
  for (auto& n : ListNames()) out[n] = NameTarget(n);
  return out;
}

}  // namespace vyit
