// Directories: listing (readdir, readdirplus) and the namespace operations that the
// tree maps onto the object table: rmdir deletes an object, symlink/unlink/rename
// put, drop and move names, unlink in new/ drops an upload or its link.
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs/node.h"
#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

// A snapshot of a directory taken at opendir (DirListing, node.h). POSIX lets a
// listing miss or show entries changed after opendir, and a snapshot keeps offsets
// stable while the directory changes under a long `ls`.
using DirHandle = DirListing;

void Snapshot(FsState* fs, const NodeKey& dir, DirHandle* dh) {
  dh->names.push_back(".");
  dh->names.push_back("..");
  OpsOf(dir.kind).list(fs, dir, dh);
}

void ReplyDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
              bool plus) {
  FsState* fs = State(req);
  ++(plus ? fs->counters.readdirplus : fs->counters.readdirs);
  auto* dh = reinterpret_cast<DirHandle*>(fi->fh);
  auto key = fs->inodes.Get(ino);
  if (!key) return (void)fuse_reply_err(req, ESTALE);
  std::string buf(size, '\0');
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < dh->size(); ++i) {
    const std::string name = dh->Name(i);
    size_t n;
    if (i < 2) {
      struct stat st {};
      st.st_ino = ino;
      st.st_mode = S_IFDIR;
      if (plus) {
        fuse_entry_param e{};
        e.attr = st;  // ino 0 in the entry: the kernel does not take a reference
        n = fuse_add_direntry_plus(req, &buf[used], size - used, name.c_str(), &e,
                                   static_cast<off_t>(i + 1));
      } else {
        n = fuse_add_direntry(req, &buf[used], size - used, name.c_str(), &st,
                              static_cast<off_t>(i + 1));
      }
    } else if (plus) {
      fuse_entry_param e;
      if (!LookupChild(fs, *key, name, &e).ok()) continue;  // vanished since opendir
      n = fuse_add_direntry_plus(req, &buf[used], size - used, name.c_str(), &e,
                                 static_cast<off_t>(i + 1));
      if (n > size - used) fs->inodes.Forget(e.ino, 1);  // did not fit: not handed over
    } else {
      struct stat st {};
      st.st_ino = 0xffffffffULL + i;  // d_ino only; the real number comes with lookup
      // d_type: objects/'s ids are directories; any other entry is DT_UNKNOWN (0), so
      // that find, os.walk and ls stat it rather than trust a wrong type.
      st.st_mode = i >= dh->names.size() ? S_IFDIR : 0;
      n = fuse_add_direntry(req, &buf[used], size - used, name.c_str(), &st,
                            static_cast<off_t>(i + 1));
    }
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

// Drops an upload that left new/ (unlinked or replaced). Its staging file goes now if
// nothing has it open, else at the last release.
void DiscardUpload(FsState* fs, const std::shared_ptr<Upload>& up) {
  MutexLock lock(&up->mu);
  const bool failed = !up->error.empty() && !up->sealed.valid();
  up->removed = true;
  RetireIfDone(fs, up.get());
  // Its .error entry, if it had one, goes with it (from a listing: see SealUpload).
  if (failed) fs->notifier.InvalEntry(InodeTable::FixedIno(Kind::kNew), up->name + ".error");
}

}  // namespace

// Valid replies: fuse_reply_open, fuse_reply_err
void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto key = NodeOrReply(req, ino);
  if (!key) return;
  if (!OpsOf(key->kind).is_dir()) return (void)fuse_reply_err(req, ENOTDIR);
  auto dh = std::make_unique<DirHandle>();
  Snapshot(State(req), *key, dh.get());
  fi->fh = reinterpret_cast<uint64_t>(dh.release());
  if (fuse_reply_open(req, fi) != 0) delete reinterpret_cast<DirHandle*>(fi->fh);
}

// Valid replies: fuse_reply_buf, fuse_reply_data, fuse_reply_err
void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReplyDir(req, ino, size, off, fi, /*plus=*/false);
}

// Valid replies: fuse_reply_buf, fuse_reply_data, fuse_reply_err
void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReplyDir(req, ino, size, off, fi, /*plus=*/true);
}

// Valid replies: fuse_reply_err
void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

// Valid replies: fuse_reply_entry, fuse_reply_err
void OpMkdir(fuse_req_t req, fuse_ino_t, const char* name, mode_t) {
  if (ReplyIfNameTooLong(req, name)) return;
  // Object directories are made by sealing files in new/, never by mkdir.
  fuse_reply_err(req, EPERM);
}

// Valid replies: fuse_reply_entry, fuse_reply_err
void OpMknod(fuse_req_t req, fuse_ino_t, const char* name, mode_t, dev_t) {
  if (ReplyIfNameTooLong(req, name)) return;
  fuse_reply_err(req, EPERM);
}

// Valid replies: fuse_reply_entry, fuse_reply_err
void OpLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char* newname) {
  if (ReplyIfNameTooLong(req, newname)) return;
  fuse_reply_err(req, EPERM);
}

// A member deleted with its holder: the kernel may answer stat() of its directory,
// data or meta.json from cached attributes until the entry invalidation arrives, and
// that one is asynchronous (it needs objects/'s lock, which this RMDIR holds). Dropping
// their attributes now, before the reply, needs no directory lock and makes the next
// stat() ask us, and we say ENOENT.
void DropCachedAttributes(FsState* fs, ObjectID id) {
  if (!fs->session) return;
  for (Kind k : {Kind::kObjectDir, Kind::kMetaFile, Kind::kDataFile}) {
    if (auto ino = fs->inodes.Find(NodeKey{k, id.raw(), {}})) {
      int rc = fuse_lowlevel_notify_inval_inode(fs->session, *ino, -1, 0);
      if (rc != 0 && rc != -ENOENT) {
        VY_LOG_WARN("invalidate the attributes of %s: %s", id.ToString().c_str(),
                    std::strerror(-rc));
      }
    }
  }
}

// Valid replies: fuse_reply_err
void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  FsState* fs = State(req);
  if (ReplyIfNameTooLong(req, name)) return;
  auto pkey = NodeOrReply(req, parent);
  if (!pkey) return;
  if (pkey->kind != Kind::kObjects) return (void)fuse_reply_err(req, EPERM);
  auto id = ObjectID::Parse(name);
  if (!id.ok()) return (void)fuse_reply_err(req, ENOENT);
  auto gone = fs->objects.Delete(*id);  // the records, then the blobs' payloads
  if (!gone.ok()) return ReplyStatus(req, gone.status());
  ++fs->counters.deletes;
  const fuse_ino_t objects = InodeTable::FixedIno(Kind::kObjects);
  for (size_t i = 0; i < gone->objects.size(); ++i) {
    const ObjectRecord& r = gone->objects[i];
    // The kernel drops the entry it removed itself; members that went with it are
    // invalidated here.
    if (i > 0) {
      DropCachedAttributes(fs, r.id);
      fs->notifier.InvalEntry(objects, r.id.ToString());
    }
  }
  const fuse_ino_t names = InodeTable::FixedIno(Kind::kNames);
  for (auto& n : gone->names) fs->notifier.InvalEntry(names, n);
  fuse_reply_err(req, 0);
}

// Valid replies: fuse_reply_entry, fuse_reply_err
void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  FsState* fs = State(req);
  if (ReplyIfNameTooLong(req, name)) return;
  auto pkey = NodeOrReply(req, parent);
  if (!pkey) return;
  if (pkey->kind != Kind::kNames) return (void)fuse_reply_err(req, EPERM);
  auto id = IdFromTarget(link);
  if (!id.ok()) return ReplyStatus(req, id.status());
  Status s = fs->table->PutName(name, *id, Caller(req), /*replace=*/false);
  if (!s.ok()) return ReplyStatus(req, s);
  fuse_entry_param e;
  s = LookupChild(fs, *pkey, name, &e);
  if (!s.ok()) return ReplyStatus(req, s);
  fuse_reply_entry(req, &e);
}

// Valid replies: fuse_reply_err
void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  FsState* fs = State(req);
  if (ReplyIfNameTooLong(req, name)) return;
  auto pkey = NodeOrReply(req, parent);
  if (!pkey) return;
  if (pkey->kind == Kind::kNames) return ReplyStatus(req, fs->table->DropName(name));
  if (pkey->kind == Kind::kResolvers) return ReplyStatus(req, RemovePlugin(fs, req, name));
  if (pkey->kind != Kind::kNew) return (void)fuse_reply_err(req, EPERM);
  auto up = fs->uploads.Remove(name);
  // x.error goes with x: `rm new/x` (or a rewrite that seals) removes it.
  if (!up) return (void)fuse_reply_err(req, FailedUploadFor(fs, name) ? EPERM : ENOENT);
  DiscardUpload(fs, up);
  fuse_reply_err(req, 0);
}

// Renames new/`from` to new/`to` holding the upload's lock, so that a seal or a message
// reading its name (under that lock alone) never meets the write. Looks the upload up
// again if another rename moved a different one to `from` between the lookup and the lock.
static Result<std::shared_ptr<Upload>> RenameUpload(FsState* fs, const std::string& from,
                                             const std::string& to) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto up = fs->uploads.Find(from);
    if (!up) break;
    MutexLock lock(&up->mu);
    auto replaced = fs->uploads.Rename(up.get(), from, to);
    if (replaced.ok() || replaced.status().code() != Status::Code::kBusy) return replaced;
  }
  return Status::NotFound("new/" + from + " does not exist");
}

// Valid replies: fuse_reply_err
void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  FsState* fs = State(req);
  if (ReplyIfNameTooLong(req, name) || ReplyIfNameTooLong(req, newname)) return;
  auto from = NodeOrReply(req, parent);
  if (!from) return;
  auto to = fs->inodes.Get(newparent);
  if (!to) return (void)fuse_reply_err(req, ESTALE);
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) return (void)fuse_reply_err(req, EINVAL);
  const bool noreplace = flags & RENAME_NOREPLACE;

  if (from->kind == Kind::kNames && to->kind == Kind::kNames) {
    if (noreplace && fs->table->GetName(newname)) return (void)fuse_reply_err(req, EEXIST);
    Status s = fs->table->RenameName(name, newname);
    if (s.ok())
      fs->inodes.Rekey(NodeKey{Kind::kNameLink, 0, name}, NodeKey{Kind::kNameLink, 0, newname});
    return ReplyStatus(req, s);
  }
  if (from->kind == Kind::kNew && to->kind == Kind::kNew) {
    if (noreplace && fs->uploads.Find(newname)) return (void)fuse_reply_err(req, EEXIST);
    auto replaced = RenameUpload(fs, name, newname);
    if (!replaced.ok()) return ReplyStatus(req, replaced.status());
    if (*replaced) DiscardUpload(fs, *replaced);
    return (void)fuse_reply_err(req, 0);
  }
  if (from->kind == Kind::kNew && to->kind == Kind::kNames) {
    // `mv new/x names/x`: name the object that new/x links to.
    auto up = fs->uploads.Find(name);
    if (!up) return (void)fuse_reply_err(req, ENOENT);
    ObjectID id;
    {
      MutexLock lock(&up->mu);
      id = up->sealed;
    }
    if (!id.valid()) {
      VY_LOG_INFO("rename new/%s to names/: not sealed yet", name);
      return (void)fuse_reply_err(req, EINVAL);
    }
    Status s = fs->table->PutName(newname, id, Caller(req), !noreplace);
    if (!s.ok()) return ReplyStatus(req, s);
    if (auto gone = fs->uploads.Remove(name)) {
      // The kernel moves new/x's dentry to names/x: that inode is a name now.
      fs->inodes.Rekey(NodeKey{Kind::kNewLink, gone->serial, {}},
                       NodeKey{Kind::kNameLink, 0, newname});
      DiscardUpload(fs, gone);
    }
    return (void)fuse_reply_err(req, 0);
  }
  fuse_reply_err(req, EXDEV);
}

}  // namespace vineyard
