// The node table (node.h): one row per kind, in the order of enum Kind, and the two
// lookups every handler goes through (StatNode, LookupChild).
#include <cstring>

#include "fs/nodes.h"

namespace vineyard {

namespace {

// kind, path, fixed inode, entry uncached, object xattrs,
// stat, lookup, list, readlink, render, open, read.
constexpr NodeOps kNodes[] = {
    {Kind::kRoot, "/", 1, false, false,  //
     StatMountDir, LookupInRoot, ListRoot, nullptr, nullptr, nullptr, nullptr},
    {Kind::kObjects, "objects/", 2, false, false,  //
     StatSharedDir, LookupInObjects, ListObjects, nullptr, nullptr, nullptr, nullptr},
    {Kind::kNames, "names/", 3, false, false,  //
     StatSharedDir, LookupInNames, ListNames, nullptr, nullptr, nullptr, nullptr},
    {Kind::kNew, "new/", 4, false, false,  //
     StatSharedDir, LookupInNew, ListNewDir, nullptr, nullptr, nullptr, nullptr},
    {Kind::kResolvers, "resolvers/", 5, false, false,  //
     StatMountDir, LookupInResolvers, ListResolvers, nullptr, nullptr, nullptr, nullptr},
    {Kind::kInstances, "instances/", 6, false, false,  //
     StatInstancesDir, LookupInInstances, ListInstances, nullptr, nullptr, nullptr, nullptr},
    {Kind::kStatus, "status.json", 7, false, false,  //
     StatStatus, nullptr, nullptr, nullptr, RenderStatusFile, OpenGeneratedFile, ReadContent},
    {Kind::kMetrics, "metrics", 8, false, false,  //
     StatMetrics, nullptr, nullptr, nullptr, RenderMetricsFile, OpenGeneratedFile, ReadContent},
    {Kind::kInstanceFile, "instances/<n>.json", 0, false, false,  //
     StatInstanceFile, nullptr, nullptr, nullptr, RenderInstanceFile, OpenGeneratedFile,
     ReadContent},
    {Kind::kObjectDir, "objects/<id>/", 0, false, true,  //
     StatObjectDir, LookupInObjectDir, ListObjectDir, nullptr, nullptr, nullptr, nullptr},
    {Kind::kMetaFile, "objects/<id>/meta.json", 0, false, true,  //
     StatMetaFile, nullptr, nullptr, nullptr, RenderMetaFile, OpenMetaFile, ReadContent},
    {Kind::kDataFile, "objects/<id>/data", 0, false, true,  //
     StatDataFile, nullptr, nullptr, nullptr, nullptr, OpenDataFile, ReadDataFile},
    {Kind::kMembersDir, "objects/<id>/members/", 0, false, true,  //
     StatMembersDir, LookupInMembers, ListMembers, nullptr, nullptr, nullptr, nullptr},
    {Kind::kMemberLink, "objects/<id>/members/<name>", 0, false, false,  //
     StatMemberLink, nullptr, nullptr, MemberLinkTarget, nullptr, nullptr, nullptr},
    {Kind::kNameLink, "names/<name>", 0, false, false,  //
     StatNameLink, nullptr, nullptr, NameLinkTarget, nullptr, nullptr, nullptr},
    {Kind::kUpload, "new/<file>", 0, true, false,  //
     StatUpload, nullptr, nullptr, nullptr, nullptr, OpenUploadFile, ReadUploadFile},
    {Kind::kNewLink, "new/<file> (sealed)", 0, false, false,  //
     StatNewLink, nullptr, nullptr, NewLinkTarget, nullptr, nullptr, nullptr},
    {Kind::kPluginFile, "resolvers/<file>.so", 0, false, false,  //
     StatPluginFile, nullptr, nullptr, nullptr, nullptr, OpenPluginNode, ReadPluginNode},
    {Kind::kPluginError, "resolvers/<stem>.error", 0, false, false,  //
     StatPluginError, nullptr, nullptr, nullptr, nullptr, OpenPluginErrorNode, ReadContent},
    {Kind::kViewsDir, "objects/<id>/views/", 0, false, true,  //
     StatViewsDir, LookupInViews, ListViews, nullptr, nullptr, nullptr, nullptr},
    {Kind::kViewFile, "objects/<id>/views/<file>", 0, true, true,  //
     StatViewFile, nullptr, nullptr, nullptr, nullptr, OpenViewNode, ReadPluginNode},
    {Kind::kUploadError, "new/<file>.error", 0, true, false,  //
     StatUploadError, nullptr, nullptr, nullptr, RenderUploadError, OpenGeneratedFile, ReadContent},
};
static_assert(std::size(kNodes) == kKindCount, "one row per Kind");

constexpr bool InKindOrder() {
  for (size_t i = 0; i < std::size(kNodes); ++i) {
    if (static_cast<size_t>(kNodes[i].kind) != i) return false;
  }
  return true;
}
static_assert(InKindOrder(), "row i is Kind i");

}  // namespace

const NodeOps& OpsOf(Kind k) { return kNodes[static_cast<size_t>(k)]; }

void SetNodeTime(struct stat* st, int64_t ms) {
  st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = ms / 1000;
  st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = st->st_atim.tv_nsec = (ms % 1000) * 1000000;
}

void FillLink(struct stat* st, size_t target_len, Owner owner) {
  st->st_mode = S_IFLNK | 0777;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(target_len);
  st->st_uid = owner.uid;
  st->st_gid = owner.gid;
}

Status StatNode(FsState* fs, const NodeKey& key, fuse_ino_t ino, struct stat* st, double* timeout) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_blksize = 4096;
  SetNodeTime(st, fs->start_ms);
  *timeout = fs->opts.sealed_timeout;
  if (static_cast<size_t>(key.kind) >= kKindCount) return Status::NotFound("unknown node");
  return OpsOf(key.kind).stat(fs, key, st, timeout);
}

Status LookupChild(FsState* fs, const NodeKey& parent, const std::string& name,
                   fuse_entry_param* e) {
  std::memset(e, 0, sizeof *e);
  NodeKey child;
  const NodeOps& dir = OpsOf(parent.kind);
  if (!dir.lookup) return Status::NotFound("not a directory");
  VY_RETURN_IF_ERROR(dir.lookup(fs, parent, name, &child));
  const NodeOps& ops = OpsOf(child.kind);
  fuse_ino_t fixed = ops.fixed_ino;
  double timeout;
  VY_RETURN_IF_ERROR(StatNode(fs, child, fixed, &e->attr, &timeout));
  e->ino = fixed ? fixed : fs->inodes.Ref(child);
  e->attr.st_ino = e->ino;
  e->attr_timeout = e->entry_timeout = timeout;
  if (child.kind == Kind::kMetaFile)
    fs->inodes.NoteMetaSize(e->ino, static_cast<uint64_t>(e->attr.st_size));
  // Uploads turn into links; views come and go with their plugins (without a round
  // of invalidations that could race the unlink or install that changed them).
  if (ops.entry_uncached) e->entry_timeout = kNoCache;
  return Status::OK();
}

}  // namespace vineyard
