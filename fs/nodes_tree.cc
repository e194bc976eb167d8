// Rows of the node table (node.h) for the fixed tree: the root, objects/, names/,
// instances/ (resolvers/ is plugins.cc's, new/'s entries nodes_new.cc's), and the
// generated files status.json, metrics and instances/<n>.json (special.cc renders them).
#include <cstdlib>

#include "fs/nodes.h"

namespace vineyard {

namespace {

const char* const kRootEntries[] = {"objects",   "names",       "new",    "resolvers",
                                    "instances", "status.json", "metrics"};
const Kind kRootKinds[] = {Kind::kObjects,   Kind::kNames,  Kind::kNew,    Kind::kResolvers,
                           Kind::kInstances, Kind::kStatus, Kind::kMetrics};

}  // namespace

// / and resolvers/.
Status StatMountDir(FsState*, const NodeKey&, struct stat* st, double*) {
  FillDir(st, 0755, MountOwner());
  return Status::OK();
}

// objects/, names/ and new/.
Status StatSharedDir(FsState*, const NodeKey&, struct stat* st, double*) {
  // Sticky and world-writable like /tmp: anyone may create, only the owner of
  // an entry (or root) may remove or rename it.
  // Their mode and owner never change, so a long timeout spares a GETATTR per
  // path walk (permission checks); their mtime and nlink are not maintained.
  FillDir(st, 01777, MountOwner());
  return Status::OK();
}

Status StatInstancesDir(FsState*, const NodeKey&, struct stat* st, double*) {
  FillDir(st, 0555, MountOwner());
  return Status::OK();
}

Status StatStatus(FsState* fs, const NodeKey&, struct stat* st, double* timeout) {
  FillFile(st, 0444, RenderStatus(fs).size(), MountOwner());
  *timeout = kNoCache;
  return Status::OK();
}

Status StatMetrics(FsState* fs, const NodeKey&, struct stat* st, double* timeout) {
  FillFile(st, 0444, RenderMetrics(fs).size(), MountOwner());
  *timeout = kNoCache;
  return Status::OK();
}

Status StatInstanceFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  if (!KnownInstance(fs, static_cast<InstanceId>(key.num))) {
    return Status::NotFound("no such instance");
  }
  FillFile(st, 0444, RenderInstance(fs, static_cast<InstanceId>(key.num)).size(), MountOwner());
  *timeout = kNoCache;
  return Status::OK();
}

Status LookupInRoot(FsState*, const NodeKey&, const std::string& name, NodeKey* child) {
  bool found = false;
  for (size_t i = 0; i < std::size(kRootEntries); ++i) {
    if (name == kRootEntries[i]) {
      child->kind = kRootKinds[i];
      found = true;
    }
  }
  if (!found) return Status::NotFound(name);
  return Status::OK();
}

Status LookupInObjects(FsState*, const NodeKey&, const std::string& name, NodeKey* child) {
  auto id = ObjectID::Parse(name);
  if (!id.ok()) return Status::NotFound(id.status().message());
  *child = NodeKey{Kind::kObjectDir, id->raw(), {}};
  return Status::OK();
}

Status LookupInNames(FsState*, const NodeKey&, const std::string& name, NodeKey* child) {
  *child = NodeKey{Kind::kNameLink, 0, name};
  return Status::OK();
}

Status LookupInInstances(FsState* fs, const NodeKey&, const std::string& name, NodeKey* child) {
  if (name.size() < 6 || name.compare(name.size() - 5, 5, ".json") != 0) {
    return Status::NotFound(name);
  }
  char* end = nullptr;
  unsigned long n = std::strtoul(name.c_str(), &end, 10);
  if (*end != '.' || n > kMaxInstance || !KnownInstance(fs, static_cast<InstanceId>(n))) {
    return Status::NotFound(name);
  }
  *child = NodeKey{Kind::kInstanceFile, n, {}};
  return Status::OK();
}

void ListRoot(FsState*, const NodeKey&, DirListing* out) {
  for (const char* n : kRootEntries) out->names.push_back(n);
}

void ListObjects(FsState* fs, const NodeKey&, DirListing* out) {
  out->ids.reserve(fs->table->counts().objects);
  uint64_t after = 0;
  for (;;) {
    auto ids = fs->table->ListObjects(after, 4096);
    if (ids.empty()) break;
    out->ids.insert(out->ids.end(), ids.begin(), ids.end());
    after = ids.back().raw();
  }
}

void ListNames(FsState* fs, const NodeKey&, DirListing* out) {
  std::string after;
  for (;;) {
    auto names = fs->table->ListNames(after, 4096);
    if (names.empty()) break;
    for (auto& n : names) out->names.push_back(n.first);
    after = names.back().first;
  }
}

void ListInstances(FsState* fs, const NodeKey&, DirListing* out) {
  for (InstanceId n : KnownInstances(fs)) out->names.push_back(std::to_string(n) + ".json");
}

Status RenderStatusFile(FsState* fs, const NodeKey&, std::string* text) {
  *text = RenderStatus(fs);
  return Status::OK();
}

Status RenderMetricsFile(FsState* fs, const NodeKey&, std::string* text) {
  *text = RenderMetrics(fs);
  return Status::OK();
}

Status RenderInstanceFile(FsState* fs, const NodeKey& key, std::string* text) {
  *text = RenderInstance(fs, static_cast<InstanceId>(key.num));
  return Status::OK();
}

}  // namespace vineyard
