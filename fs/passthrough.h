// FUSE passthrough (DESIGN.md §9): read, write and mmap of a FUSE file go straight to
// a backing file — the blob's or upload's tmpfs file in the arena — with no request to
// the daemon and no second copy in the page cache.
//
// libfuse 3.14 has no API for it. Passthrough installs a custom I/O layer
// (fuse_session_custom_io) whose writev amends two kinds of raw replies:
//   * the INIT reply: FUSE_INIT_EXT and FUSE_HANDLE_KILLPRIV_V2 in `flags`,
//     FUSE_PASSTHROUGH (bit 5 of `flags2`), no FUSE_WRITEBACK_CACHE, and
//     max_stack_depth = 1 (protocol 7.40's field after flags2, `unused[0]` in
//     libfuse's header);
//   * an OPEN or CREATE reply that the handler marked (MarkNextOpenReply, same thread):
//     FOPEN_PASSTHROUGH in `open_flags` and the backing id in the int32 after it.
// Its read side hands every request to a hook (SetRequestHook) in the order the kernel
// queued them, before the next request is read: the seal path uses it to know, when a
// LOOKUP arrives, that a RELEASE queued before it is still being handled (seal.cc).
// The custom I/O is installed in every mode; with passthrough=off nothing is amended.
// Backing ids come from the FUSE_DEV_IOC_BACKING_OPEN ioctl on the session fd, which
// needs CAP_SYS_ADMIN; BackingOpen fails cleanly without it and the caller falls back
// to the cached path.
//
// Thread-safety: all methods are thread-safe; the reply mark is thread-local.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "meta/mutex.h"
#include "meta/status.h"

struct fuse_session;

namespace vineyard {

enum class PassthroughMode { kOff, kOn, kAuto };

class Passthrough {
 public:
  explicit Passthrough(PassthroughMode mode) : mode_(mode) {}

  PassthroughMode mode() const { return mode_; }
  // Installs the custom I/O on a mounted session (before INIT is processed).
  Status Install(fuse_session* se);
  // Called with each raw request (fuse_in_header first) as it is read, under the read
  // lock: the hook must be quick and must not block. Set before Install().
  using RequestHook = void (*)(void* ctx, const char* req, size_t len);
  void SetRequestHook(RequestHook hook, void* ctx) {
    hook_ = hook;
    hook_ctx_ = ctx;
  }
  // Whether reads are serialized so that the hook sees requests in queue order (a
  // lock handoff per request: the seal needs it only without passthrough). Default: on.
  void SetOrderedReads(bool on) { ordered_reads_ = on; }
  // With ordered reads: a request for which `quick` returns true (called after the
  // hook, with the same arguments) is handled by the thread that read it before any
  // other thread reads: it keeps the read lock and reads the next request itself, so
  // a run of quick requests is served by one thread with no lock handoff (no futex
  // wake-up of the next reader) per request. `quick` must be quick, and a handler of
  // a request it accepts must never wait for another request. Set before Install().
  using QuickFn = bool (*)(void* ctx, const char* req, size_t len);
  void SetQuickRequest(QuickFn quick, void* ctx) {
    quick_ = quick;
    quick_ctx_ = ctx;
  }
  // After INIT: checks that the kernel accepted passthrough by registering and
  // releasing a backing file made in `probe_dir`. Sets enabled() and reason().
  void Probe(const std::string& probe_dir);
  bool enabled() const { return enabled_; }
  std::string reason() const;

  // Registers `fd` (a regular file) as a backing file; returns its id (> 0).
  Result<int> BackingOpen(int fd);
  void BackingClose(int id);
  // The next OPEN/CREATE reply sent from this thread passes through to `backing_id`.
  static void MarkNextOpenReply(int backing_id);
  static void ClearMark();
  // Gives up the /dev/fuse read lock this thread kept after a quick request (no-op
  // otherwise): for a handler about to wait, so that another thread reads meanwhile.
  static void ReleaseReadTurn();
  // Called from the `init` handler: the INIT reply sent from this thread is amended.
  static void MarkInitReply();

 private:
  static ssize_t HookedRead(int fd, void* buf, size_t len, void* self);

  const PassthroughMode mode_;
  RequestHook hook_ = nullptr;
  void* hook_ctx_ = nullptr;
  QuickFn quick_ = nullptr;
  void* quick_ctx_ = nullptr;
  std::atomic<bool> ordered_reads_{true};
  // One reader of /dev/fuse at a time: requests reach the hook in order. Guards no
  // member, and is taken only when reads are ordered, which the analysis cannot follow.
  std::mutex read_mu_;
  fuse_session* se_ = nullptr;
  int fd_ = -1;  // the session's /dev/fuse fd
  std::atomic<bool> enabled_{false};
  mutable Mutex mu_;
  std::string reason_ GUARDED_BY(mu_);
};

}  // namespace vineyard
