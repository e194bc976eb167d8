// lookup, getattr, forget, readlink, statfs: all answered from memory (the object
// table and the inode table), never from RocksDB.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs/ops.h"

namespace vineyard {

namespace {

constexpr double kNoCache = 0;

void SetTime(struct stat* st, int64_t ms) {
  st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = ms / 1000;
  st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = st->st_atim.tv_nsec = (ms % 1000) * 1000000;
}

void Link(struct stat* st, size_t target_len, Owner owner) {
  st->st_mode = S_IFLNK | 0777;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(target_len);
  st->st_uid = owner.uid;
  st->st_gid = owner.gid;
}

const char* const kRootEntries[] = {"objects",   "names",       "new",    "resolvers",
                                    "instances", "status.json", "metrics"};
const Kind kRootKinds[] = {Kind::kObjects,   Kind::kNames,  Kind::kNew,    Kind::kResolvers,
                           Kind::kInstances, Kind::kStatus, Kind::kMetrics};

}  // namespace

Owner MountOwner() { return Owner{getuid(), getgid()}; }

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

Status StatNode(FsState* fs, const NodeKey& key, fuse_ino_t ino, struct stat* st, double* timeout) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_blksize = 4096;
  SetTime(st, fs->start_ms);
  *timeout = fs->opts.sealed_timeout;
  const ObjectID id(key.num);
  switch (key.kind) {
    case Kind::kRoot:
    case Kind::kResolvers:
      FillDir(st, 0755, MountOwner());
      return Status::OK();
    case Kind::kObjects:
    case Kind::kNames:
    case Kind::kNew:
      // Sticky and world-writable like /tmp: anyone may create, only the owner of
      // an entry (or root) may remove or rename it.
      // Their mode and owner never change, so a long timeout spares a GETATTR per
      // path walk (permission checks); their mtime and nlink are not maintained.
      FillDir(st, 01777, MountOwner());
      return Status::OK();
    case Kind::kInstances:
      FillDir(st, 0555, MountOwner());
      return Status::OK();
    case Kind::kStatus:
      FillFile(st, 0444, RenderStatus(fs).size(), MountOwner());
      *timeout = kNoCache;
      return Status::OK();
    case Kind::kMetrics:
      FillFile(st, 0444, RenderMetrics(fs).size(), MountOwner());
      *timeout = kNoCache;
      return Status::OK();
    case Kind::kInstanceFile:
      if (!KnownInstance(fs, static_cast<InstanceId>(key.num))) {
        return Status::NotFound("no such instance");
      }
      FillFile(st, 0444, RenderInstance(fs, static_cast<InstanceId>(key.num)).size(), MountOwner());
      *timeout = kNoCache;
      return Status::OK();
    case Kind::kObjectDir:
    case Kind::kDataFile:
    case Kind::kMembersDir:
    case Kind::kMemberLink: {
      bool ok = fs->table->With(id, [&](const ObjectRecord& r) {
        SetTime(st, r.timestamp_ms);
        if (key.kind == Kind::kObjectDir) {
          FillDir(st, 0755, r.owner);
        } else if (key.kind == Kind::kDataFile) {
          if (!r.is_blob()) return;
          FillFile(st, 0444, r.size, r.owner);
        } else if (key.kind == Kind::kMembersDir) {
          if (r.is_blob()) return;
          FillDir(st, 0555, r.owner);
        } else {
          for (auto& m : r.members) {
            if (m.first == key.name) Link(st, 6 + 17, r.owner);  // "../../" + id
          }
        }
      });
      if (!ok || st->st_mode == 0) return Status::NotFound(id.ToString());
      return Status::OK();
    }
    case Kind::kMetaFile: {
      auto text = fs->table->RenderMeta(id);
      if (!text.ok()) return text.status();
      fs->table->With(id, [&](const ObjectRecord& r) {
        SetTime(st, r.timestamp_ms);
        FillFile(st, 0444, text->size(), r.owner);
      });
      *timeout = 1;  // "transient" flips when the object is persisted
      return Status::OK();
    }
    case Kind::kNameLink: {
      auto n = fs->table->GetName(key.name);
      if (!n) return Status::NotFound("name " + key.name);
      Link(st, 11 + 17, n->owner);  // "../objects/" + id
      SetTime(st, n->timestamp_ms);
      *timeout = fs->opts.name_timeout;
      return Status::OK();
    }
    case Kind::kPluginFile:
    case Kind::kPluginError:
    case Kind::kViewsDir:
    case Kind::kViewFile:
      // Views carry their object's time; StatPluginNode checks that things exist.
      fs->table->With(id, [&](const ObjectRecord& r) { SetTime(st, r.timestamp_ms); });
      return StatPluginNode(fs, key, st, timeout);
    case Kind::kUploadError: {
      auto up = fs->uploads.BySerial(key.num);
      if (!up) return Status::NotFound("upload");
      std::lock_guard<std::mutex> lock(up->mu);
      if (up->error.empty() || up->sealed.valid()) return Status::NotFound("no failed seal");
      FillFile(st, 0444, up->error.size() + 1, up->owner);
      st->st_mtim = st->st_atim = st->st_ctim = up->ctime;
      *timeout = kNoCache;
      return Status::OK();
    }
    case Kind::kUpload:
    case Kind::kNewLink: {
      auto up = fs->uploads.BySerial(key.num);
      if (!up) return Status::NotFound("upload");
      std::lock_guard<std::mutex> lock(up->mu);
      // An upload's attributes change only through this mount's kernel (writes,
      // passthrough included, update its size there): they may be cached briefly.
      // Its entry is never cached (LookupChild): the name turns into a link.
      *timeout = 1;
      if (key.kind == Kind::kNewLink) {
        if (!up->sealed.valid()) return Status::NotFound("upload not sealed");
        Link(st, 11 + 17, up->owner);
        // Cached until it expires: an unlink after readlink needs no second lookup.
        *timeout = LinkCacheSeconds(fs, *up);
        return Status::OK();
      }
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
  }
  return Status::NotFound("unknown node");
}

Status LookupChild(FsState* fs, const NodeKey& parent, const std::string& name,
                   fuse_entry_param* e) {
  std::memset(e, 0, sizeof *e);
  NodeKey child;
  switch (parent.kind) {
    case Kind::kRoot: {
      bool found = false;
      for (size_t i = 0; i < std::size(kRootEntries); ++i) {
        if (name == kRootEntries[i]) {
          child.kind = kRootKinds[i];
          found = true;
        }
      }
      if (!found) return Status::NotFound(name);
      break;
    }
    case Kind::kObjects: {
      auto id = ObjectID::Parse(name);
      if (!id.ok()) return Status::NotFound(id.status().message());
      child = NodeKey{Kind::kObjectDir, id->raw(), {}};
      break;
    }
    case Kind::kObjectDir:
      if (name == "meta.json") {
        child = NodeKey{Kind::kMetaFile, parent.num, {}};
      } else if (name == "data") {
        child = NodeKey{Kind::kDataFile, parent.num, {}};
      } else if (name == "members") {
        child = NodeKey{Kind::kMembersDir, parent.num, {}};
      } else if (name == "views") {
        child = NodeKey{Kind::kViewsDir, parent.num, {}};
      } else {
        return Status::NotFound(name);
      }
      break;
    case Kind::kMembersDir:
      child = NodeKey{Kind::kMemberLink, parent.num, name};
      break;
    case Kind::kNames:
      child = NodeKey{Kind::kNameLink, 0, name};
      break;
    case Kind::kNew: {
      auto up = fs->uploads.Find(name);
      if (!up) {
        if (auto failed = FailedUploadFor(fs, name)) {
          child = NodeKey{Kind::kUploadError, failed->serial, {}};
          break;
        }
        return Status::NotFound(name);
      }
      std::unique_lock<std::mutex> lock(up->mu);
      if (ExpireLink(fs, up)) return Status::NotFound(name);
      child = NodeKey{up->sealed.valid() ? Kind::kNewLink : Kind::kUpload, up->serial, {}};
      break;
    }
    case Kind::kResolvers:
    case Kind::kViewsDir:
      VY_RETURN_IF_ERROR(PluginChild(fs, parent, name, &child));
      break;
    case Kind::kInstances: {
      if (name.size() < 6 || name.compare(name.size() - 5, 5, ".json") != 0) {
        return Status::NotFound(name);
      }
      char* end = nullptr;
      unsigned long n = std::strtoul(name.c_str(), &end, 10);
      if (*end != '.' || n > kMaxInstance || !KnownInstance(fs, static_cast<InstanceId>(n))) {
        return Status::NotFound(name);
      }
      child = NodeKey{Kind::kInstanceFile, n, {}};
      break;
    }
    default:
      return Status::NotFound("not a directory");
  }
  fuse_ino_t fixed = InodeTable::FixedIno(child.kind);
  double timeout;
  VY_RETURN_IF_ERROR(StatNode(fs, child, fixed, &e->attr, &timeout));
  e->ino = fixed ? fixed : fs->inodes.Ref(child);
  e->attr.st_ino = e->ino;
  e->attr_timeout = e->entry_timeout = timeout;
  // Uploads turn into links; views come and go with their plugins (without a round
  // of invalidations that could race the unlink or install that changed them).
  if (child.kind == Kind::kUpload || child.kind == Kind::kViewFile ||
      child.kind == Kind::kUploadError) {
    e->entry_timeout = kNoCache;
  }
  return Status::OK();
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
      std::unique_lock<std::mutex> lock(up->mu);
      SettleUpload(fs, up, lock);
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
  std::string target;
  switch (key->kind) {
    case Kind::kMemberLink: {
      fs->table->With(ObjectID(key->num), [&](const ObjectRecord& r) {
        for (auto& m : r.members) {
          if (m.first == key->name) target = "../../" + m.second.ToString();
        }
      });
      break;
    }
    case Kind::kNameLink: {
      auto n = fs->table->GetName(key->name);
      if (n) target = "../objects/" + n->id.ToString();
      break;
    }
    case Kind::kNewLink: {
      auto up = fs->uploads.BySerial(key->num);
      if (up) {
        std::lock_guard<std::mutex> lock(up->mu);
        if (up->sealed.valid()) target = "../objects/" + up->sealed.ToString();
      }
      break;
    }
    default:
      return (void)fuse_reply_err(req, EINVAL);
  }
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
