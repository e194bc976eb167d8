// Files: the FUSE handlers of create, open, read, write, setattr, flush, release,
// fsync and fallocate. What opening and reading a node does is its kind's row of the
// node table (node.h): payloads in data_file.cc, generated files in
// generated_file.cc, uploads in new/ in upload_file.cc, views and plugins in
// plugins.cc. Writes go to uploads (and to a plugin being installed) only.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "fs/nodes.h"
#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

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
    MutexLock lock(&up->mu);
    up->key = upload->key;
    up->wfd = upload->fd;
    up->fd = open(fs->store->UploadPath(upload->key).c_str(), O_RDONLY | O_CLOEXEC);
    if (up->fd < 0) VY_LOG_WARN("open new/%s read-only: %s", name, std::strerror(errno));
    up->mtime = up->ctime = RealtimeNow();
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
// Valid replies: fuse_reply_open, fuse_reply_err (the row's open replies)
void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FsState* fs = State(req);
  ++fs->counters.opens;
  auto key = NodeOrReply(req, ino);
  if (!key) return;
  const NodeOps& ops = OpsOf(key->kind);
  if (!ops.open) return (void)fuse_reply_err(req, EISDIR);
  ops.open(req, ino, *key, fi);
}

// Valid replies: fuse_reply_buf, fuse_reply_iov, fuse_reply_data, fuse_reply_err
void OpRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  FsState* fs = State(req);
  auto* fh = reinterpret_cast<FileHandle*>(fi->fh);
  // Counted: READs of payloads and uploads (passthrough makes these zero), not of
  // generated files such as status.json itself.
  if (fh->kind == Kind::kDataFile || fh->kind == Kind::kUpload) ++fs->counters.reads;
  const NodeOps& ops = OpsOf(fh->kind);
  (ops.read ? ops.read : ReadContent)(req, fs, fh, size, off);
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
  MutexLock lock(&up->mu);
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
  up->mtime = up->ctime = RealtimeNow();
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
    MutexLock lock(&up->mu);
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
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) up->mtime = RealtimeNow();
    up->ctime = RealtimeNow();
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
  MutexUniqueLock lock(&up->mu);
  if (!fh->flushed) {
    fh->flushed = true;
    --up->unflushed_writers;
  }
  if (up->writers != 1 || !up->dirty || up->sealed.valid() || up->removed) {
    lock.Unlock();  // no reply holds an upload's lock
    return (void)fuse_reply_err(req, 0);
  }
  Status s = CheckUpload(fs, up);
  lock.Unlock();
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
    MutexLock lock(&fh->upload->mu);
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
  MutexLock lock(&up->mu);
  if (up->sealed.valid() || up->fd < 0) return (void)fuse_reply_err(req, EPERM);
  uint64_t end = static_cast<uint64_t>(offset + length);
  if (end > up->size) {
    Status s = ResizeUpload(fs, up, end);
    if (!s.ok()) return ReplyStatus(req, s);
    up->dirty = true;
  }
  fuse_reply_err(req, 0);
}
}  // namespace vineyard
