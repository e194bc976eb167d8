// resolvers/ and objects/<id>/views/: the filesystem face of the plugin host.
//
// resolvers/ lists the plugins the host knows: <file>.so for each (loaded or
// refused) and <stem>.error beside a refused one, holding the reason. Writing
// resolvers/<file>.so (root or the mount owner only) writes a hidden part file in
// the plugin directory; the last close moves it into place and loads it before
// close() returns. unlink removes and unloads it. Builtin plugins can be shadowed
// by a user plugin of the same name but not removed.
//
// views/<file> is a view a resolver describes as segments (plugin_host.h); open()
// resolves it and maps the blobs it uses, read() stitches the segments into one
// reply without copying blob bytes. Views are cached by the kernel (keep_cache) and
// invalidated whenever the plugin set changes.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fs/nodes.h"
#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

constexpr double kPluginTimeout = 1;  // views and plugin entries change with the plugin set

// "x.so" for "x.error", "" if `name` is not an error file.
std::string ErrorOf(const std::string& name) {
  if (!EndsWith(name, ".error") || name.size() <= 6) return "";
  return name.substr(0, name.size() - 6) + ".so";
}

std::string PartPath(FsState* fs, const std::string& file) {
  return fs->plugins->dir() + "/." + file + ".part";
}

}  // namespace

bool MayWritePlugins(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return ctx->uid == 0 || ctx->uid == getuid();
}

void InvalidatePluginNodes(FsState* fs) {
  // Entries of views/ and resolvers/ are never cached (node table: entry_uncached; StatPluginFile):
  // only the attributes and pages of views already looked up need dropping.
  for (auto& [ino, key] : fs->inodes.OfKind(Kind::kViewFile)) fs->notifier.InvalInode(ino);
}

namespace {

// What every plugin node's attributes start from: views carry their object's time
// (a resolvers/ entry has none); the stat functions check that things exist.
Status StartPluginStat(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  fs->table->With(ObjectID(key.num), [&](const ObjectRecord& r) { SetNodeTime(st, r.timestamp_ms); });
  *timeout = kPluginTimeout;
  if (!fs->plugins) return Status::NotFound("no plugin host");
  return Status::OK();
}

}  // namespace

Status StatPluginFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  VY_RETURN_IF_ERROR(StartPluginStat(fs, key, st, timeout));
  std::string path;
  bool builtin = false;
  {
    MutexLock lock(&fs->installs_mu);
    auto it = fs->installs.find(key.name);
    if (it != fs->installs.end()) path = it->second;
  }
  if (path.empty()) {
    auto e = fs->plugins->Find(key.name);
    if (!e) return Status::NotFound("resolvers/" + key.name);
    path = e->path;
    builtin = e->builtin;
  }
  struct stat real;
  if (stat(path.c_str(), &real) != 0) return Status::NotFound("resolvers/" + key.name);
  FillFile(st, (builtin ? 0444 : 0644), static_cast<uint64_t>(real.st_size), MountOwner());
  st->st_mtim = real.st_mtim;
  st->st_ctim = real.st_ctim;
  *timeout = 0;
  return Status::OK();
}

Status StatPluginError(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  VY_RETURN_IF_ERROR(StartPluginStat(fs, key, st, timeout));
  auto e = fs->plugins->Find(key.name);
  if (!e || e->loaded) return Status::NotFound("resolvers/" + key.name);
  FillFile(st, 0444, e->error.size() + 1, MountOwner());
  *timeout = 0;
  return Status::OK();
}

Status StatViewsDir(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  VY_RETURN_IF_ERROR(StartPluginStat(fs, key, st, timeout));
  auto rec = fs->table->Get(ObjectID(key.num));
  if (!rec) return Status::NotFound(ObjectID(key.num).ToString());
  FillDir(st, 0555, rec->owner);
  return Status::OK();
}

Status StatViewFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  VY_RETURN_IF_ERROR(StartPluginStat(fs, key, st, timeout));
  auto rec = fs->table->Get(ObjectID(key.num));
  if (!rec) return Status::NotFound(ObjectID(key.num).ToString());
  auto view = fs->plugins->Resolve(rec->id, key.name);
  if (!view.ok()) return view.status();
  FillFile(st, 0444, (*view)->size, rec->owner);
  return Status::OK();
}

Status LookupInViews(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child) {
  if (!fs->plugins) return Status::NotFound(name);
  *child = NodeKey{Kind::kViewFile, dir.num, name};
  return Status::OK();
}

Status LookupInResolvers(FsState* fs, const NodeKey&, const std::string& name, NodeKey* child) {
  if (!fs->plugins) return Status::NotFound(name);
  std::string so = ErrorOf(name);
  if (!so.empty()) {
    *child = NodeKey{Kind::kPluginError, 0, so};
    return Status::OK();
  }
  *child = NodeKey{Kind::kPluginFile, 0, name};
  return Status::OK();
}

void ListViews(FsState* fs, const NodeKey& dir, DirListing* out) {
  if (!fs->plugins) return;
  auto rec = fs->table->Get(ObjectID(dir.num));
  if (!rec) return;
  for (auto& n : fs->plugins->ViewNames(*rec)) out->names.push_back(n);
}

void ListResolvers(FsState* fs, const NodeKey&, DirListing* out) {
  if (!fs->plugins) return;
  std::vector<std::string> names;
  for (auto& e : fs->plugins->List()) {
    names.push_back(e.file);
    if (!e.loaded) names.push_back(e.file.substr(0, e.file.size() - 3) + ".error");
  }
  {
    MutexLock lock(&fs->installs_mu);
    for (auto& [file, part] : fs->installs) names.push_back(file);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  out->names.insert(out->names.end(), names.begin(), names.end());
}

namespace {

Status StartInstall(FsState* fs, const std::string& name, const std::string& copy_from,
                    FileHandle* fh) {
  const std::string part = PartPath(fs, name);
  int fd = open(part.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("create " + part, errno);
  if (!copy_from.empty()) {  // opened for writing without O_TRUNC: start from the file
    int in = open(copy_from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in >= 0) {
      while (copy_file_range(in, nullptr, fd, nullptr, 1 << 30, 0) > 0) {
      }
      close(in);
    }
  }
  {
    MutexLock lock(&fs->installs_mu);
    fs->installs[name] = part;
  }
  fh->kind = Kind::kPluginFile;
  fh->fd = fd;
  fh->writer = true;
  fh->installing = name;
  return Status::OK();
}

}  // namespace

Status CreatePlugin(FsState* fs, fuse_req_t req, const std::string& name, FileHandle* fh) {
  if (!fs->plugins || fs->plugins->dir().empty()) return Status::PermissionDenied("no plugin dir");
  if (!MayWritePlugins(req)) {
    return Status::FromErrno("only root or the mount owner may install plugins", EACCES);
  }
  if (!PluginHost::IsPluginFile(name)) {
    return Status::InvalidArgument("a plugin's file name ends in .so and does not start with '.'");
  }
  return StartInstall(fs, name, "", fh);
}

namespace {

using PluginOpener = Status (*)(FsState* fs, fuse_req_t req, const NodeKey& key,
                                fuse_file_info* fi, FileHandle* fh);

// Opens a view or a resolvers/ file with `open` and answers the OPEN.
void OpenAndReply(fuse_req_t req, const NodeKey& key, fuse_file_info* fi, PluginOpener open) {
  FsState* fs = State(req);
  auto fh = std::make_unique<FileHandle>();
  fh->kind = key.kind;
  Status s = fs->plugins ? open(fs, req, key, fi, fh.get()) : Status::NotFound("no plugin host");
  if (!s.ok()) return ReplyStatus(req, s);
  fi->fh = reinterpret_cast<uint64_t>(fh.get());
  if (fuse_reply_open(req, fi) == 0) {
    fh.release();
  } else {
    ClosePluginFile(fs, fh.get());
  }
}

Status OpenView(FsState* fs, fuse_req_t, const NodeKey& key, fuse_file_info* fi, FileHandle* fh) {
  if (WantsWrite(fi->flags)) return Status::PermissionDenied("views are read-only");
  auto view = fs->plugins->Resolve(ObjectID(key.num), key.name);
  if (!view.ok()) return view.status();
  fh->kind = Kind::kViewFile;
  fh->view = *view;
  fh->size = (*view)->size;
  for (auto& seg : (*view)->segments) {
    if (!seg.blob.valid() || fh->view_maps.count(seg.blob)) continue;
    auto pinned = fs->objects.Pin(seg.blob);
    if (!pinned.ok()) {
      ClosePluginFile(fs, fh);
      return pinned.status();
    }
    fh->view_maps[seg.blob] = *pinned;
  }
  fi->keep_cache = 1;  // dropped by InvalidatePluginNodes when the plugin set changes
  return Status::OK();
}

Status OpenPluginError(FsState* fs, fuse_req_t, const NodeKey& key, fuse_file_info* fi,
                       FileHandle* fh) {
  if (WantsWrite(fi->flags)) return Status::PermissionDenied("resolvers/*.error is read-only");
  auto e = fs->plugins->Find(key.name);
  if (!e || e->loaded) return Status::NotFound(key.name);
  fh->kind = Kind::kPluginError;
  fh->content = e->error + "\n";
  fi->direct_io = 1;
  return Status::OK();
}

Status OpenPlugin(FsState* fs, fuse_req_t req, const NodeKey& key, fuse_file_info* fi,
                  FileHandle* fh) {
  auto e = fs->plugins->Find(key.name);
  if (WantsWrite(fi->flags)) {
    if (!MayWritePlugins(req)) {
      return Status::FromErrno("only root or the mount owner may install plugins", EACCES);
    }
    if (e && e->builtin && fs->plugins->dir().empty()) {
      return Status::PermissionDenied("builtin plugin");
    }
    std::string from = (fi->flags & O_TRUNC) || !e ? "" : e->path;
    return StartInstall(fs, key.name, from, fh);
  }
  if (!e) return Status::NotFound(key.name);
  int fd = open(e->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + e->path, errno);
  fh->kind = Kind::kPluginFile;
  fh->fd = fd;
  fi->direct_io = 1;
  return Status::OK();
}

}  // namespace

void OpenViewNode(fuse_req_t req, fuse_ino_t, const NodeKey& key, fuse_file_info* fi) {
  OpenAndReply(req, key, fi, OpenView);
}

void OpenPluginErrorNode(fuse_req_t req, fuse_ino_t, const NodeKey& key, fuse_file_info* fi) {
  OpenAndReply(req, key, fi, OpenPluginError);
}

void OpenPluginNode(fuse_req_t req, fuse_ino_t, const NodeKey& key, fuse_file_info* fi) {
  OpenAndReply(req, key, fi, OpenPlugin);
}

void ReadPluginNode(fuse_req_t req, FsState*, FileHandle* fh, size_t size, off_t off) {
  const uint64_t uoff = static_cast<uint64_t>(off);
  if (fh->kind == Kind::kPluginFile) {
    std::string buf(size, '\0');
    ssize_t n = pread(fh->fd, buf.data(), size, off);
    if (n < 0) return (void)fuse_reply_err(req, errno);
    fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
    return;
  }
  // A view: the iovecs of the segments overlapping [off, off+size).
  std::vector<iovec> iov;
  uint64_t pos = 0, want = size;
  for (auto& seg : fh->view->segments) {
    if (want == 0) break;
    const uint64_t end = pos + seg.length;
    if (end > uoff && pos < uoff + size) {
      const uint64_t from = std::max(uoff, pos) - pos;
      const uint64_t n = std::min<uint64_t>(seg.length - from, want);
      const char* base =
          seg.blob.valid() ? fh->view_maps[seg.blob].data + seg.blob_offset : seg.bytes.data();
      iov.push_back(iovec{const_cast<char*>(base + from), n});
      want -= n;
    }
    pos = end;
  }
  fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
}

Status FinishPluginInstall(FsState* fs, FileHandle* fh) {
  if (fh->installing.empty()) return Status::OK();
  const std::string file = std::move(fh->installing);
  fh->installing.clear();
  const std::string part = PartPath(fs, file), final_path = fs->plugins->dir() + "/" + file;
  Status s = Status::OK();
  if (rename(part.c_str(), final_path.c_str()) != 0) {
    s = Status::FromErrno("install " + final_path, errno);
    unlink(part.c_str());
  }
  {
    MutexLock lock(&fs->installs_mu);
    fs->installs.erase(file);
  }
  fs->plugins->Refresh(file);  // loads it (or records why not) before close() returns
  return s;
}

void ClosePluginFile(FsState* fs, FileHandle* fh) {
  if (!fh->installing.empty()) {
    Status s = FinishPluginInstall(fs, fh);
    if (!s.ok()) VY_LOG_WARN("%s", s.ToString().c_str());
  }
  if (fh->fd >= 0) close(fh->fd);
  fh->fd = -1;
  for (auto& [id, pinned] : fh->view_maps) fs->objects.Unpin(pinned);
  fh->view_maps.clear();
}

Status RemovePlugin(FsState* fs, fuse_req_t req, const std::string& name) {
  if (!fs->plugins) return Status::NotFound(name);
  if (!ErrorOf(name).empty()) {
    return Status::PermissionDenied("remove the plugin (" + ErrorOf(name) + "), not its error");
  }
  auto e = fs->plugins->Find(name);
  if (!e) return Status::NotFound("resolvers/" + name);
  if (!MayWritePlugins(req)) {
    return Status::FromErrno("only root or the mount owner may remove plugins", EACCES);
  }
  if (e->builtin) return Status::PermissionDenied(name + " is a builtin plugin");
  if (unlink(e->path.c_str()) != 0) return Status::FromErrno("remove " + e->path, errno);
  fs->plugins->Refresh(name);
  return Status::OK();
}

}  // namespace vineyard
