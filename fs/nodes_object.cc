// Rows of the node table (node.h) for an object: objects/<id>/ with its meta.json,
// data (a blob's), members/ and members/<name> (a composite's), and the links of
// names/. Everything comes from the object table in memory (never from RocksDB).
#include "fs/nodes.h"

namespace vineyard {

namespace {

// Fills `st` from object `key.num`'s record with `fill` (which leaves st_mode 0 when
// the record has no such node); NotFound if there is no such object or node.
template <typename Fill>
Status StatFromRecord(FsState* fs, const NodeKey& key, struct stat* st, Fill fill) {
  const ObjectID id(key.num);
  bool ok = fs->table->With(id, [&](const ObjectRecord& r) {
    SetNodeTime(st, r.timestamp_ms);
    fill(r);
  });
  if (!ok || st->st_mode == 0) return Status::NotFound(id.ToString());
  return Status::OK();
}

}  // namespace

Status StatObjectDir(FsState* fs, const NodeKey& key, struct stat* st, double*) {
  return StatFromRecord(fs, key, st, [&](const ObjectRecord& r) { FillDir(st, 0755, r.owner); });
}

Status StatDataFile(FsState* fs, const NodeKey& key, struct stat* st, double*) {
  return StatFromRecord(fs, key, st, [&](const ObjectRecord& r) {
    if (!r.is_blob()) return;
    FillFile(st, 0444, r.size, r.owner);
  });
}

Status StatMembersDir(FsState* fs, const NodeKey& key, struct stat* st, double*) {
  return StatFromRecord(fs, key, st, [&](const ObjectRecord& r) {
    if (r.is_blob()) return;
    FillDir(st, 0555, r.owner);
  });
}

Status StatMemberLink(FsState* fs, const NodeKey& key, struct stat* st, double*) {
  return StatFromRecord(fs, key, st, [&](const ObjectRecord& r) {
    for (auto& m : r.members) {
      if (m.first == key.name) FillLink(st, 6 + 17, r.owner);  // "../../" + id
    }
  });
}

Status StatMetaFile(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  const ObjectID id(key.num);
  auto text = fs->table->RenderMeta(id);
  if (!text.ok()) return text.status();
  fs->table->With(id, [&](const ObjectRecord& r) {
    SetNodeTime(st, r.timestamp_ms);
    FillFile(st, 0444, text->size(), r.owner);
  });
  *timeout = 1;  // "transient" flips when the object is persisted
  return Status::OK();
}

Status StatNameLink(FsState* fs, const NodeKey& key, struct stat* st, double* timeout) {
  auto n = fs->table->GetName(key.name);
  if (!n) return Status::NotFound("name " + key.name);
  FillLink(st, 11 + 17, n->owner);  // "../objects/" + id
  SetNodeTime(st, n->timestamp_ms);
  *timeout = fs->opts.name_timeout;
  return Status::OK();
}

Status LookupInObjectDir(FsState*, const NodeKey& dir, const std::string& name, NodeKey* child) {
  if (name == "meta.json") {
    *child = NodeKey{Kind::kMetaFile, dir.num, {}};
  } else if (name == "data") {
    *child = NodeKey{Kind::kDataFile, dir.num, {}};
  } else if (name == "members") {
    *child = NodeKey{Kind::kMembersDir, dir.num, {}};
  } else if (name == "views") {
    *child = NodeKey{Kind::kViewsDir, dir.num, {}};
  } else {
    return Status::NotFound(name);
  }
  return Status::OK();
}

Status LookupInMembers(FsState*, const NodeKey& dir, const std::string& name, NodeKey* child) {
  *child = NodeKey{Kind::kMemberLink, dir.num, name};
  return Status::OK();
}

void ListObjectDir(FsState* fs, const NodeKey& dir, DirListing* out) {
  fs->table->With(ObjectID(dir.num), [&](const ObjectRecord& r) {
    out->names.push_back("meta.json");
    out->names.push_back(r.is_blob() ? "data" : "members");
    out->names.push_back("views");
  });
}

void ListMembers(FsState* fs, const NodeKey& dir, DirListing* out) {
  fs->table->With(ObjectID(dir.num), [&](const ObjectRecord& r) {
    for (auto& m : r.members) out->names.push_back(m.first);
  });
}

std::string MemberLinkTarget(FsState* fs, const NodeKey& key) {
  std::string target;
  fs->table->With(ObjectID(key.num), [&](const ObjectRecord& r) {
    for (auto& m : r.members) {
      if (m.first == key.name) target = "../../" + m.second.ToString();
    }
  });
  return target;
}

std::string NameLinkTarget(FsState* fs, const NodeKey& key) {
  auto n = fs->table->GetName(key.name);
  return n ? "../objects/" + n->id.ToString() : "";
}

Status RenderMetaFile(FsState* fs, const NodeKey& key, std::string* text) {
  auto rendered = fs->table->RenderMeta(ObjectID(key.num));
  if (!rendered.ok()) return rendered.status();
  *text = std::move(*rendered);
  return Status::OK();
}

}  // namespace vineyard
