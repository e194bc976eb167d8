// objects/<id>/data: a blob's payload. Served from an mmap of the blob's arena file
// with keep_cache (payloads never change), or passed through to its backing file
// (BlobBackings, one id per blob).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fs/nodes.h"
#include "meta/log.h"

namespace vineyard {

namespace {

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

}  // namespace

void CloseData(FsState* fs, FileHandle* fh) {
  if (fh->passthrough) fs->backings.Release(&fs->passthrough, fh->id, fh->backing);
  if (fh->map) munmap(const_cast<char*>(fh->map), fh->size);
  fs->store->CloseBlob(fh->id);
  // A blob deleted while this open registered its id (the store's drop came first)
  // must not keep its file: let the id go with its last user.
  if (fh->passthrough && !fs->store->IsResident(fh->id))
    fs->backings.Drop(&fs->passthrough, fh->id);
}

void ReplyOpen(fuse_req_t req, fuse_file_info* fi, std::unique_ptr<FileHandle> fh, int backing) {
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

// Valid replies: fuse_reply_open, fuse_reply_err
void OpenDataFile(fuse_req_t req, fuse_ino_t, const NodeKey& key, fuse_file_info* fi) {
  FsState* fs = State(req);
  auto fh = std::make_unique<FileHandle>();
  fh->kind = key.kind;
  // Sealed payloads are immutable, for root too (default_permissions lets root
  // past the 0444 mode, so the check is here).
  if (WantsWrite(fi->flags)) return (void)fuse_reply_err(req, EPERM);
  int backing;
  Status s = OpenData(fs, ObjectID(key.num), fh.get(), &backing);
  if (!s.ok()) return ReplyStatus(req, s);
  // Immutable: the page cache never needs dropping. (The kernel refuses
  // keep_cache together with passthrough, which has no cache to keep.)
  fi->keep_cache = backing == 0;
  fi->noflush = 1;
  return ReplyOpen(req, fi, std::move(fh), backing);
}

// Valid replies: fuse_reply_buf, fuse_reply_err
void ReadDataFile(fuse_req_t req, FsState* fs, FileHandle* fh, size_t size, off_t off) {
  const uint64_t uoff = static_cast<uint64_t>(off);
  size_t n = uoff >= fh->size ? 0 : std::min<uint64_t>(size, fh->size - uoff);
  const char* map = n ? DataMap(fs, fh) : nullptr;
  if (n && !map) return (void)fuse_reply_err(req, errno ? errno : EIO);
  fs->counters.read_bytes += n;
  fuse_reply_buf(req, n ? map + uoff : nullptr, n);
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

void BlobBackings::CloseLocked(Passthrough* pt, std::unordered_map<ObjectID, Entry>::iterator it) {
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
