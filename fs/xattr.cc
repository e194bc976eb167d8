// Extended attributes: user.vineyard.* describe an object (on objects/<id> and the
// files in it); user.vineyard.persist=1 persists it; user.vineyard.error on a file in
// new/ says why its last seal failed. Unknown keys are ENODATA, as on any filesystem.
#include <cerrno>
#include <cstring>

#include "fs/node.h"
#include "fs/ops.h"

namespace vineyard {

namespace {

constexpr const char* kKeys[] = {"user.vineyard.id",      "user.vineyard.typename",
                                 "user.vineyard.nbytes",  "user.vineyard.instance_id",
                                 "user.vineyard.persist", "user.vineyard.global",
                                 "user.vineyard.local"};
constexpr const char* kErrorKey = "user.vineyard.error";
// The failed seal's errno by name ("EINVAL"): what close() would have returned, for
// a writer whose close() could not wait for the seal (DESIGN.md §4).
constexpr const char* kErrnoKey = "user.vineyard.errno";

bool IsObjectNode(Kind k) { return OpsOf(k).object_xattrs; }

// The value of `key` for `key`'s node, or NoData.
Result<std::string> XattrValue(FsState* fs, const NodeKey& node, const std::string& key) {
  // `ls -l` asks every entry for its SELinux label and its POSIX ACLs. There are no
  // security labels or ACLs here: "not supported" (unlike "no data") makes ls stop
  // asking for the rest of the device, which saves three round trips per entry.
  if (key.compare(0, 9, "security.") == 0 || key.compare(0, 7, "system.") == 0) {
    return Status::NotSupported(key);
  }
  if (key.compare(0, 14, "user.vineyard.") != 0) return Status::NoData(key);
  if (node.kind == Kind::kUpload) {
    auto up = fs->uploads.BySerial(node.num);
    if (!up) return Status::NotFound("upload");
    MutexLock lock(&up->mu);
    if (key == kErrorKey && !up->error.empty()) return up->error;
    if (key == kErrnoKey && !up->error.empty()) {
      const char* name = strerrorname_np(up->error_code ? up->error_code : EIO);
      return std::string(name ? name : "EIO");
    }
    return Status::NoData(key);
  }
  if (!IsObjectNode(node.kind)) return Status::NoData(key);
  auto r = fs->table->Get(ObjectID(node.num));
  if (!r) return Status::NotFound(ObjectID(node.num).ToString());
  if (key == kKeys[0]) return r->id.ToString();
  if (key == kKeys[1]) return r->type_name;
  if (key == kKeys[2]) return std::to_string(r->nbytes);
  if (key == kKeys[3]) return std::to_string(r->instance);
  if (key == kKeys[4]) return std::string(r->transient ? "0" : "1");
  if (key == kKeys[5]) return std::string(r->global ? "1" : "0");
  if (key == kKeys[6]) {
    // Local: made on this node, or a blob whose payload was fetched and is cached here.
    bool local =
        r->instance == fs->table->instance() || (r->is_blob() && fs->store->IsResident(r->id));
    return std::string(local ? "1" : "0");
  }
  return Status::NoData(key);
}

void ReplyValue(fuse_req_t req, const std::string& v, size_t size) {
  if (size == 0) return (void)fuse_reply_xattr(req, v.size());
  if (size < v.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, v.data(), v.size());
}

}  // namespace

// Valid replies: fuse_reply_buf, fuse_reply_data, fuse_reply_xattr, fuse_reply_err
void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  ++State(req)->counters.xattrs;
  auto node = NodeOrReply(req, ino);
  if (!node) return;
  auto v = XattrValue(State(req), *node, name);
  if (!v.ok()) return ReplyStatus(req, v.status());
  ReplyValue(req, *v, size);
}

// Valid replies: fuse_reply_buf, fuse_reply_data, fuse_reply_xattr, fuse_reply_err
void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  FsState* fs = State(req);
  auto node = NodeOrReply(req, ino);
  if (!node) return;
  std::string list;
  if (IsObjectNode(node->kind)) {
    for (const char* k : kKeys) list.append(k, std::strlen(k) + 1);
  } else if (XattrValue(fs, *node, kErrorKey).ok()) {
    list.append(kErrorKey, std::strlen(kErrorKey) + 1);
    list.append(kErrnoKey, std::strlen(kErrnoKey) + 1);
  }
  ReplyValue(req, list, size);
}

// Valid replies: fuse_reply_err
void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int) {
  FsState* fs = State(req);
  auto node = NodeOrReply(req, ino);
  if (!node) return;
  std::string key = name;
  bool known = false;
  for (const char* k : kKeys) known |= key == k;
  if (!IsObjectNode(node->kind) || !known) return (void)fuse_reply_err(req, ENOTSUP);
  if (key != "user.vineyard.persist") return (void)fuse_reply_err(req, EPERM);  // read-only
  std::string v(value, size);
  while (!v.empty() && (v.back() == '\n' || v.back() == '\0')) v.pop_back();
  if (v == "0") {
    // A persisted object stays persisted until deleted; "0" on a transient one is a no-op.
    auto r = fs->table->Get(ObjectID(node->num));
    if (!r) return (void)fuse_reply_err(req, ENOENT);
    return (void)fuse_reply_err(req, r->transient ? 0 : EPERM);
  }
  if (v != "1") return (void)fuse_reply_err(req, EINVAL);
  std::vector<ObjectID> changed;
  // The kernel let the caller write this node's xattrs (its owner, or root); the table
  // checks the members it would persist with it against the same caller.
  Status s = fs->table->Persist(ObjectID(node->num), Caller(req), &changed);
  if (!s.ok()) return ReplyStatus(req, s);
  // meta.json of everything that flipped shows "transient": false now.
  for (ObjectID id : changed) {
    if (auto meta = fs->inodes.Find(NodeKey{Kind::kMetaFile, id.raw(), {}})) {
      fs->notifier.InvalInode(*meta);
    }
  }
  fuse_reply_err(req, 0);
}

// Valid replies: fuse_reply_err
void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  auto node = NodeOrReply(req, ino);
  if (!node) return;
  bool known = false;
  for (const char* k : kKeys) known |= std::strcmp(name, k) == 0;
  fuse_reply_err(req, known ? EPERM : ENODATA);
}

}  // namespace vineyard
