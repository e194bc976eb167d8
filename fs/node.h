// Node kinds as a table: one row per Kind (internal.h) saying what each operation does
// on a node of that kind. The FUSE handlers look the row up by the node's kind instead
// of switching on it; a row's functions live beside the data they show:
//   nodes_tree.cc    the fixed tree: /, objects/, names/, new/, resolvers/, instances/,
//                    status.json, metrics, instances/<n>.json
//   nodes_object.cc  objects/<id>/ and meta.json, data, members/, members/<name>;
//                    names/<name>
//   nodes_new.cc     the entries of new/: an upload, the link it leaves, <file>.error
//   plugins.cc       resolvers/<file>.so, resolvers/<stem>.error, views/, views/<file>
//   data_file.cc, upload_file.cc, generated_file.cc: opening and reading files
// The table itself is node_table.cc. Rows are constant and hold plain function
// pointers: thread-safe; each function is as thread-safe as the state it reads.
#pragma once

#include <string>
#include <vector>

#include "fs/internal.h"

namespace vineyard {

// A snapshot of a directory's entries taken at opendir (dir.cc); offsets are
// indexes + 1. objects/ keeps its ids (8 bytes each, named when listed) rather than
// 2M strings.
struct DirListing {
  std::vector<std::string> names;
  std::vector<ObjectID> ids;  // after `names`
  size_t size() const { return names.size() + ids.size(); }
  std::string Name(size_t i) const {
    return i < names.size() ? names[i] : ids[i - names.size()].ToString();
  }
};

// What the operations do on one kind of node. A null function: the operation does not
// apply (lookup/list: not a directory; readlink: not a link; open: a directory).
struct NodeOps {
  Kind kind;
  const char* path;      // where nodes of this kind are, e.g. "objects/<id>/data"
  fuse_ino_t fixed_ino;  // the inode number of a fixed node (0: numbered at lookup)
  bool entry_uncached;   // a LOOKUP's entry may not be cached (the name changes kind)
  bool object_xattrs;    // carries the user.vineyard.* attributes of object `num`
  // Attributes and timeout, from memory only; the caller has zeroed `st` and set
  // st_ino, st_blksize, the mount's start time and timeout = sealed_timeout.
  // NotFound if the node vanished.
  Status (*stat)(FsState* fs, const NodeKey& key, struct stat* st, double* timeout);
  // Directories: the key of the child `name` (not checked to exist: stat does).
  Status (*lookup)(FsState* fs, const NodeKey& dir, const std::string& name, NodeKey* child);
  // Directories: appends the entries after "." and "..".
  void (*list)(FsState* fs, const NodeKey& dir, DirListing* out);
  // Links: the target, "" if the link vanished.
  std::string (*readlink)(FsState* fs, const NodeKey& key);
  // Generated files: the text an open serves (also what stat sizes).
  Status (*render)(FsState* fs, const NodeKey& key, std::string* text);
  // Files: answers an OPEN (fuse_reply_open or fuse_reply_err, exactly once).
  void (*open)(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi);
  // Files: answers a READ of a handle this kind's open made.
  void (*read)(fuse_req_t req, FsState* fs, FileHandle* fh, size_t size, off_t off);

  bool is_dir() const { return lookup != nullptr; }
};

// The row of kind `k`.
const NodeOps& OpsOf(Kind k);
// Number of kinds (rows of the table).
constexpr size_t kKindCount = static_cast<size_t>(Kind::kUploadError) + 1;

}  // namespace vineyard
