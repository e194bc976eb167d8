// new/<file> while it is written: an ordinary file backed by a staging file in the
// arena, sealed when its last writer lets go (seal.cc). Opening and reading it, sizing
// it, its passthrough backing, and what a release of it does.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fs/nodes.h"
#include "meta/log.h"

namespace vineyard {

// Grows or shrinks an upload to `size`, charging the arena first.
Status ResizeUpload(FsState* fs, Upload* up, uint64_t size) {
  VY_RETURN_IF_ERROR(fs->store->ReserveUpload(up->key, size));
  int wfd = WriteFd(fs, up);
  if (wfd < 0) return Status::FromErrno("open new/" + up->name + " for writing", errno);
  int rc = ftruncate(wfd, static_cast<off_t>(size));
  int err = errno;
  DropIdleWriteFd(up);  // a truncate by path: no handle writes, the seal needs none
  if (rc != 0) return Status::FromErrno("truncate", err);
  if (size == 0) up->write_failed = false;  // rewritten from scratch
  up->size = size;
  up->mtime = up->ctime = RealtimeNow();
  return Status::OK();
}

// Passthrough for an upload: one backing id per upload, shared by its open handles.
// Returns the id, or 0 for the cached path. A writer's bytes then
// bypass the daemon, so room is made in the arena now (see Store::MakeRoom).
int AcquireUploadBacking(FsState* fs, Upload* up, bool writer) {
  if (!fs->passthrough.enabled() || up->fd < 0) return 0;
  if (writer) {
    const uint64_t capacity = fs->store->options().size;
    fs->store->MakeRoom(std::min<uint64_t>(capacity / 8, uint64_t{256} << 20));
    up->pt_written = true;
  }
  if (up->backing_id == 0) {
    auto id = fs->passthrough.BackingOpen(up->fd);
    if (!id.ok()) {
      VY_LOG_WARN("passthrough for new/%s: %s", up->name.c_str(), id.status().ToString().c_str());
      return 0;
    }
    up->backing_id = *id;
  }
  ++up->backing_refs;
  return up->backing_id;
}

namespace {

void ReleaseUploadBacking(FsState* fs, Upload* up) EXCLUSIVE_LOCKS_REQUIRED(up->mu) {
  if (up->backing_refs > 0 && --up->backing_refs == 0) {
    fs->passthrough.BackingClose(up->backing_id);
    up->backing_id = 0;
  }
}

}  // namespace

// The kernel released one open file of the upload: no descriptor in any process refers
// to it any more. The last writable one makes the seal due (seal.cc).
// Returns true when the release is settled only once it is answered (see
// UploadReleaseAnswered).
bool UploadReleased(FsState* fs, const std::shared_ptr<Upload>& up, bool writer, bool passthrough,
                    bool release_read, bool flushed) {
  MutexLock lock(&up->mu);
  if (writer && !flushed) --up->unflushed_writers;
  --up->opens;
  if (writer) --up->writers;
  if (writer && passthrough) --up->pt_writers;
  if (passthrough) ReleaseUploadBacking(fs, up.get());
  if (writer && up->writers == 0 && up->dirty && !up->sealed.valid() && !up->removed) {
    up->seal_due = true;
  }
  // A passthrough writer's backing file is the kernel's until it has our answer to
  // this RELEASE: the seal is tried after it (the lease would be refused now).
  const bool after_answer = writer && passthrough;
  if (after_answer) ++up->answers_pending;
  if (writer && !after_answer) ++up->writer_releases;
  if (!after_answer) TrySeal(fs, up);
  DropIdleWriteFd(up.get());
  RetireIfDone(fs, up.get());
  if (release_read) --up->releases_read;
  up->cv.SignalAll();
  return after_answer;
}

// After answering a passthrough writer's RELEASE: the kernel dropped its backing file
// while our answer was written (the last reference goes with the answer, its release
// runs before the write returns), so the lease is granted now unless a mapping or
// another open keeps a writable file. A lookup waiting for this release
// (SettleUpload) then finds the seal done, in this thread, with no hand-off.
void UploadReleaseAnswered(FsState* fs, const std::shared_ptr<Upload>& up) {
  MutexLock lock(&up->mu);
  --up->answers_pending;
  ++up->writer_releases;
  TrySeal(fs, up);
  RetireIfDone(fs, up.get());
  up->cv.SignalAll();
}

// Valid replies: fuse_reply_open, fuse_reply_err
void OpenUploadFile(fuse_req_t req, fuse_ino_t, const NodeKey& key, fuse_file_info* fi) {
  FsState* fs = State(req);
  auto fh = std::make_unique<FileHandle>();
  fh->kind = key.kind;
  auto up = fs->uploads.BySerial(key.num);
  if (!up) return (void)fuse_reply_err(req, ENOENT);
  MutexLock lock(&up->mu);
  if (up->sealed.valid() || up->fd < 0) return (void)fuse_reply_err(req, ENOENT);
  fh->upload = up;
  fh->writer = WantsWrite(fi->flags);
  if (fi->flags & O_TRUNC) {
    Status s = ResizeUpload(fs, up.get(), 0);
    if (!s.ok()) return ReplyStatus(req, s);
  }
  ++up->opens;
  if (fh->writer) {
    ++up->writers;
    ++up->unflushed_writers;
    up->dirty = true;
  }
  int backing = AcquireUploadBacking(fs, up.get(), fh->writer);
  fh->passthrough = backing > 0;
  if (fh->writer && fh->passthrough) ++up->pt_writers;
  DropIdleWriteFd(up.get());
  fi->fh = reinterpret_cast<uint64_t>(fh.release());
  if (backing > 0) Passthrough::MarkNextOpenReply(backing);
  fuse_reply_open(req, fi);  // on failure the kernel sends no release: nothing to undo
  Passthrough::ClearMark();
}

// Valid replies: fuse_reply_buf, fuse_reply_err
void ReadUploadFile(fuse_req_t req, FsState* fs, FileHandle* fh, size_t size, off_t off) {
  std::string buf(size, '\0');
  ssize_t n;
  bool closed;  // the staging file is closed (read under the lock, with the pread)
  {
    MutexLock lock(&fh->upload->mu);
    closed = fh->upload->fd < 0;
    n = closed ? -1 : pread(fh->upload->fd, buf.data(), size, off);
  }
  if (n < 0) return (void)fuse_reply_err(req, closed ? EIO : errno);
  fs->counters.read_bytes += static_cast<uint64_t>(n);
  fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
}

}  // namespace vineyard
