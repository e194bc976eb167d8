// lookup, getattr, forget, readlink, statfs: all answered from memory (the object
// table and the inode table), never from RocksDB. What a node's attributes, children
// and link target are is the node table's (node.h); these are the FUSE handlers.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs/node.h"
#include "fs/ops.h"

namespace vineyard {

// The daemon never changes its ids: asked once, not twice per GETATTR of a directory.
Owner MountOwner() {
  static const Owner owner{getuid(), getgid()};
  return owner;
}

void FillDir(struct stat* st, mode_t perm, Owner owner) {
  st->st_mode = S_IFDIR | perm;
  st->st_nlink = 2;
  st->st_uid = owner.uid;
  st->st_gid = owner.gid;
}

void FillFile(struct stat* st, mode_t perm, uint64_t size, Owner owner) {
  st->st_mode = S_IFREG | perm;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(size);
  st->st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
  st->st_uid = owner.uid;
  st->st_gid = owner.gid;
}

// Valid replies: fuse_reply_entry, fuse_reply_err
void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  FsState* fs = State(req);
  ++fs->counters.lookups;
  if (ReplyIfNameTooLong(req, name)) return;
  auto pkey = NodeOrReply(req, parent);
  if (!pkey) return;
  if (pkey->kind == Kind::kNew) {
    // A close() before this lookup may have made the upload a link (seal.cc).
    if (auto up = fs->uploads.Find(name)) {
      MutexLock lock(&up->mu);
      SettleUpload(fs, up);
    }
  }
  fuse_entry_param e;
  Status s = LookupChild(fs, *pkey, name, &e);
  if (!s.ok()) return ReplyStatus(req, s);
  fuse_reply_entry(req, &e);
}

// Valid replies: fuse_reply_attr, fuse_reply_err
void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FsState* fs = State(req);
  ++fs->counters.getattrs;
  auto key = NodeOrReply(req, ino);
  if (!key) return;
  struct stat st;
  double timeout;
  Status s = StatNode(fs, *key, ino, &st, &timeout);
  auto* fh = fi && key->kind == Kind::kViewFile ? reinterpret_cast<FileHandle*>(fi->fh) : nullptr;
  if (!s.ok() && fh && fh->view) {
    // An open view whose plugin went away keeps the view it opened (and its size).
    std::memset(&st, 0, sizeof st);
    st.st_ino = ino;
    st.st_mode = S_IFREG | 0444;
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(fh->view->size);
    timeout = 0;
    s = Status::OK();
  }
  if (!s.ok()) return ReplyStatus(req, s);
  if (key->kind == Kind::kMetaFile) fs->inodes.NoteMetaSize(ino, static_cast<uint64_t>(st.st_size));
  fuse_reply_attr(req, &st, timeout);
}

// Valid replies: fuse_reply_none
void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  State(req)->inodes.Forget(ino, nlookup);
  fuse_reply_none(req);
}

// Valid replies: fuse_reply_none
void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  FsState* fs = State(req);
  for (size_t i = 0; i < count; ++i) fs->inodes.Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

// Valid replies: fuse_reply_readlink, fuse_reply_err
void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  FsState* fs = State(req);
  auto key = NodeOrReply(req, ino);
  if (!key) return;
  const NodeOps& ops = OpsOf(key->kind);
  if (!ops.readlink) return (void)fuse_reply_err(req, EINVAL);
  const std::string target = ops.readlink(fs, *key);
  if (target.empty()) return (void)fuse_reply_err(req, ENOENT);
  fuse_reply_readlink(req, target.c_str());
}

// Valid replies: fuse_reply_statfs, fuse_reply_err
void OpStatfs(fuse_req_t req, fuse_ino_t) {
  FsState* fs = State(req);
  Store::Stats s = fs->store->stats();
  struct statvfs sv;
  std::memset(&sv, 0, sizeof sv);
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = s.capacity / 4096;
  sv.f_bfree = sv.f_bavail = (s.capacity > s.used ? s.capacity - s.used : 0) / 4096;
  uint64_t objects = fs->table->counts().objects;
  // Objects are the inodes that count: `df -i` shows their number as IUsed.
  sv.f_ffree = sv.f_favail = uint64_t{1} << 32;
  sv.f_files = objects + sv.f_ffree;
  sv.f_namemax = 255;
  fuse_reply_statfs(req, &sv);
}

}  // namespace vineyard
