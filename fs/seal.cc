// The seal path of DESIGN.md §4: an upload in new/ becomes an object when nobody can
// write it any more. The rule, enforced with the kernel's own accounting:
//   * the last writable FUSE handle of the upload is released (RELEASE comes once no
//     descriptor of that open file is left in any process: a forked child's exit or a
//     reader's close sends FLUSH, never the last RELEASE), and
//   * no writable file of the staging inode remains anywhere: F_SETLEASE(F_RDLCK) on
//     our read-only descriptor is granted only when the inode's write count is zero.
//     That count includes the backing file passthrough opened for each writable FUSE
//     open, which a MAP_SHARED mapping keeps alive after close() (passthrough maps the
//     backing file), and any writable descriptor of our own (we hold none then).
// When the lease is refused, the upload waits (SealWaiter) for IN_CLOSE_WRITE on its
// staging file, which the kernel sends when such a file is finally released (munmap).
// close() itself cannot know that it drops the last reference, so it answers with
// CheckUpload: what the seal would refuse in the bytes written so far.
//
// What a seal makes, in order:
//   1. new/<file>.meta.json -> a metadata object (the bytes are create-form JSON)
//   2. new/<file>.blob -> a vineyard::Blob of exactly the bytes: no builder is asked
//      (how a writer stores bytes that a builder would claim, e.g. an .npy file as is)
//   3. a file a builder plugin claims (by suffix or magic) -> a typed object
//      (PluginHost::Build; the builder's error fails close() with EIO)
//   4. anything else -> a vineyard::Blob holding exactly the bytes written
// On failure the file stays as written and user.vineyard.error says why.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <linux/fuse.h>

#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

Status ReadMetaBytes(Upload* up, uint64_t size, std::string* bytes)
    EXCLUSIVE_LOCKS_REQUIRED(up->mu) {
  if (size > kMaxMetaBytes) {
    return Status::TooLarge("metadata is " + std::to_string(size) +
                            " bytes, over the limit of 16 MiB");
  }
  bytes->assign(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(up->fd, bytes->data() + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno("read new/" + up->name, n < 0 ? errno : EIO);
    got += static_cast<size_t>(n);
  }
  return Status::OK();
}

Result<ObjectID> SealMeta(FsState* fs, Upload* up, uint64_t size) EXCLUSIVE_LOCKS_REQUIRED(up->mu) {
  std::string bytes;
  VY_RETURN_IF_ERROR(ReadMetaBytes(up, size, &bytes));
  auto spec = ParseCreateMeta(bytes);
  if (!spec.ok()) return spec.status();
  return fs->objects.SealMeta(up->key, *spec, up->owner);
}

Result<ObjectID> SealBlob(FsState* fs, Upload* up, uint64_t size) EXCLUSIVE_LOCKS_REQUIRED(up->mu) {
  return fs->objects.SealBlob(up->key, size, up->owner);
}

// Builder plugins (DESIGN.md §8). Returns nullopt when no builder claims the file,
// so the default rules apply. On success the upload's bytes live on in the objects
// the builder made: its staging file goes (the open fd stays valid until release).
std::optional<Result<ObjectID>> TryBuilders(FsState* fs, Upload* up, uint64_t size)
    EXCLUSIVE_LOCKS_REQUIRED(up->mu) {
  if (!fs->plugins) return std::nullopt;
  auto built = fs->plugins->Build(up->name, up->fd, size, up->owner);
  if (built && built->ok()) fs->objects.DropUpload(up->key);
  return built;
}

Status SealUpload(FsState* fs, Upload* up) EXCLUSIVE_LOCKS_REQUIRED(up->mu) {
  up->dirty = false;
  if (up->fd < 0 || up->key == 0) return Status::IOError("new/" + up->name + " has no data");
  struct stat st;
  if (fstat(up->fd, &st) != 0) return Status::FromErrno("stat new/" + up->name, errno);
  // The listing loses new/<name>.error whatever the outcome (a new failure re-adds it).
  // (Entries of new/ are never cached, see LookupChild: this only drops a listing.)
  if (!up->error.empty()) {
    fs->notifier.InvalEntry(InodeTable::FixedIno(Kind::kNew), up->name + ".error");
  }
  // Writes through a mapping reach the file without passing write(): the file's own
  // size is the truth.
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  Result<ObjectID> id = Status::OK();
  if (up->write_failed || (up->pt_written && fs->store->ArenaExhausted())) {
    // A write failed with ENOSPC (through passthrough we cannot see the failure
    // itself, only an arena left full): the file may miss bytes, so it is not sealed.
    id = Status::NoSpace("the arena filled up while new/" + up->name +
                         " was written: the file may be incomplete (rewrite it)");
  } else if (EndsWith(up->name, ".meta.json")) {
    id = SealMeta(fs, up, size);
  } else if (EndsWith(up->name, ".batch")) {
    id = SealBatch(fs, up, size);  // many objects, all or nothing (batch.cc)
  } else if (EndsWith(up->name, ".blob")) {
    id = SealBlob(fs, up, size);  // the writer's word: exactly these bytes, no builder
  } else if (auto built = TryBuilders(fs, up, size)) {
    id = std::move(*built);
  } else {
    id = SealBlob(fs, up, size);
  }
  if (!id.ok()) {
    up->error = OneLine(id.status().message());
    up->error_code = ErrnoFor(id.status());
    ++fs->counters.seal_errors;
    VY_LOG_INFO("seal of new/%s failed: %s", up->name.c_str(), up->error.c_str());
    return id.status();
  }
  up->sealed = *id;
  clock_gettime(CLOCK_MONOTONIC, &up->sealed_at);
  up->key = 0;
  up->error.clear();
  up->error_code = 0;
  ++fs->counters.seals;
  // new/<name> is now a link. The kernel never caches an upload's entry (LookupChild),
  // so its next path walk asks again and finds the link: no invalidation to send (each
  // would cost a request thread's hand-off and the kernel's attributes of new/).
  return Status::OK();
}

// True when no writable file of the staging inode exists (see the top of this file).
bool NoWritableReference(FsState* fs, int rdfd) {
  if (!fs->leases) return true;
  if (fcntl(rdfd, F_SETLEASE, F_RDLCK) == 0) {
    fcntl(rdfd, F_SETLEASE, F_UNLCK);
    return true;
  }
  if (errno != EAGAIN && errno != EBUSY) {
    VY_LOG_WARN("F_SETLEASE on a staging file: %s", std::strerror(errno));
  }
  return false;
}

}  // namespace

void DropIdleWriteFd(Upload* up) {
  // Only writers through the daemon need it; passthrough writers have their own.
  if (up->writers == up->pt_writers && up->wfd >= 0) {
    close(up->wfd);
    up->wfd = -1;
  }
}

int WriteFd(FsState* fs, Upload* up) {
  if (up->wfd < 0 && up->key != 0) {
    up->wfd = open(fs->store->UploadPath(up->key).c_str(), O_WRONLY | O_CLOEXEC);
  }
  return up->wfd;
}

void RetireIfDone(FsState* fs, Upload* up) {
  if (up->opens > 0 || !(up->removed || up->sealed.valid())) return;
  if (up->removed && up->key) fs->store->DropUpload(up->key);
  for (int* fd : {&up->fd, &up->wfd}) {
    if (*fd >= 0) close(*fd);  // a sealed payload's pages must not stay pinned by us
    *fd = -1;
  }
  if (up->key) fs->seal_waiter.Forget(up->key);
  up->key = 0;
  if (up->removed) fs->uploads.Retire(up->serial);
}

void TrySeal(FsState* fs, const std::shared_ptr<Upload>& up) {
  if (!up->seal_due || up->writers > 0 || up->sealed.valid() || up->removed || up->fd < 0) {
    return;
  }
  DropIdleWriteFd(up.get());
  if (!NoWritableReference(fs, up->fd)) {
    // Watch first, then look again: the last reference may have gone in between.
    fs->seal_waiter.Add(up->key, up);
    if (!NoWritableReference(fs, up->fd)) return;
  }
  up->seal_due = false;
  fs->seal_waiter.Forget(up->key);
  (void)SealUpload(fs, up.get());  // a failure is recorded in up->error and logged
  RetireIfDone(fs, up.get());
  up->cv.SignalAll();
}

Status CheckUpload(FsState* fs, Upload* up) {
  Status s;
  if (up->write_failed || (up->pt_written && fs->store->ArenaExhausted())) {
    s = Status::NoSpace("the arena filled up while new/" + up->name +
                        " was written: the file may be incomplete (rewrite it)");
  } else if (EndsWith(up->name, ".meta.json") && up->fd >= 0) {
    struct stat st;
    if (fstat(up->fd, &st) != 0) return Status::OK();  // the seal will say
    std::string bytes;
    s = ReadMetaBytes(up, static_cast<uint64_t>(st.st_size), &bytes);
    if (s.ok()) s = ParseCreateMeta(bytes).status();
  } else if (EndsWith(up->name, ".batch") && up->fd >= 0) {
    struct stat st;
    if (fstat(up->fd, &st) == 0) s = CheckBatch(up, static_cast<uint64_t>(st.st_size));
  }
  if (!s.ok()) {
    up->error = OneLine(s.message());
    up->error_code = ErrnoFor(s);
  }
  return s;
}

void SettleUpload(FsState* fs, const std::shared_ptr<Upload>& up) {
  // With passthrough, every writable handle holds a writable backing file until the
  // kernel releases it, and we hold none: when the lease is granted while handles are
  // still counted, their RELEASEs were queued before this request and will come. A
  // RELEASE being answered (answers_pending) is followed by its seal attempt: wait too.
  uint64_t released_target = 0;
  // (A handle never closed yet may be one whose open the kernel is still completing:
  // its backing file does not exist yet.)
  if (up->writers > 0 && up->unflushed_writers == 0 && up->writers == up->pt_writers &&
      up->wfd < 0 && up->fd >= 0 &&
      !up->sealed.valid() && !up->removed && NoWritableReference(fs, up->fd)) {
    released_target = up->writer_releases + static_cast<uint64_t>(up->writers);
  }
  // Bounded only as a guard against a lost count: a RELEASE is always handled.
  // (std::condition_variable::wait_for with a predicate: one deadline, then a last look.)
  auto settled = [&]() EXCLUSIVE_LOCKS_REQUIRED(up->mu) {
    return up->releases_read.load() == 0 && up->answers_pending == 0 &&
           up->writer_releases >= released_target;
  };
  const auto deadline = CondVar::Deadline(std::chrono::seconds(30));
  bool done = settled();
  while (!done) {
    const bool signalled = up->cv.WaitUntil(&up->mu, deadline);
    done = settled();
    if (!signalled) break;
  }
  if (!done) {
    VY_LOG_WARN("new/%s: a release is still pending after 30 s", up->name.c_str());
  }
  TrySeal(fs, up);
}

void NoteRequest(void*, const char* req, size_t len) {
  // fuse_in_header, then for RELEASE fuse_release_in, whose first field is our fh.
  if (len < sizeof(fuse_in_header) + sizeof(fuse_release_in)) return;
  fuse_in_header h;
  std::memcpy(&h, req, sizeof h);
  if (h.opcode != FUSE_RELEASE) return;
  fuse_release_in in;
  std::memcpy(&in, req + sizeof h, sizeof in);
  auto* fh = reinterpret_cast<FileHandle*>(in.fh);
  // The handle lives until OpRelease of this very request, which runs after us.
  if (fh && fh->kind == Kind::kUpload && fh->writer) {
    fh->release_read = true;
    ++fh->upload->releases_read;
  }
}

void ProbeLeases(FsState* fs, const std::string& staging_dir) {
  // A broken lease would signal SIGIO, whose default action ends the process. Ours
  // are held for two syscalls and nobody else opens staging files, but be safe.
  signal(SIGIO, SIG_IGN);
  std::string path = staging_dir + "/.lease-probe";
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
    fcntl(fd, F_SETLEASE, F_UNLCK);
  } else {
    fs->leases = false;
    VY_LOG_WARN(
        "F_SETLEASE is refused in %s (%s): uploads are sealed at their last release, "
        "and a writable mapping kept past close() is not waited for",
        staging_dir.c_str(), std::strerror(errno));
  }
  close(fd);
  unlink(path.c_str());
}

// ---- SealWaiter ----------------------------------------------------------------

void SealWaiter::Start(FsState* fs) {
  fs_ = fs;
  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ < 0 || pipe2(stop_, O_CLOEXEC) != 0) {
    VY_LOG_WARN("inotify: %s (seals that wait for a mapping happen at the next lookup)",
                std::strerror(errno));
    return;
  }
  thread_ = std::thread([this] { Loop(); });
}

void SealWaiter::Stop() {
  if (thread_.joinable()) {
    (void)!write(stop_[1], "x", 1);
    thread_.join();
  }
  for (int fd : {inotify_, stop_[0], stop_[1]}) {
    if (fd >= 0) close(fd);
  }
  inotify_ = stop_[0] = stop_[1] = -1;
}

void SealWaiter::Add(uint64_t key, std::weak_ptr<Upload> up) {
  MutexLock lock(&mu_);
  auto [it, fresh] = waiting_.try_emplace(key);
  it->second.up = std::move(up);
  if (!fresh || inotify_ < 0) return;
  std::string path = fs_->store->UploadPath(key);
  it->second.wd = inotify_add_watch(inotify_, path.c_str(), IN_CLOSE_WRITE);
  if (it->second.wd < 0) {
    VY_LOG_WARN("inotify on %s: %s (its seal happens at the next lookup)", path.c_str(),
                std::strerror(errno));
    return;
  }
  keys_[it->second.wd] = key;
}

void SealWaiter::Forget(uint64_t key) {
  MutexLock lock(&mu_);
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  if (it->second.wd >= 0) {
    inotify_rm_watch(inotify_, it->second.wd);  // its IN_IGNORED is skipped
    keys_.erase(it->second.wd);
  }
  waiting_.erase(it);
}

size_t SealWaiter::waiting() const {
  MutexLock lock(&mu_);
  return waiting_.size();
}

void SealWaiter::Retry(uint64_t key) {
  std::shared_ptr<Upload> up;
  {
    MutexLock lock(&mu_);
    auto it = waiting_.find(key);
    if (it == waiting_.end()) return;
    up = it->second.up.lock();
    if (it->second.wd >= 0) {
      inotify_rm_watch(inotify_, it->second.wd);
      keys_.erase(it->second.wd);
    }
    waiting_.erase(it);
  }
  if (!up) return;
  MutexLock lock(&up->mu);
  if (up->key == key) TrySeal(fs_, up);  // adds it back if still held
}

void SealWaiter::Loop() {
  alignas(inotify_event) char buf[16 * (sizeof(inotify_event) + 32)];
  for (;;) {
    pollfd p[2] = {{inotify_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    ssize_t n = read(inotify_, buf, sizeof buf);
    if (n <= 0) continue;
    for (char* q = buf; q < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(q);
      q += sizeof(inotify_event) + ev->len;
      std::vector<uint64_t> keys;
      {
        MutexLock lock(&mu_);
        if (ev->mask & IN_Q_OVERFLOW) {
          for (auto& w : waiting_) keys.push_back(w.first);
        } else if (auto k = keys_.find(ev->wd); k != keys_.end() && (ev->mask & IN_CLOSE_WRITE)) {
          keys.push_back(k->second);
        }
      }
      for (uint64_t k : keys) Retry(k);
    }
  }
}

}  // namespace vineyard
