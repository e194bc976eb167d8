// The mount and its objects: REFs, attributes, names, and the check that a daemon
// serves the mount (tools/vyctl/vyctl.h).
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>

#include "tools/mount_table.h"
#include "tools/vyctl/vyctl.h"

namespace vyctl {

namespace {

// The documented object attributes (without kXattrPrefix), in the order
// `stat` prints them; attributes the daemon adds later come after these.
const char* const kKnownAttrs[] = {"id",      "typename", "nbytes", "instance_id",
                                   "persist", "global",   "local"};

}  // namespace

// Explains an errno from an operation on objects/<id>: ENOENT on an object
// that is not there is "no such object", anything else its strerror.
std::string ObjectErrorText(const Mount& m, const std::string& id, int err) {
  if (err == ENOENT && !Exists(m.Object(id))) return "no such object";
  return ErrnoText(err);
}

// Resolves REF (an object id or a name) to an object id. On failure reports
// it as "CMD REF: ..." and returns kUsage for text that cannot be a REF,
// kFailed for a name that does not exist or does not name an object.
ExitCode ResolveRef(const Mount& m, const std::string& cmd, const std::string& ref,
                    std::string* id) {
  if (IsObjectId(ref)) {
    *id = ref;
    return kOk;
  }
  std::string target;
  int err = IsValidName(ref) ? ReadLink(m.Name(ref), &target) : ENOENT;
  if (err == 0) {
    *id = LastComponent(target);
    if (IsObjectId(*id)) return kOk;
    PrintError(cmd + " " + ref + ": name points to '" + target + "', not to an object");
    return kFailed;
  }
  if (err != ENOENT) {
    PrintError(cmd + " " + ref + ": reading the name: " + ErrnoText(err));
    return kFailed;
  }
  if (ref.empty() || ref[0] == 'o' || !IsValidName(ref)) {
    PrintError("invalid object id '" + ref + "'");
    return kUsage;
  }
  PrintError(cmd + " " + ref + ": no such name");
  return kFailed;
}

// Resolves every REF before anything is changed, so that a typo among the
// arguments of a destructive command aborts it as a whole (exit 2). REFs that
// fail for another reason are reported and left out of *ids.
ExitCode ResolveAll(const Mount& m, const std::string& cmd, const std::vector<std::string>& refs,
                    std::vector<std::pair<std::string, std::string>>* ids) {
  ExitCode code = kOk;
  for (const std::string& ref : refs) {
    std::string id;
    ExitCode resolved = ResolveRef(m, cmd, ref, &id);
    if (resolved == kOk) ids->emplace_back(ref, id);
    code = Worst(code, resolved);
  }
  return code;
}

// Object attributes keyed by their short name ("typename"); attributes that
// cannot be read are absent.
using Attrs = std::map<std::string, std::string>;

Attrs ReadAttrs(const std::string& path, const std::vector<std::string>& keys) {
  Attrs attrs;
  for (const std::string& key : keys) {
    std::string value;
    if (GetXattr(path, kXattrPrefix + key, &value) == 0) attrs[key] = value;
  }
  return attrs;
}

// The short names of all user.vineyard.* attributes of path, known ones first.
// Falls back to the documented names where listxattr is not supported.
int ListVineyardAttrs(const std::string& path, std::vector<std::string>* keys) {
  std::vector<std::string> all;
  int err = ListXattr(path, &all);
  if (err == ENOTSUP) {
    keys->assign(std::begin(kKnownAttrs), std::end(kKnownAttrs));
    return 0;
  }
  if (err != 0) return err;
  const std::string prefix = kXattrPrefix;
  for (const std::string& key : all) {
    if (key.compare(0, prefix.size(), prefix) == 0) keys->push_back(key.substr(prefix.size()));
  }
  auto rank = [](const std::string& key) {
    auto it = std::find(std::begin(kKnownAttrs), std::end(kKnownAttrs), key);
    return it - std::begin(kKnownAttrs);
  };
  std::sort(keys->begin(), keys->end(), [&](const std::string& a, const std::string& b) {
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
  });
  return 0;
}

// An attribute as a JSON value: flags as booleans, counts as numbers, other
// text as strings; a missing attribute is null.
Json AttrJson(const Attrs& attrs, const std::string& key) {
  auto it = attrs.find(key);
  if (it == attrs.end()) return nullptr;
  const std::string& value = it->second;
  if (key == "persist" || key == "global" || key == "local") {
    if (value == "0" || value == "1") return value == "1";
  }
  if (key == "nbytes" || key == "instance_id") {
    uint64_t number = 0;
    const char* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, number);
    if (ec == std::errc() && ptr == end && !value.empty()) return number;
  }
  return value;
}

// The valid object ids in objects/, sorted.
int ListObjectIds(const Mount& m, std::vector<std::string>* ids) {
  std::vector<std::string> entries;
  if (int err = ListDir(m.Path("objects"), &entries)) return err;
  for (const std::string& entry : entries) {
    if (IsObjectId(entry)) ids->push_back(entry);
  }
  std::sort(ids->begin(), ids->end());
  return 0;
}

// names/ as (name, id) pairs sorted by name. The id is the last component of
// the link's target, or "" when the link cannot be read.
int ListNames(const Mount& m, std::vector<std::pair<std::string, std::string>>* names) {
  std::vector<std::string> entries;
  if (int err = ListDir(m.Path("names"), &entries)) return err;
  std::sort(entries.begin(), entries.end());
  for (const std::string& name : entries) {
    std::string target;
    int err = ReadLink(m.Name(name), &target);
    names->emplace_back(name, err == 0 ? LastComponent(target) : "");
  }
  return 0;
}

// Creates names/NAME -> ../objects/<id>. With replace, an existing NAME is
// replaced atomically: the link is made under a temporary name in names/ and
// renamed over NAME. Returns 0 or an errno.
int LinkName(const Mount& m, const std::string& id, const std::string& name, bool replace) {
  const std::string target = "../objects/" + id;
  if (!replace) return symlink(target.c_str(), m.Name(name).c_str()) == 0 ? 0 : errno;
  std::string temp;
  for (unsigned counter = 1;; ++counter) {
    temp = m.Name(".vyctl-" + std::to_string(getpid()) + "-" + std::to_string(counter) + ".tmp");
    if (symlink(target.c_str(), temp.c_str()) == 0) break;
    if (errno != EEXIST || counter == 100) return errno;
  }
  if (rename(temp.c_str(), m.Name(name).c_str()) == 0) return 0;
  int err = errno;
  unlink(temp.c_str());
  return err;
}

// Resolves the mount point and checks that a vineyardfs daemon serves it. A daemon
// that is gone is an operation that failed (1), told as such: a dead mount (the
// daemon was killed: ENOTCONN) or a directory that is no mount at all (it was
// unmounted, or never mounted). Another file system there is a usage error (2).
ExitCode OpenMount(std::string root, Mount* m) {
  if (root.empty()) {
    const char* env = std::getenv("VINEYARDFS_MOUNT");
    root = env != nullptr && *env != '\0' ? env : kDefaultMount;
  }
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  m->root = root;
  const std::string start = "start one with: vineyardfs vineyard " + root;
  // statfs(2) always reaches the daemon; stat(2) may be answered from the cache.
  struct statfs sfs;
  if (statfs(root.c_str(), &sfs) != 0) {
    if (errno == ENOTCONN) {
      PrintError("the vineyardfs daemon of " + root +
                 " is not running (the mount is dead: the daemon was killed or crashed); "
                 "unmount it with: fusermount3 -u " +
                 root + ", then " + start);
      return kFailed;
    }
    PrintError(root + ": " + ErrnoText(errno) + " (no vineyardfs mount there)");
    return kUsage;
  }
  struct stat st;
  if (stat(m->Path("status.json").c_str(), &st) == 0) return kOk;
  const std::string point = vineyard::ResolveMountPath(root);
  auto table = vineyard::ReadMountTable();
  const vineyard::MountEntry* top = vineyard::TopMountAt(table, point);
  if (top == nullptr) {
    PrintError("no vineyardfs daemon is running on " + root + " (it is not mounted); " + start);
    return kFailed;
  }
  PrintError(root + " is not a vineyardfs mount (it is a " + top->type + " mount)");
  return kUsage;
}

}  // namespace vyctl
