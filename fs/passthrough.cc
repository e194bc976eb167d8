#include "fs/passthrough.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "meta/log.h"

namespace vineyard {

namespace {

// Protocol 7.40 definitions that libfuse 3.14's headers predate.
struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
constexpr unsigned long kBackingOpen = _IOW(229, 1, BackingMap);
constexpr unsigned long kBackingClose = _IOW(229, 2, uint32_t);
constexpr uint32_t kInitExt = 1u << 30;
constexpr uint32_t kHandleKillprivV2 = 1u << 28;
constexpr uint32_t kWritebackCache = 1u << 16;
constexpr uint32_t kPassthroughFlags2 = 1u << (37 - 32);
constexpr uint32_t kFopenPassthrough = 1u << 7;
// Offsets in fuse_init_out (64 bytes in 7.36+) and fuse_open_out (16 bytes).
constexpr size_t kInitFlags = 12, kInitFlags2 = 32, kInitMaxStackDepth = 36, kInitSize = 64;
constexpr size_t kOpenOutSize = 16, kOpenFlags = 8, kOpenBackingId = 12;

thread_local int t_open_backing = 0;  // > 0: amend the next open reply
thread_local bool t_init = false;     // amend the next INIT reply
// The session's Passthrough (one session per daemon): libfuse hands the custom read
// the session's userdata, which is the filesystem's, not ours.
std::atomic<Passthrough*> g_reader{nullptr};

void Put32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
uint32_t Get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Custom I/O: plain read(2) and writev(2), with the reply amendments above. Replies
// are iov[0] = fuse_out_header, iov[1..] = the payload (libfuse's send_reply_ok).
ssize_t AmendingWritev(int fd, struct iovec* iov, int count, void*) {
  if (count >= 2 && (t_init || t_open_backing > 0)) {
    auto* p = static_cast<char*>(iov[count - 1].iov_base);
    size_t len = iov[count - 1].iov_len;
    if (t_init && len >= kInitSize) {
      // FUSE_HANDLE_KILLPRIV_V2 lets the kernel mark inodes without security xattrs
      // S_NOSEC, sparing a GETXATTR(security.capability) per write() (nothing here has
      // setuid bits or file capabilities to clear: payloads are sealed read-only).
      Put32(p + kInitFlags,
            (Get32(p + kInitFlags) | kInitExt | kHandleKillprivV2) & ~kWritebackCache);
      Put32(p + kInitFlags2, Get32(p + kInitFlags2) | kPassthroughFlags2);
      Put32(p + kInitMaxStackDepth, 1);
      t_init = false;
    } else if (t_open_backing > 0 && len >= kOpenOutSize) {
      // fuse_open_out is the whole payload of OPEN and the tail of CREATE's.
      char* out = p + len - kOpenOutSize;
      Put32(out + kOpenFlags, Get32(out + kOpenFlags) | kFopenPassthrough);
      Put32(out + kOpenBackingId, static_cast<uint32_t>(t_open_backing));
      t_open_backing = 0;
    }
  }
  return writev(fd, iov, count);
}

// The read lock a thread kept for the next read (a quick request, SetQuickRequest).
// Released at that next read unless the request read is quick again, or when the
// thread ends: libfuse's workers also leave their loop (at exit, or when idle) and
// are cancelled in read(), and a lock kept past that would block the others for good.
struct ReadTurn {
  std::mutex* held = nullptr;
  void Release() {
    if (held) held->unlock();
    held = nullptr;
  }
  ~ReadTurn() { Release(); }
};
thread_local ReadTurn t_turn;

}  // namespace

// Reads one request. The lock makes "read, then hooked" atomic with respect to the
// other loop threads, so the hook sees requests in the kernel's queue order and has
// seen every request queued before the one a handler is working on. After a quick
// request the thread keeps the lock: it is the next reader (no handoff).
ssize_t Passthrough::HookedRead(int fd, void* buf, size_t len, void*) {
  Passthrough* pt = g_reader.load();
  if (!pt->ordered_reads_) {
    t_turn.Release();
  } else if (!t_turn.held) {
    pt->read_mu_.lock();
    t_turn.held = &pt->read_mu_;
  }
  ssize_t n = read(fd, buf, len);
  const char* req = static_cast<const char*>(buf);
  if (n > 0 && pt->hook_) pt->hook_(pt->hook_ctx_, req, size_t(n));
  if (!(n > 0 && t_turn.held && pt->quick_ && pt->quick_(pt->quick_ctx_, req, size_t(n))))
    t_turn.Release();
  return n;
}

Status Passthrough::Install(fuse_session* se) {
  se_ = se;
  fd_ = fuse_session_fd(se);
  if (mode_ == PassthroughMode::kOff) {
    MutexLock lock(&mu_);
    reason_ = "passthrough=off";
  }
  g_reader = this;
  const fuse_custom_io io = {AmendingWritev, HookedRead, nullptr, nullptr};
  if (fuse_session_custom_io(se, &io, fd_) != 0) {
    return Status::IOError("fuse_session_custom_io failed");
  }
  return Status::OK();
}

void Passthrough::Probe(const std::string& probe_dir) {
  if (mode_ == PassthroughMode::kOff) return;
  std::string path = probe_dir + "/.passthrough-probe";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  std::string why;
  if (fd < 0) {
    why = "cannot create a probe file in " + probe_dir + ": " + std::strerror(errno);
  } else {
    BackingMap map{fd, 0, 0};
    int id = ioctl(fd_, kBackingOpen, &map);
    if (id > 0) {
      uint32_t uid = static_cast<uint32_t>(id);
      ioctl(fd_, kBackingClose, &uid);
      enabled_ = true;
      why = "the kernel accepted FUSE passthrough";
    } else if (errno == EPERM) {
      why = "FUSE_DEV_IOC_BACKING_OPEN needs CAP_SYS_ADMIN (EPERM)";
    } else {
      why = std::string("the kernel refused FUSE passthrough (") + std::strerror(errno) + ")";
    }
    close(fd);
    unlink(path.c_str());
  }
  MutexLock lock(&mu_);
  reason_ = why;
}

std::string Passthrough::reason() const {
  MutexLock lock(&mu_);
  return reason_;
}

Result<int> Passthrough::BackingOpen(int fd) {
  if (!enabled_) return Status::NotSupported("passthrough is off");
  BackingMap map{fd, 0, 0};
  int id = ioctl(fd_, kBackingOpen, &map);
  if (id <= 0) return Status::FromErrno("FUSE_DEV_IOC_BACKING_OPEN", errno);
  return id;
}

void Passthrough::BackingClose(int id) {
  uint32_t uid = static_cast<uint32_t>(id);
  if (ioctl(fd_, kBackingClose, &uid) != 0) {
    VY_LOG_WARN("FUSE_DEV_IOC_BACKING_CLOSE %d: %s", id, std::strerror(errno));
  }
}

void Passthrough::MarkNextOpenReply(int backing_id) { t_open_backing = backing_id; }
void Passthrough::ClearMark() { t_open_backing = 0; }
void Passthrough::ReleaseReadTurn() { t_turn.Release(); }
void Passthrough::MarkInitReply() { t_init = true; }

}  // namespace vineyard
