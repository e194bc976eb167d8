// Rows of the node table (node.h) for new/ and its entries: an upload being written,
// the link it leaves once sealed, and <file>.error beside a failed one (new_dir.cc
// keeps the directory, seal.cc the seal).
#include <sys/stat.h>

#include "fs/nodes.h"

namespace vineyard {

Status LookupInNew(FsState* fs, const NodeKey&, const std::string& name, NodeKey* child) {
  auto up = fs->uploads.Find(name);
  if (!up) {
    if (auto failed = FailedUploadFor(fs, name)) {
      *child = NodeKey{Kind::kUploadError, failed->serial, {}};
      return Status::OK();
    }
    return Status::NotFound(name);
  }
  MutexLock lock(&up->mu);
  if (ExpireLink(fs, up)) return Status::NotFound(name);
  *child = NodeKey{up->sealed.valid() ? Kind::kNewLink : Kind::kUpload, up->serial, {}};
  return Status::OK();
}

void ListNewDir(FsState* fs, const NodeKey&, DirListing* out) {
  // After the "." and ".." every listing starts with (ReplyDir answers the first two
  // as directories).
  std::vector<std::string> names = ListNew(fs);
  out->names.insert(out->names.end(), std::make_move_iterator(names.begin()),
                    std::make_move_iterator(names.end()));
}

Status StatUpload(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  auto up = fs->uploads.BySerial(key.num);
  if (!up) return Status::NotFound("upload");
  MutexLock lock(&up->mu);
  // An upload's attributes change only through this mount's kernel (writes,
  // passthrough included, update its size there): they may be cached briefly.
  // Its entry is never cached (LookupChild): the name turns into a link.
  *timeout = 1;
  uint64_t size = up->size;
  if (up->fd >= 0) {
    struct stat real;  // writes through mmap may have grown it behind our back
    if (fstat(up->fd, &real) == 0) size = static_cast<uint64_t>(real.st_size);
  }
  FillFile(st, up->mode, size, up->owner);
  st->st_mtim = up->mtime;
  st->st_atim = up->mtime;
  st->st_ctim = up->ctime;
  return Status::OK();
}

Status StatNewLink(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  auto up = fs->uploads.BySerial(key.num);
  if (!up) return Status::NotFound("upload");
  MutexLock lock(&up->mu);
  *timeout = 1;
  if (!up->sealed.valid()) return Status::NotFound("upload not sealed");
  FillLink(st, 11 + 17, up->owner);
  // Cached until it expires: an unlink after readlink needs no second lookup.
  *timeout = LinkCacheSeconds(fs, *up);
  return Status::OK();
}

Status StatUploadError(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  auto up = fs->uploads.BySerial(key.num);
  if (!up) return Status::NotFound("upload");
  MutexLock lock(&up->mu);
  if (up->error.empty() || up->sealed.valid()) return Status::NotFound("no failed seal");
  FillFile(st, 0444, up->error.size() + 1, up->owner);
  st->st_mtim = st->st_atim = st->st_ctim = up->ctime;
  *timeout = kNoCache;
  return Status::OK();
}

std::string NewLinkTarget(FsState* fs, const NodeKey& key) {
  auto up = fs->uploads.BySerial(key.num);
  if (!up) return "";
  MutexLock lock(&up->mu);
  return up->sealed.valid() ? "../objects/" + up->sealed.ToString() : "";
}

Status RenderUploadError(FsState* fs, const NodeKey& key, std::string* text) {
  auto up = fs->uploads.BySerial(key.num);
  if (!up) return Status::NotFound("upload");
  MutexLock lock(&up->mu);
  if (up->error.empty() || up->sealed.valid()) return Status::NotFound("no failed seal");
  *text = up->error + "\n";
  return Status::OK();
}

}  // namespace vineyard
