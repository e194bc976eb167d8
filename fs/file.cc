// Files: payloads (objects/<id>/data), generated files (meta.json, status.json,
// metrics, instances/<n>.json) and uploads in new/. Payloads are served from an mmap
// of the blob's arena file with keep_cache (they never change); meta.json is cached
// while its text stays the same (CacheMetaText); the other generated files use
// direct_io so every open sees fresh content; uploads are ordinary files backed by a
// staging file in the arena and sealed when their last writer lets go (seal.cc).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

bool WantsWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }

timespec Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// Opens a payload: pins it in the arena (reloading it if evicted). Above
// passthrough_min it passes through to the blob's backing id (BlobBackings: registered
// once, reused by every open); below, the kernel's page cache serves it (keep_cache)
// and the daemon maps the file only if the kernel ever asks for a READ (DataMap).
// `*backing` receives the passthrough backing id, or 0 for the cached path.
Status OpenData(FsState* fs, ObjectID id, FileHandle* fh, int* backing) {
  *backing = 0;
  auto rec = fs->table->Get(id);
  if (!rec || !rec->is_blob()) return Status::NotFound(id.ToString());
  VY_RETURN_IF_ERROR(fs->store->PinBlob(id));
  fh->kind = Kind::kDataFile;
  fh->id = id;
  fh->size = rec->size;
  if (fs->passthrough.enabled() && fh->size > fs->opts.passthrough_min) {
    *backing = fs->backings.Acquire(&fs->passthrough, id, fs->store->BlobPath(id));
    fh->backing = *backing;
    fh->passthrough = *backing > 0;
  }
  return Status::OK();
}

// The payload mapped for a READ (the cached path's first fill of the page cache);
// nullptr with errno set if it cannot be.
const char* DataMap(FsState* fs, FileHandle* fh) {
  std::lock_guard<std::mutex> lock(fh->map_mu);
  if (fh->map || fh->size == 0) return fh->map;
  int fd = open(fs->store->BlobPath(fh->id).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  void* p = mmap(nullptr, fh->size, PROT_READ, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) {
    VY_LOG_WARN("map payload of %s: %s", fh->id.ToString().c_str(), std::strerror(err));
    errno = err;
    return nullptr;
  }
  fh->map = static_cast<const char*>(p);
  return fh->map;
}

void CloseData(FsState* fs, FileHandle* fh) {
  if (fh->passthrough) fs->backings.Release(&fs->passthrough, fh->id, fh->backing);
  if (fh->map) munmap(const_cast<char*>(fh->map), fh->size);
  fs->store->CloseBlob(fh->id);
  // A blob deleted while this open registered its id (the store's drop came first)
  // must not keep its file: let the id go with its last user.
  if (fh->passthrough && !fs->store->IsResident(fh->id)) fs->backings.Drop(&fs->passthrough, fh->id);
}

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
  up->mtime = up->ctime = Now();
  return Status::OK();
}

// Passthrough for an upload: one backing id per upload, shared by its open handles.
// Requires up->mu. Returns the id, or 0 for the cached path. A writer's bytes then
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

void ReleaseUploadBacking(FsState* fs, Upload* up) {
  if (up->backing_refs > 0 && --up->backing_refs == 0) {
    fs->passthrough.BackingClose(up->backing_id);
    up->backing_id = 0;
  }
}

void ReplyOpen(fuse_req_t req, fuse_file_info* fi, std::unique_ptr<FileHandle> fh,
               int backing = 0) {
  fi->fh = reinterpret_cast<uint64_t>(fh.get());
  if (backing > 0) Passthrough::MarkNextOpenReply(backing);
  int rc = fuse_reply_open(req, fi);
  Passthrough::ClearMark();
  if (rc == 0) {
    fh.release();
  } else if (fh->kind == Kind::kDataFile) {
    CloseData(State(req), fh.get());
  }
}

// meta.json is read through the page cache (keep_cache) when the kernel holds this very
// text already: an open is then all a warm read sends. The text is rendered at every
// open and compared with what the kernel was given (InodeTable::MetaCache), so a change
// of any kind (a member deleted, a persist, a remote update) is seen by the next open:
// its pages are dropped (no keep_cache) and, if its size changed, its attributes too,
// before this open returns (the next read past the old size asks for them again).
void CacheMetaText(FsState* fs, fuse_ino_t ino, const std::string& text, fuse_file_info* fi) {
  const uint64_t hash = std::hash<std::string>()(text);
  InodeTable::MetaCache old = fs->inodes.SwapMeta(ino, hash, text.size());
  fi->keep_cache = old.pages == hash && old.size == text.size() + 1;
  fi->noflush = 1;  // read-only: close() need not ask us anything
  if (old.size != text.size() + 1 && fs->session) {
    // Attributes only (offset < 0): no page lock is taken, so this is safe from
    // within the OPEN of the same inode (unlike a page invalidation).
    int rc = fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0);
    if (rc != 0 && rc != -ENOENT) VY_LOG_WARN("invalidate meta.json attributes: %s", std::strerror(-rc));
  }
}

// The kernel released one open file of the upload: no descriptor in any process refers
// to it any more. The last writable one makes the seal due (seal.cc).
// Returns true when the release is settled only once it is answered (see
// UploadReleaseAnswered).
bool UploadReleased(FsState* fs, const std::shared_ptr<Upload>& up, bool writer, bool passthrough,
                    bool release_read, bool flushed) {
  std::lock_guard<std::mutex> lock(up->mu);
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
  up->cv.notify_all();
  return after_answer;
}

// After answering a passthrough writer's RELEASE: the kernel dropped its backing file
// while our answer was written (the last reference goes with the answer, its release
// runs before the write returns), so the lease is granted now unless a mapping or
// another open keeps a writable file. A lookup waiting for this release
// (SettleUpload) then finds the seal done, in this thread, with no hand-off.
void UploadReleaseAnswered(FsState* fs, const std::shared_ptr<Upload>& up) {
  std::lock_guard<std::mutex> lock(up->mu);
  --up->answers_pending;
  ++up->writer_releases;
  TrySeal(fs, up);
  RetireIfDone(fs, up.get());
  up->cv.notify_all();
}

// create() in resolvers/: installing a plugin.
void CreateInResolvers(fuse_req_t req, const NodeKey& parent, const char* name,
                       fuse_file_info* fi) {
  FsState* fs = State(req);
  auto fh = std::make_unique<FileHandle>();
  Status s = CreatePlugin(fs, req, name, fh.get());
  if (!s.ok()) return ReplyStatus(req, s);
  fuse_entry_param e;
  s = LookupChild(fs, parent, name, &e);
  if (!s.ok()) {
    ClosePluginFile(fs, fh.get());
    return ReplyStatus(req, s);
  }
  fi->direct_io = 1;
  fi->fh = reinterpret_cast<uint64_t>(fh.get());
  if (fuse_reply_create(req, &e, fi) == 0) {
    fh.release();
  } else {
    ClosePluginFile(fs, fh.get());
  }
}

}  // namespace

// Valid replies: fuse_reply_create, fuse_reply_err
void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  FsState* fs = State(req);
  auto pkey = NodeOrReply(req, parent);
  if (!pkey) return;
  if (pkey->kind == Kind::kResolvers) return CreateInResolvers(req, *pkey, name, fi);
  if (pkey->kind != Kind::kNew) return (void)fuse_reply_err(req, EPERM);
  if (!ValidateName(name).ok()) return (void)fuse_reply_err(req, EINVAL);
  auto upload = fs->store->CreateUpload();
  if (!upload.ok()) return ReplyStatus(req, upload.status());
  auto added = fs->uploads.Add(name, Caller(req), mode);
  if (!added.ok()) {
    close(upload->fd);
    fs->store->DropUpload(upload->key);
    return ReplyStatus(req, added.status());
  }
  std::shared_ptr<Upload> up = *added;
  bool writer = WantsWrite(fi->flags);
  int backing;
  {
    std::lock_guard<std::mutex> lock(up->mu);
    up->key = upload->key;
    up->wfd = upload->fd;
    up->fd = open(fs->store->UploadPath(upload->key).c_str(), O_RDONLY | O_CLOEXEC);
    if (up->fd < 0) VY_LOG_WARN("open new/%s read-only: %s", name, std::strerror(errno));
    up->mtime = up->ctime = Now();
    up->opens = 1;
    up->writers = writer ? 1 : 0;
    up->unflushed_writers = writer ? 1 : 0;
    up->dirty = true;  // even an empty file becomes an (empty) object when closed
    backing = AcquireUploadBacking(fs, up.get(), writer);
    if (writer && backing > 0) ++up->pt_writers;
    DropIdleWriteFd(up.get());  // a passthrough writer needs none of ours
  }
  fuse_entry_param e;
  Status s = LookupChild(fs, *pkey, name, &e);
  if (!s.ok()) return ReplyStatus(req, s);  // removed concurrently
  auto fh = std::make_unique<FileHandle>();
  fh->kind = Kind::kUpload;
  fh->upload = up;
  fh->writer = writer;
  fh->passthrough = backing > 0;
  fi->fh = reinterpret_cast<uint64_t>(fh.get());
  ++fs->counters.opens;
  if (backing > 0) Passthrough::MarkNextOpenReply(backing);
  int rc = fuse_reply_create(req, &e, fi);
  Passthrough::ClearMark();
  if (rc == 0) {
    fh.release();
  } else {
    if (UploadReleased(fs, up, writer, fh->passthrough, /*release_read=*/false, /*flushed=*/false)) {
      UploadReleaseAnswered(fs, up);
    }
  }
  ExpireOldLinks(fs);  // after the reply: leftover links cost the writer no wait
}

// Valid replies: fuse_reply_open, fuse_reply_err
void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FsState* fs = State(req);
  ++fs->counters.opens;
  auto key = NodeOrReply(req, ino);
  if (!key) return;
  auto fh = std::make_unique<FileHandle>();
  fh->kind = key->kind;
  switch (key->kind) {
    case Kind::kDataFile: {
      // Sealed payloads are immutable, for root too (default_permissions lets root
      // past the 0444 mode, so the check is here).
      if (WantsWrite(fi->flags)) return (void)fuse_reply_err(req, EPERM);
      int backing;
      Status s = OpenData(fs, ObjectID(key->num), fh.get(), &backing);
      if (!s.ok()) return ReplyStatus(req, s);
      // Immutable: the page cache never needs dropping. (The kernel refuses
      // keep_cache together with passthrough, which has no cache to keep.)
      fi->keep_cache = backing == 0;
      fi->noflush = 1;
      return ReplyOpen(req, fi, std::move(fh), backing);
    }
    case Kind::kMetaFile:
    case Kind::kStatus:
    case Kind::kMetrics:
    case Kind::kInstanceFile:
    case Kind::kUploadError: {
      if (WantsWrite(fi->flags)) return (void)fuse_reply_err(req, EPERM);
      if (key->kind == Kind::kUploadError) {
        auto up = fs->uploads.BySerial(key->num);
        if (!up) return (void)fuse_reply_err(req, ENOENT);
        std::lock_guard<std::mutex> lock(up->mu);
        if (up->error.empty() || up->sealed.valid()) return (void)fuse_reply_err(req, ENOENT);
        fh->content = up->error + "\n";
      } else if (key->kind == Kind::kMetaFile) {
        auto text = fs->table->RenderMeta(ObjectID(key->num));
        if (!text.ok()) return ReplyStatus(req, text.status());
        fh->content = std::move(*text);
      } else if (key->kind == Kind::kStatus) {
        fh->content = RenderStatus(fs);
      } else if (key->kind == Kind::kMetrics) {
        fh->content = RenderMetrics(fs);
      } else {
        fh->content = RenderInstance(fs, static_cast<InstanceId>(key->num));
      }
      if (key->kind == Kind::kMetaFile) {
        CacheMetaText(fs, ino, fh->content, fi);
      } else {
        fi->direct_io = 1;  // generated per open: never serve a stale cached copy
      }
      return ReplyOpen(req, fi, std::move(fh));
    }
    case Kind::kUpload: {
      auto up = fs->uploads.BySerial(key->num);
      if (!up) return (void)fuse_reply_err(req, ENOENT);
      std::lock_guard<std::mutex> lock(up->mu);
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
      return;
    }
    case Kind::kViewFile:
    case Kind::kPluginFile:
    case Kind::kPluginError: {
      Status s = OpenPluginFile(fs, req, *key, fi, fh.get());
      if (!s.ok()) return ReplyStatus(req, s);
      fi->fh = reinterpret_cast<uint64_t>(fh.get());
      if (fuse_reply_open(req, fi) == 0) {
        fh.release();
      } else {
        ClosePluginFile(fs, fh.get());
      }
      return;
    }
    default:
      return (void)fuse_reply_err(req, EISDIR);
  }
}

// Valid replies: fuse_reply_buf, fuse_reply_iov, fuse_reply_data, fuse_reply_err
void OpRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  FsState* fs = State(req);
  auto* fh = reinterpret_cast<FileHandle*>(fi->fh);
  // Counted: READs of payloads and uploads (passthrough makes these zero), not of
  // generated files such as status.json itself.
  if (fh->kind == Kind::kDataFile || fh->kind == Kind::kUpload) ++fs->counters.reads;
  const uint64_t uoff = static_cast<uint64_t>(off);
  switch (fh->kind) {
    case Kind::kDataFile: {
      size_t n = uoff >= fh->size ? 0 : std::min<uint64_t>(size, fh->size - uoff);
      const char* map = n ? DataMap(fs, fh) : nullptr;
      if (n && !map) return (void)fuse_reply_err(req, errno ? errno : EIO);
      fs->counters.read_bytes += n;
      fuse_reply_buf(req, n ? map + uoff : nullptr, n);
      return;
    }
    case Kind::kViewFile:
    case Kind::kPluginFile:
      return ReadPluginFile(req, fh, size, off);
    case Kind::kUpload: {
      std::string buf(size, '\0');
      ssize_t n;
      {
        std::lock_guard<std::mutex> lock(fh->upload->mu);
        n = fh->upload->fd < 0 ? -1 : pread(fh->upload->fd, buf.data(), size, off);
      }
      if (n < 0) return (void)fuse_reply_err(req, fh->upload->fd < 0 ? EIO : errno);
      fs->counters.read_bytes += static_cast<uint64_t>(n);
      fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
      return;
    }
    default: {
      const std::string& c = fh->content;
      size_t n = uoff >= c.size() ? 0 : std::min<size_t>(size, c.size() - uoff);
      fuse_reply_buf(req, c.data() + (n ? uoff : 0), n);
    }
  }
}

// Valid replies: fuse_reply_write, fuse_reply_err
void OpWrite(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  FsState* fs = State(req);
  auto* fh = reinterpret_cast<FileHandle*>(fi->fh);
  if (fh->kind == Kind::kPluginFile && fh->writer) {
    ssize_t n = pwrite(fh->fd, buf, size, off);
    if (n < 0) return (void)fuse_reply_err(req, errno);
    return (void)fuse_reply_write(req, static_cast<size_t>(n));
  }
  if (fh->kind != Kind::kUpload) return (void)fuse_reply_err(req, EBADF);
  ++fs->counters.writes;
  Upload* up = fh->upload.get();
  std::lock_guard<std::mutex> lock(up->mu);
  if (up->sealed.valid() || up->fd < 0) return (void)fuse_reply_err(req, EPERM);
  const uint64_t end = static_cast<uint64_t>(off) + size;
  if (end > up->size) {
    Status s = fs->store->ReserveUpload(up->key, end);
    if (!s.ok()) {
      up->write_failed = true;  // the file now lacks bytes its writer meant to write
      return ReplyStatus(req, s);
    }
  }
  int wfd = WriteFd(fs, up);
  if (wfd < 0) return (void)fuse_reply_err(req, errno);
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(wfd, buf + done, size - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return (void)fuse_reply_err(req, errno);
    done += static_cast<size_t>(n);
  }
  up->size = std::max(up->size, end);
  up->mtime = up->ctime = Now();
  up->dirty = true;
  fs->counters.write_bytes += size;
  fuse_reply_write(req, size);
}

// Valid replies: fuse_reply_attr, fuse_reply_err
void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  FsState* fs = State(req);
  auto key = NodeOrReply(req, ino);
  if (!key) return;
  if (key->kind == Kind::kPluginFile && MayWritePlugins(req)) {
    // cp -p into resolvers/ sets times and mode: the plugin file keeps its own.
    return OpGetattr(req, ino, nullptr);
  }
  if (key->kind != Kind::kUpload) {
    // Sealed objects and the fixed tree are immutable; atime updates are harmless.
    if (to_set & ~(FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
      return (void)fuse_reply_err(req, EPERM);
    }
    return OpGetattr(req, ino, nullptr);
  }
  auto up = fs->uploads.BySerial(key->num);
  if (!up) return (void)fuse_reply_err(req, ENOENT);
  {
    std::lock_guard<std::mutex> lock(up->mu);
    if (up->sealed.valid() || up->fd < 0) return (void)fuse_reply_err(req, EPERM);
    if (to_set & FUSE_SET_ATTR_SIZE) {
      const uint64_t size = static_cast<uint64_t>(attr->st_size);
      Status s = ResizeUpload(fs, up.get(), size);
      if (!s.ok()) return ReplyStatus(req, s);
      up->dirty = true;
    }
    if (to_set & FUSE_SET_ATTR_MODE) up->mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID) up->owner.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) up->owner.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_MTIME) up->mtime = attr->st_mtim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) up->mtime = Now();
    up->ctime = Now();
  }
  OpGetattr(req, ino, nullptr);
}

// Valid replies: fuse_reply_err
//
// close() of a writable upload handle. The seal does not happen here: the descriptor
// being closed may not be the last reference to its open file (a forked child, a dup,
// a mapping), and nothing in FLUSH tells. It follows the last RELEASE (seal.cc); close()
// returns what the seal would refuse in the bytes written so far (CheckUpload).
void OpFlush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  FsState* fs = State(req);
  ++fs->counters.flushes;
  auto* fh = reinterpret_cast<FileHandle*>(fi->fh);
  if (fh->kind == Kind::kPluginFile && fh->writer)
    return ReplyStatus(req, FinishPluginInstall(fs, fh));
  if (fh->kind != Kind::kUpload || !fh->writer) return (void)fuse_reply_err(req, 0);
  Upload* up = fh->upload.get();
  std::unique_lock<std::mutex> lock(up->mu);
  if (!fh->flushed) {
    fh->flushed = true;
    --up->unflushed_writers;
  }
  if (up->writers != 1 || !up->dirty || up->sealed.valid() || up->removed) {
    return (void)fuse_reply_err(req, 0);
  }
  Status s = CheckUpload(fs, up);
  lock.unlock();
  ReplyStatus(req, s);
}

// Valid replies: fuse_reply_err
void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  FsState* fs = State(req);
  ++fs->counters.releases;
  std::unique_ptr<FileHandle> fh(reinterpret_cast<FileHandle*>(fi->fh));
  if (fh->kind == Kind::kDataFile) CloseData(fs, fh.get());
  if (fh->kind == Kind::kViewFile || fh->kind == Kind::kPluginFile) ClosePluginFile(fs, fh.get());
  bool answered_first = false;
  if (fh->kind == Kind::kUpload) {
    answered_first = UploadReleased(fs, fh->upload, fh->writer, fh->passthrough,
                                    fh->release_read, fh->flushed);
  }
  fuse_reply_err(req, 0);
  if (answered_first) UploadReleaseAnswered(fs, fh->upload);
}

// Valid replies: fuse_reply_err
void OpFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  FsState* fs = State(req);
  auto* fh = reinterpret_cast<FileHandle*>(fi->fh);
  ObjectID id;
  if (fh->kind == Kind::kDataFile) id = fh->id;
  if (fh->kind == Kind::kUpload) {
    std::lock_guard<std::mutex> lock(fh->upload->mu);
    id = fh->upload->sealed;
  }
  // An unsealed upload is not an object yet: its bytes become durable with the seal.
  if (!id.valid() || !id.is_blob()) return (void)fuse_reply_err(req, 0);
  ReplyStatus(req, fs->store->SyncBlob(id));
}

// Valid replies: fuse_reply_err
void OpFallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length,
                 fuse_file_info* fi) {
  FsState* fs = State(req);
  auto* fh = reinterpret_cast<FileHandle*>(fi->fh);
  if (fh->kind != Kind::kUpload) return (void)fuse_reply_err(req, EPERM);
  if (mode != 0) return (void)fuse_reply_err(req, EOPNOTSUPP);
  Upload* up = fh->upload.get();
  std::lock_guard<std::mutex> lock(up->mu);
  if (up->sealed.valid() || up->fd < 0) return (void)fuse_reply_err(req, EPERM);
  uint64_t end = static_cast<uint64_t>(offset + length);
  if (end > up->size) {
    Status s = ResizeUpload(fs, up, end);
    if (!s.ok()) return ReplyStatus(req, s);
    up->dirty = true;
  }
  fuse_reply_err(req, 0);
}

int BlobBackings::Acquire(Passthrough* pt, ObjectID id, const std::string& path) {
  MutexLock lock(&mu_);
  auto it = ids_.find(id);
  if (it != ids_.end()) {
    if (it->second.refs++ == 0) --stats_.idle;
    ++stats_.reused;
    return it->second.backing;
  }
  // Registered under mu_: two first opens must not make two ids for one inode.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    VY_LOG_WARN("passthrough for %s: open: %s", id.ToString().c_str(), std::strerror(errno));
    return 0;
  }
  auto backing = pt->BackingOpen(fd);
  close(fd);  // the backing id holds the file
  if (!backing.ok()) {
    VY_LOG_WARN("passthrough for %s: %s", id.ToString().c_str(),
                backing.status().ToString().c_str());
    return 0;
  }
  ids_[id] = Entry{*backing, 1};
  ++stats_.opened;
  return *backing;
}

void BlobBackings::Release(Passthrough* pt, ObjectID id, int backing) {
  MutexLock lock(&mu_);
  auto it = ids_.find(id);
  if (it == ids_.end() || it->second.backing != backing) return;  // dropped meanwhile
  if (--it->second.refs > 0) return;
  ++stats_.idle;
  if (stats_.idle > kMaxIdle) CloseLocked(pt, it);  // bounded: the rest reopen per open
}

void BlobBackings::Drop(Passthrough* pt, ObjectID id) {
  MutexLock lock(&mu_);
  auto it = ids_.find(id);
  if (it != ids_.end()) CloseLocked(pt, it);
}

void BlobBackings::DropAll(Passthrough* pt) {
  MutexLock lock(&mu_);
  while (!ids_.empty()) CloseLocked(pt, ids_.begin());
}

void BlobBackings::CloseLocked(Passthrough* pt,
                               std::unordered_map<ObjectID, Entry>::iterator it) {
  pt->BackingClose(it->second.backing);  // open files keep their own reference
  if (it->second.refs == 0) --stats_.idle;
  ids_.erase(it);
  ++stats_.closed;
}

BlobBackings::Stats BlobBackings::stats() const {
  MutexLock lock(&mu_);
  Stats s = stats_;
  s.held = ids_.size();
  return s;
}

}  // namespace vineyard
