// vyctl: the command-line client of a vineyardfs mount.
//
// vyctl works only through the filesystem that the vineyardfs daemon mounts
// (DESIGN.md §3-§5): it lists objects/ and names/, reads meta.json, data and
// status.json, creates objects by writing files into new/, and uses xattrs,
// symlinks, rename, rmdir and statfs for everything else. It opens no socket
// and knows nothing of the daemon's internals, so it works from any directory
// against any daemon that honours the contract.
//
// The mount is `-m MOUNT`, else $VINEYARDFS_MOUNT, else /vineyard. Every
// command first checks that MOUNT/status.json exists.
//
// A REF argument is an object id ("o" + 16 lowercase hex digits) or a name in
// MOUNT/names/. Text that is neither a valid id nor an existing name is an
// invalid id if it starts with 'o', and an unknown name otherwise.
//
// Exit status:
//   0  success
//   1  an operation failed (each failure is reported on stderr)
//   1  also: no vineyardfs daemon serves MOUNT (a dead mount, or not mounted)
//   2  usage error, MOUNT is another file system, or an invalid object id
//
// Output meant for scripts (ids, listings, JSON, payloads) goes to stdout;
// errors and warnings go to stderr, prefixed with "vyctl: ".

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tools/keygen.h"
#include "tools/mount_table.h"

namespace {

// Keeps the member order of status.json and of the JSON vyctl prints.
using Json = nlohmann::ordered_json;

constexpr char kVersion[] = "0.1.0";
constexpr char kDefaultMount[] = "/vineyard";
constexpr char kXattrPrefix[] = "user.vineyard.";
constexpr char kMetaSuffix[] = ".meta.json";
constexpr size_t kChunkSize = size_t{1} << 20;  // read/write loop size
constexpr size_t kNameMax = 255;                // longest file name (NAME_MAX)
constexpr size_t kAnyCount = SIZE_MAX;          // no limit on positionals

// The documented object attributes (without kXattrPrefix), in the order
// `stat` prints them; attributes the daemon adds later come after these.
const char* const kKnownAttrs[] = {"id",      "typename", "nbytes", "instance_id",
                                   "persist", "global",   "local"};

enum ExitCode : int { kOk = 0, kFailed = 1, kUsage = 2 };

ExitCode Worst(ExitCode a, ExitCode b) { return a > b ? a : b; }

void PrintError(const std::string& message) { std::cerr << "vyctl: " << message << '\n'; }

std::string ErrnoText(int err) { return std::strerror(err); }

void PrintJson(const Json& j) {
  std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The last component of a path or symlink target ("../objects/o12" -> "o12").
std::string LastComponent(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "o" followed by exactly 16 lowercase hex digits (DESIGN.md §3).
bool IsObjectId(const std::string& s) {
  if (s.size() != 17 || s[0] != 'o') return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A name is a single entry of names/.
bool IsValidName(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos;
}

// What is wrong with a name that vyctl is asked to create, or "". A name
// spelled like an object id is refused: as a REF it would always mean the id.
std::string NewNameProblem(const std::string& name) {
  if (!IsValidName(name)) return "invalid name '" + name + "'";
  if (IsObjectId(name)) return "name '" + name + "' looks like an object id";
  return "";
}

// ---------------------------------------------------------------------------
// Syscall wrappers. Each returns 0 on success or the errno of the failure.

int ReadLink(const std::string& path, std::string* target) {
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) return errno;
    if (static_cast<size_t>(n) < buf.size()) {
      target->assign(buf.data(), static_cast<size_t>(n));
      return 0;
    }
    buf.resize(buf.size() * 2);  // possibly truncated: try a larger buffer
  }
}

int GetXattr(const std::string& path, const std::string& key, std::string* value) {
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = getxattr(path.c_str(), key.c_str(), buf.data(), buf.size());
    if (n >= 0) {
      value->assign(buf.data(), static_cast<size_t>(n));
      return 0;
    }
    if (errno != ERANGE) return errno;
    ssize_t needed = getxattr(path.c_str(), key.c_str(), nullptr, 0);
    if (needed < 0) return errno;
    buf.resize(static_cast<size_t>(needed) + 1);
  }
}

int ListXattr(const std::string& path, std::vector<std::string>* keys) {
  std::vector<char> buf(1024);
  for (;;) {
    ssize_t n = listxattr(path.c_str(), buf.data(), buf.size());
    if (n >= 0) {
      // The list is a sequence of NUL-terminated names.
      for (size_t i = 0; i < static_cast<size_t>(n);) {
        std::string key(buf.data() + i);
        i += key.size() + 1;
        if (!key.empty()) keys->push_back(key);
      }
      return 0;
    }
    if (errno != ERANGE) return errno;
    ssize_t needed = listxattr(path.c_str(), nullptr, 0);
    if (needed < 0) return errno;
    buf.resize(static_cast<size_t>(needed) + 1);
  }
}

int SetXattr(const std::string& path, const std::string& key, const std::string& value) {
  return setxattr(path.c_str(), key.c_str(), value.data(), value.size(), 0) == 0 ? 0 : errno;
}

// The entries of a directory except "." and "..", unsorted.
int ListDir(const std::string& path, std::vector<std::string>* entries) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return errno;
  errno = 0;
  while (const dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") entries->push_back(name);
  }
  int err = errno;
  closedir(dir);
  return err;
}

int WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// Copies in_fd to its end into out_fd in kChunkSize pieces. On failure
// returns the errno and sets *write_failed to say which side failed.
int CopyFd(int in_fd, int out_fd, bool* write_failed) {
  std::vector<char> buf(kChunkSize);
  for (;;) {
    ssize_t n = read(in_fd, buf.data(), buf.size());
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      *write_failed = false;
      return errno;
    }
    if (int err = WriteAll(out_fd, buf.data(), static_cast<size_t>(n))) {
      *write_failed = true;
      return err;
    }
  }
}

int ReadFile(const std::string& path, std::string* contents) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  std::vector<char> buf(kChunkSize);
  int err = 0;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n > 0) contents->append(buf.data(), static_cast<size_t>(n));
    if (n == 0) break;
    if (n < 0 && errno != EINTR) {
      err = errno;
      break;
    }
  }
  close(fd);
  return err;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// ---------------------------------------------------------------------------
// The mount and its objects.

// Paths inside one vineyardfs mount (DESIGN.md §3).
struct Mount {
  std::string root;

  std::string Path(const std::string& rel) const { return root + "/" + rel; }
  std::string Object(const std::string& id) const { return Path("objects/" + id); }
  std::string Name(const std::string& name) const { return Path("names/" + name); }
};

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

// ---------------------------------------------------------------------------
// Command-line parsing.

struct OptionSpec {
  char short_name;        // '\0' when the option has no short form
  const char* long_name;  // also its key in Args::options
  bool takes_value;
};

struct Args {
  std::map<std::string, std::string> options;  // long name -> value ("" for flags)
  std::vector<std::string> positional;

  bool Has(const char* name) const { return options.count(name) != 0; }
  std::string Value(const char* name) const {
    auto it = options.find(name);
    return it == options.end() ? "" : it->second;
  }
};

const OptionSpec* FindOption(const std::vector<OptionSpec>& specs, char short_name,
                             const std::string& long_name) {
  for (const OptionSpec& spec : specs) {
    if (short_name != '\0' ? spec.short_name == short_name : long_name == spec.long_name) {
      return &spec;
    }
  }
  return nullptr;
}

// GNU style: options may come before or after the positional arguments,
// "--long=VALUE", "--long VALUE", "-x VALUE" and "-xVALUE" are accepted,
// "--" ends the options and "-" alone is a positional argument (stdin).
bool ParseArgs(const std::vector<std::string>& argv, const std::vector<OptionSpec>& specs,
               Args* args, std::string* error) {
  bool options_ended = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (options_ended || arg.size() < 2 || arg[0] != '-') {
      args->positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    bool is_long = arg[1] == '-';
    std::string name = is_long ? arg.substr(2) : "";
    std::string value;
    bool inline_value = false;
    size_t eq = name.find('=');
    if (is_long && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      inline_value = true;
    } else if (!is_long && arg.size() > 2) {
      value = arg.substr(2);
      inline_value = true;
    }
    const OptionSpec* spec = FindOption(specs, is_long ? '\0' : arg[1], name);
    if (spec == nullptr || (!spec->takes_value && inline_value && !is_long)) {
      *error = "unknown option '" + arg + "'";
      return false;
    }
    if (!spec->takes_value && inline_value) {
      *error = "option '--" + name + "' takes no value";
      return false;
    }
    if (spec->takes_value && !inline_value) {
      if (i + 1 == argv.size()) {
        *error = "option '" + arg + "' needs a value";
        return false;
      }
      value = argv[++i];
    }
    args->options[spec->long_name] = value;
  }
  return true;
}

ExitCode UsageError(const std::string& cmd, const std::string& message) {
  PrintError(cmd.empty() ? message : cmd + ": " + message);
  std::cerr << "Try 'vyctl " << (cmd.empty() ? "" : cmd + " ") << "--help'.\n";
  return kUsage;
}

// ---------------------------------------------------------------------------
// Commands. Each runs after its arguments were parsed and the mount checked,
// reports its own errors and returns the exit code.

// ls --failed [--json]: the uploads in new/ whose seal failed (each has a
// new/<file>.error beside it holding the reason).
ExitCode RunLsFailed(const Mount& m, const Args& args) {
  const std::string dir = m.Path("new");
  DIR* d = opendir(dir.c_str());
  if (!d) {
    PrintError("ls: " + dir + ": " + ErrnoText(errno));
    return kFailed;
  }
  std::map<std::string, std::pair<std::string, std::string>> failed;  // file -> errno, reason
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    const std::string suffix = ".error";
    if (name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string file = name.substr(0, name.size() - suffix.size());
    std::string reason, code;
    if (GetXattr(dir + "/" + file, "user.vineyard.error", &reason) != 0) continue;
    GetXattr(dir + "/" + file, "user.vineyard.errno", &code);
    failed[file] = {code, reason};
  }
  closedir(d);
  if (args.Has("json")) {
    Json list = Json::array();
    for (auto& [file, e] : failed) {
      list.push_back({{"file", "new/" + file}, {"errno", e.first}, {"error", e.second}});
    }
    PrintJson(list);
    return kOk;
  }
  for (auto& [file, e] : failed) {
    std::cout << "new/" << file << "  " << (e.first.empty() ? "-" : e.first) << "  " << e.second
              << '\n';
  }
  return kOk;
}

// ls [--json] [-l] [--failed]
ExitCode RunLs(const Mount& m, const Args& args) {
  if (args.Has("failed")) return RunLsFailed(m, args);
  std::vector<std::string> ids;
  if (int err = ListObjectIds(m, &ids)) {
    PrintError("ls: " + m.Path("objects") + ": " + ErrnoText(err));
    return kFailed;
  }
  const bool json = args.Has("json");
  if (!json && !args.Has("long")) {
    for (const std::string& id : ids) std::cout << id << '\n';
    return kOk;
  }
  ExitCode code = kOk;
  std::vector<std::pair<std::string, std::string>> names;
  if (int err = ListNames(m, &names)) {
    PrintError("ls: " + m.Path("names") + ": " + ErrnoText(err));
    code = kFailed;
  }
  std::map<std::string, std::vector<std::string>> names_of;
  for (const auto& [name, id] : names) names_of[id].push_back(name);

  const std::vector<std::string> keys = {"typename", "nbytes", "persist", "global", "local"};
  std::vector<Attrs> attrs;
  for (const std::string& id : ids) attrs.push_back(ReadAttrs(m.Object(id), keys));

  if (json) {
    Json list = Json::array();
    for (size_t i = 0; i < ids.size(); ++i) {
      Json object = {{"id", ids[i]}};
      for (const std::string& key : keys) object[key] = AttrJson(attrs[i], key);
      object["names"] = names_of[ids[i]];
      list.push_back(std::move(object));
    }
    PrintJson(list);
    return code;
  }

  // -l: id, typename, nbytes, persisted/transient, names; "-" where unknown.
  auto get = [&](size_t i, const char* key) {
    auto it = attrs[i].find(key);
    return it == attrs[i].end() ? std::string("-") : it->second;
  };
  size_t type_width = 1, size_width = 1;
  for (size_t i = 0; i < ids.size(); ++i) {
    type_width = std::max(type_width, get(i, "typename").size());
    size_width = std::max(size_width, get(i, "nbytes").size());
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string persist = get(i, "persist");
    persist = persist == "1" ? "persisted" : persist == "0" ? "transient" : "-";
    std::string joined;
    for (const std::string& name : names_of[ids[i]]) joined += (joined.empty() ? "" : ",") + name;
    std::string type = get(i, "typename"), size = get(i, "nbytes");
    std::cout << ids[i] << "  " << type << std::string(type_width - type.size(), ' ') << "  "
              << std::string(size_width - size.size(), ' ') << size << "  " << persist
              << std::string(9 - persist.size(), ' ') << "  " << (joined.empty() ? "-" : joined)
              << '\n';
  }
  return code;
}

// stat REF [--json]
ExitCode RunStat(const Mount& m, const Args& args) {
  const std::string& ref = args.positional[0];
  std::string id;
  if (ExitCode code = ResolveRef(m, "stat", ref, &id)) return code;
  const std::string path = m.Object(id);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    PrintError("stat " + ref + ": " + ObjectErrorText(m, id, errno));
    return kFailed;
  }
  std::vector<std::string> keys;
  if (int err = ListVineyardAttrs(path, &keys)) {
    PrintError("stat " + ref + ": listing attributes: " + ErrnoText(err));
    return kFailed;
  }
  Attrs attrs = ReadAttrs(path, keys);
  if (attrs.empty()) {
    PrintError("stat " + ref + ": " + path + " has no user.vineyard.* attributes");
    return kFailed;
  }
  Json object = Json::object();
  for (const std::string& key : keys) {
    if (attrs.count(key) == 0) continue;
    if (args.Has("json")) {
      object[key] = AttrJson(attrs, key);
    } else {
      std::cout << key << ": " << attrs[key] << '\n';
    }
  }
  if (args.Has("json")) PrintJson(object);
  return kOk;
}

// The name of the file that `put` writes in new/: vyctl-<pid>-<counter>-<base>.
// It keeps the tail of the source's name, since the daemon and its builder
// plugins recognize uploads by suffix (".meta.json", ".npy", ...).
// `suffix`: what the upload's name must end with (".meta.json", ".batch"; "" for none).
std::string UploadName(const std::string& file, const std::string& suffix, unsigned counter) {
  std::string base = file == "-" ? "stdin" : LastComponent(file);
  if (base.empty() || base == "." || base == ".." || base == "/") base = "file";
  if (!suffix.empty() && !EndsWith(base, suffix)) base += suffix;
  std::string prefix = "vyctl-" + std::to_string(getpid()) + "-" + std::to_string(counter) + "-";
  if (prefix.size() + base.size() > kNameMax) base.erase(0, prefix.size() + base.size() - kNameMax);
  return prefix + base;
}

// Copies src_fd into a new file in new/ and closes it, which seals it. On
// success *upload is the path of the new/ entry. Reports failures itself.
ExitCode Upload(const Mount& m, int src_fd, const std::string& file, const std::string& suffix,
                std::string* upload) {
  const std::string label = "put " + file;
  int fd = -1;
  for (unsigned counter = 1; fd < 0; ++counter) {
    *upload = m.Path("new/" + UploadName(file, suffix, counter));
    fd = open(upload->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && (errno != EEXIST || counter == 100)) {
      PrintError(label + ": creating " + *upload + ": " + ErrnoText(errno));
      return kFailed;
    }
  }
  bool write_failed = false;
  if (int err = CopyFd(src_fd, fd, &write_failed)) {
    // Unlink before close: closing would seal the partial copy as an object.
    unlink(upload->c_str());
    close(fd);
    PrintError(label + ": " + (write_failed ? "writing " + *upload : "reading") + ": " +
               ErrnoText(err));
    return kFailed;
  }
  if (close(fd) != 0) {
    int err = errno;
    std::string reason;
    std::string message = label + ": " + ErrnoText(err);
    if (GetXattr(*upload, "user.vineyard.error", &reason) == 0 && !reason.empty()) {
      message += ": " + reason;
    }
    PrintError(message);
    PrintError(label + ": what was written is kept in " + *upload);
    return kFailed;
  }
  return kOk;
}

// Reads the id of a sealed upload from its new/ link. The daemon answers the lookup
// only once the seal that our close() started is done; a seal that failed after
// close() (DESIGN.md §4) left its reason in the upload's xattrs.
ExitCode ReadSealedId(const std::string& upload, const std::string& label, std::string* id) {
  std::string target;
  int err = ReadLink(upload, &target);
  if (err == 0) {
    *id = LastComponent(target);
    if (IsObjectId(*id)) return kOk;
    PrintError(label + ": " + upload + " points to '" + target + "', not to an object");
    return kFailed;
  }
  std::string reason, code;
  if (GetXattr(upload, "user.vineyard.error", &reason) == 0 && !reason.empty()) {
    GetXattr(upload, "user.vineyard.errno", &code);
    PrintError(label + ": " + (code.empty() ? "the seal failed" : code) + ": " + reason);
    PrintError(label + ": what was written is kept in " + upload);
    return kFailed;
  }
  PrintError(label + ": " + upload + " was closed but did not become a link to an object (" +
             ErrnoText(err) + ")");
  return kFailed;
}

// put FILE|- [--name NAME] [--persist] [--meta | --batch]
ExitCode RunPut(const Mount& m, const Args& args) {
  const std::string& file = args.positional[0];
  const std::string label = "put " + file;
  const bool named = args.Has("name");
  const std::string name = args.Value("name");
  if (named && !NewNameProblem(name).empty()) return UsageError("put", NewNameProblem(name));
  if (args.Has("meta") && args.Has("batch")) return UsageError("put", "--meta or --batch, not both");
  if (named && Exists(m.Name(name))) {
    PrintError(label + ": name '" + name + "' already exists");
    return kFailed;
  }
  int src_fd = file == "-" ? STDIN_FILENO : open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (src_fd < 0) {
    PrintError(label + ": " + ErrnoText(errno));
    return kFailed;
  }
  struct stat st;
  if (fstat(src_fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    PrintError(label + ": " + ErrnoText(EISDIR));
    if (src_fd != STDIN_FILENO) close(src_fd);
    return kFailed;
  }
  std::string upload;
  const std::string suffix = args.Has("meta") ? kMetaSuffix : args.Has("batch") ? ".batch" : "";
  ExitCode code = Upload(m, src_fd, file, suffix, &upload);
  if (src_fd != STDIN_FILENO) close(src_fd);
  std::string id;
  if (code == kOk) code = ReadSealedId(upload, label, &id);
  if (code != kOk) return code;

  std::cout << id << '\n' << std::flush;
  if (unlink(upload.c_str()) != 0) {
    PrintError("warning: " + label + ": removing the link " + upload + ": " + ErrnoText(errno));
  }
  if (args.Has("persist")) {
    if (int err = SetXattr(m.Object(id), "user.vineyard.persist", "1")) {
      PrintError(label + ": persisting " + id + ": " + ErrnoText(err));
      code = kFailed;
    }
  }
  if (named) {
    if (int err = LinkName(m, id, name, false)) {
      PrintError(label + ": naming " + id + " '" + name + "': " + ErrnoText(err));
      code = kFailed;
    }
  }
  return code;
}

// The typename of an object, from its xattr or else from meta.json.
std::string Typename(const Mount& m, const std::string& id) {
  std::string type;
  if (GetXattr(m.Object(id), "user.vineyard.typename", &type) == 0) return type;
  std::string meta;
  if (ReadFile(m.Object(id) + "/meta.json", &meta) == 0) {
    Json j = Json::parse(meta, nullptr, false);
    if (j.is_object() && j.contains("typename") && j["typename"].is_string()) {
      return j["typename"].get<std::string>();
    }
  }
  return "unknown";
}

// get REF [-o OUT]
ExitCode RunGet(const Mount& m, const Args& args) {
  const std::string& ref = args.positional[0];
  const std::string label = "get " + ref;
  std::string id;
  if (ExitCode code = ResolveRef(m, "get", ref, &id)) return code;
  int in_fd = open((m.Object(id) + "/data").c_str(), O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) {
    int err = errno;
    if (err == ENOENT && Exists(m.Object(id))) {
      PrintError(label + ": not a blob (typename " + Typename(m, id) + "); use 'vyctl meta'");
    } else {
      PrintError(label + ": " + ObjectErrorText(m, id, err));
    }
    return kFailed;
  }
  const std::string out = args.Has("output") ? args.Value("output") : "-";
  int out_fd = STDOUT_FILENO;
  if (out != "-") out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (out_fd < 0) {
    PrintError(label + ": " + out + ": " + ErrnoText(errno));
    close(in_fd);
    return kFailed;
  }
  bool write_failed = false;
  int err = CopyFd(in_fd, out_fd, &write_failed);
  close(in_fd);
  if (out_fd != STDOUT_FILENO && close(out_fd) != 0 && err == 0) {
    err = errno;
    write_failed = true;
  }
  if (err != 0) {
    std::string where = write_failed ? (out == "-" ? "stdout" : out) : "reading the payload";
    PrintError(label + ": " + where + ": " + ErrnoText(err));
    return kFailed;
  }
  return kOk;
}

// meta REF
ExitCode RunMeta(const Mount& m, const Args& args) {
  const std::string& ref = args.positional[0];
  std::string id;
  if (ExitCode code = ResolveRef(m, "meta", ref, &id)) return code;
  std::string meta;
  if (int err = ReadFile(m.Object(id) + "/meta.json", &meta)) {
    PrintError("meta " + ref + ": " + ObjectErrorText(m, id, err));
    return kFailed;
  }
  std::cout << meta;
  if (!meta.empty() && meta.back() != '\n') std::cout << '\n';
  return kOk;
}

// rm REF...
ExitCode RunRm(const Mount& m, const Args& args) {
  std::vector<std::pair<std::string, std::string>> ids;
  ExitCode code = ResolveAll(m, "rm", args.positional, &ids);
  if (code == kUsage) return code;
  for (const auto& [ref, id] : ids) {
    if (rmdir(m.Object(id).c_str()) == 0) continue;
    int err = errno;
    std::string message = "rm " + ref + ": " + ObjectErrorText(m, id, err);
    if (err == EBUSY) message += " (it is a member of another object)";
    if (err == EPERM || err == EACCES) message += " (it belongs to another user)";
    PrintError(message);
    code = kFailed;
  }
  return code;
}

// persist REF...
ExitCode RunPersist(const Mount& m, const Args& args) {
  std::vector<std::pair<std::string, std::string>> ids;
  ExitCode code = ResolveAll(m, "persist", args.positional, &ids);
  if (code == kUsage) return code;
  for (const auto& [ref, id] : ids) {
    if (int err = SetXattr(m.Object(id), "user.vineyard.persist", "1")) {
      PrintError("persist " + ref + ": " + ObjectErrorText(m, id, err));
      code = kFailed;
    }
  }
  return code;
}

// names [--json], also `name` without arguments.
ExitCode RunNames(const Mount& m, const Args& args) {
  std::vector<std::pair<std::string, std::string>> names;
  if (int err = ListNames(m, &names)) {
    PrintError("names: " + m.Path("names") + ": " + ErrnoText(err));
    return kFailed;
  }
  if (args.Has("json")) {
    Json object = Json::object();
    for (const auto& [name, id] : names) object[name] = id.empty() ? Json(nullptr) : Json(id);
    PrintJson(object);
    return kOk;
  }
  size_t width = 0;
  for (const auto& entry : names) width = std::max(width, entry.first.size());
  for (const auto& [name, id] : names) {
    std::cout << name << std::string(width - name.size() + 2, ' ') << (id.empty() ? "?" : id)
              << '\n';
  }
  return kOk;
}

// name -d NAME...
ExitCode DropNames(const Mount& m, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (!IsValidName(name)) return UsageError("name", "invalid name '" + name + "'");
  }
  ExitCode code = kOk;
  for (const std::string& name : names) {
    if (unlink(m.Name(name).c_str()) == 0) continue;
    int err = errno;
    PrintError("name -d " + name + ": " + (err == ENOENT ? "no such name" : ErrnoText(err)));
    code = kFailed;
  }
  return code;
}

// name REF NAME [-f] | name -d NAME... | name [--json]
ExitCode RunName(const Mount& m, const Args& args) {
  const std::vector<std::string>& pos = args.positional;
  if (args.Has("delete")) return DropNames(m, pos);
  if (pos.empty()) return RunNames(m, args);
  const std::string& ref = pos[0];
  const std::string& name = pos[1];
  if (!NewNameProblem(name).empty()) return UsageError("name", NewNameProblem(name));
  std::string id;
  if (ExitCode code = ResolveRef(m, "name", ref, &id)) return code;
  if (!Exists(m.Object(id))) {
    PrintError("name " + name + ": " + ref + ": no such object");
    return kFailed;
  }
  const bool force = args.Has("force");
  if (int err = LinkName(m, id, name, force)) {
    std::string hint = err == EEXIST && !force ? " (use -f to replace it)" : "";
    PrintError("name " + name + ": " + ErrnoText(err) + hint);
    return kFailed;
  }
  return kOk;
}

// Checks the argument combinations of `name` that the table cannot express.
bool CheckNameArgs(const Args& args, std::string* error) {
  size_t count = args.positional.size();
  if (args.Has("delete")) {
    if (count == 0) *error = "-d needs at least one NAME";
    if (args.Has("force") || args.Has("json")) *error = "-d cannot be combined with -f or --json";
  } else if (count == 0) {
    if (args.Has("force")) *error = "-f needs REF and NAME";
  } else if (count != 2) {
    *error = "expected REF NAME, -d NAME..., or no arguments";
  } else if (args.Has("json")) {
    *error = "--json only applies to listing names";
  }
  return error->empty();
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  size_t unit = 0;
  while (bytes >= 1024 && unit + 1 < std::size(units)) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return buf;
}

// A leaf of status.json as text; byte counts also in human units.
std::string LeafText(const std::string& key, const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  bool byte_key = false;
  for (const char* word : {"bytes", "size", "capacity", "used", "limit", "free", "avail"}) {
    byte_key = byte_key || key.find(word) != std::string::npos;
  }
  if (byte_key && value.is_number_unsigned() && value.get<uint64_t>() >= 1024) {
    text += " (" + HumanBytes(value.get<double>()) + ")";
  }
  return text;
}

// Prints a JSON tree as "a.b: value" lines; arrays of scalars on one line.
void PrintFlattened(const Json& j, const std::string& path) {
  if (j.is_object() && !j.empty()) {
    for (const auto& item : j.items()) {
      PrintFlattened(item.value(), path.empty() ? item.key() : path + "." + item.key());
    }
    return;
  }
  if (j.is_array() &&
      std::any_of(j.begin(), j.end(), [](const Json& e) { return e.is_structured(); })) {
    for (size_t i = 0; i < j.size(); ++i) {
      PrintFlattened(j[i], path + "[" + std::to_string(i) + "]");
    }
    return;
  }
  const std::string key = path.substr(path.rfind('.') + 1);  // npos + 1 == 0
  std::string text;
  if (j.is_array()) {
    for (const Json& e : j) text += (text.empty() ? "" : ", ") + LeafText(key, e);
  } else {
    text = LeafText(key, j);
  }
  std::cout << "  " << (path.empty() ? "value" : path) << ": " << text << '\n';
}

// status [--json]
ExitCode RunKeygen(const Mount&, const Args& args) {
  return vineyard::GenerateKeyPair(args.positional[0], args.Value("endpoint")) == 0 ? kOk : kFailed;
}

ExitCode RunStatus(const Mount& m, const Args& args) {
  const std::string path = m.Path("status.json");
  std::string text;
  if (int err = ReadFile(path, &text)) {
    PrintError("status: " + path + ": " + ErrnoText(err));
    return kFailed;
  }
  Json status = Json::parse(text, nullptr, false);
  if (status.is_discarded()) {
    if (args.Has("json")) std::cout << text;
    PrintError("status: " + path + " is not valid JSON");
    return kFailed;
  }
  if (args.Has("json")) {
    PrintJson(status);
    return kOk;
  }
  std::cout << "mount: " << m.root << '\n';
  struct statvfs fs;
  if (statvfs(m.root.c_str(), &fs) == 0) {
    const double block = static_cast<double>(fs.f_frsize);
    const double capacity = static_cast<double>(fs.f_blocks) * block;
    const double available = static_cast<double>(fs.f_bfree) * block;
    const double used = capacity - available;
    int percent = capacity > 0 ? static_cast<int>(100 * used / capacity + 0.5) : 0;
    std::cout << "arena: " << HumanBytes(used) << " used of " << HumanBytes(capacity) << " ("
              << percent << "%), " << HumanBytes(available) << " free\n"
              << "objects: " << (fs.f_files - fs.f_ffree) << '\n';
  }
  std::cout << "status.json:\n";
  PrintFlattened(status, "");
  return kOk;
}

// ---------------------------------------------------------------------------
// The command table and main.

struct Command {
  const char* name;
  const char* usage;                // the synopsis after "vyctl "
  const char* summary;              // one line for `vyctl --help`
  const char* help;                 // what it does and its options
  std::vector<OptionSpec> options;  // besides -h/--help
  size_t min_args;
  size_t max_args;
  bool (*check)(const Args&, std::string* error);  // extra checks, or nullptr
  ExitCode (*run)(const Mount&, const Args&);
};

const std::vector<Command>& Commands() {
  // clang-format off
  static const std::vector<Command> commands = {
      {"ls", "ls [-l] [--json] [--failed]",
       "list objects",
       "List the objects this node can see, one id per line, sorted.\n\n"
       "  -l, --long  also show typename, nbytes, persisted/transient and names\n"
       "      --json  print a JSON array of {id, typename, nbytes, persist,\n"
       "              global, local, names}\n"
       "      --failed  list the files in new/ whose seal failed instead: file,\n"
       "              errno and reason (--json: [{file, errno, error}])\n",
       {{'l', "long", false}, {'\0', "json", false}, {'\0', "failed", false}}, 0, 0, nullptr,
       RunLs},
      {"stat", "stat REF [--json]",
       "show the attributes of an object",
       "Print the user.vineyard.* attributes of an object as 'key: value' lines.\n\n"
       "      --json  print them as a JSON object\n",
       {{'\0', "json", false}}, 1, 1, nullptr, RunStat},
      {"put", "put FILE|- [--name NAME] [--persist] [--meta | --batch]",
       "create an object from a file; print its id",
       "Create an object from FILE (or stdin for '-') by writing it into\n"
       "MOUNT/new/, and print its id. FILE becomes a vineyard::Blob, or a typed\n"
       "object when a builder plugin claims its suffix; a FILE ending in\n"
       ".meta.json is metadata JSON and creates a metadata object; a FILE ending\n"
       "in .batch is a batch (a manifest, a NUL, the payload) and creates all its\n"
       "objects or none; the id printed is the batch's root.\n"
       "If sealing fails, the written file is kept in MOUNT/new/.\n\n"
       "      --name NAME  then give the object NAME (fails if NAME exists)\n"
       "      --persist    then persist the object\n"
       "      --meta       treat FILE as metadata JSON whatever its name\n"
       "      --batch      treat FILE as a batch whatever its name\n",
       {{'\0', "name", true}, {'\0', "persist", false}, {'\0', "meta", false},
        {'\0', "batch", false}},
       1, 1,
       nullptr, RunPut},
      {"get", "get REF [-o OUT]",
       "write the payload of a blob",
       "Write the payload of a blob to stdout.\n\n"
       "  -o, --output OUT  write it to the file OUT instead ('-': stdout)\n",
       {{'o', "output", true}}, 1, 1, nullptr, RunGet},
      {"meta", "meta REF",
       "print the metadata of an object",
       "Print the metadata (meta.json) of an object.\n",
       {}, 1, 1, nullptr, RunMeta},
      {"rm", "rm REF...",
       "delete objects",
       "Delete objects, with their members that no other object references.\n"
       "Deleting a member of another object fails with EBUSY. Each failure is\n"
       "reported and the others proceed; a malformed id stops all of them.\n",
       {}, 1, kAnyCount, nullptr, RunRm},
      {"persist", "persist REF...",
       "persist objects",
       "Persist objects (and their members): their metadata becomes visible\n"
       "on every node of the cluster.\n",
       {}, 1, kAnyCount, nullptr, RunPersist},
      {"name", "name REF NAME [-f] | name -d NAME... | name [--json]",
       "put, drop or list names",
       "Give the object REF the name NAME, drop names, or list names.\n\n"
       "  -f, --force   replace NAME atomically if it exists\n"
       "  -d, --delete  drop the given names (the objects stay)\n"
       "      --json    list names as a JSON object {name: id}\n",
       {{'f', "force", false}, {'d', "delete", false}, {'\0', "json", false}}, 0, kAnyCount,
       CheckNameArgs, RunName},
      {"names", "names [--json]",
       "list names",
       "List names and the ids they point to, sorted by name.\n\n"
       "      --json  print a JSON object {name: id}\n",
       {{'\0', "json", false}}, 0, 0, nullptr, RunNames},
      {"keygen", "keygen PATH [--endpoint ENDPOINT]",
       "make a CURVE key pair for a cluster node",
       "Write PATH.key (the secret key, mode 0600: give it to the node as\n"
       "curve_secret=) and PATH.pub (the public key and ENDPOINT: copy it into\n"
       "the curve_peers= directory of every node). Existing files are kept.\n"
       "Needs no mount.\n\n"
       "      --endpoint ENDPOINT  the node's listen= endpoint, recorded in PATH.pub\n"
       "                           so that its peers know which key is whose\n",
       {{'\0', "endpoint", true}}, 1, 1, nullptr, RunKeygen},
      {"status", "status [--json]",
       "summarize this node",
       "Summarize this node: arena usage (statfs) and status.json.\n\n"
       "      --json  print status.json as JSON\n",
       {{'\0', "json", false}}, 0, 0, nullptr, RunStatus},
  };
  // clang-format on
  return commands;
}

void PrintMainHelp() {
  std::cout << "Usage: vyctl [-m MOUNT] COMMAND [ARGS...]\n\n"
               "Command-line client of a vineyardfs mount; it works only through the\n"
               "filesystem.\n\nCommands:\n";
  constexpr size_t kColumn = 30;
  for (const Command& cmd : Commands()) {
    std::string usage = cmd.usage;
    std::cout << "  " << usage
              << (usage.size() < kColumn ? std::string(kColumn - usage.size(), ' ')
                                         : "\n" + std::string(kColumn + 2, ' '))
              << cmd.summary << '\n';
  }
  std::cout << "\nREF is an object id (o + 16 lowercase hex digits) or a name in MOUNT/names/.\n\n"
               "Options:\n"
               "  -m, --mount MOUNT  the mount point (default: $VINEYARDFS_MOUNT, else "
            << kDefaultMount
            << ")\n"
               "  -h, --help         show this help; 'vyctl COMMAND --help' for a command\n"
               "      --version      print the version\n\n"
               "Exit status: 0 success, 1 an operation failed (or no daemon serves the\n"
               "mount), 2 usage error, not a vineyardfs mount, or an invalid object id.\n";
}

void PrintCommandHelp(const Command& cmd) {
  std::cout << "Usage: vyctl [-m MOUNT] " << cmd.usage << "\n\n" << cmd.help;
  if (std::string(cmd.usage).find("REF") != std::string::npos) {
    std::cout << "\nREF is an object id (o + 16 lowercase hex digits) or a name.\n";
  }
}

const Command* FindCommand(const std::string& name) {
  for (const Command& cmd : Commands()) {
    if (name == cmd.name) return &cmd;
  }
  return nullptr;
}

// Checks the positional count (and the command's own checks).
bool CheckArgs(const Command& cmd, const Args& args, std::string* error) {
  size_t count = args.positional.size();
  if (count < cmd.min_args) {
    *error = "missing argument (usage: vyctl " + std::string(cmd.usage) + ")";
  } else if (count > cmd.max_args) {
    *error = "unexpected argument '" + args.positional[cmd.max_args] + "'";
  } else if (cmd.check != nullptr) {
    cmd.check(args, error);
  }
  return error->empty();
}

// Parses the options before COMMAND; *next is the index of COMMAND.
// Returns -1 to go on, or an exit code (help, version, usage error).
int ParseGlobalOptions(const std::vector<std::string>& argv, std::string* mount, size_t* next) {
  size_t i = 0;
  for (; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      PrintMainHelp();
      return kOk;
    }
    if (arg == "--version") {
      std::cout << "vyctl " << kVersion << '\n';
      return kOk;
    }
    if (arg == "-m" || arg == "--mount") {
      if (i + 1 == argv.size()) return UsageError("", "option '" + arg + "' needs a value");
      *mount = argv[++i];
    } else if (arg.rfind("--mount=", 0) == 0) {
      *mount = arg.substr(8);
    } else if (arg.rfind("-m", 0) == 0) {
      *mount = arg.substr(2);
    } else if (arg == "--") {
      ++i;
      break;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return UsageError("", "unknown option '" + arg + "'");
    } else {
      break;
    }
    if (mount->empty()) return UsageError("", "empty mount path");
  }
  *next = i;
  return -1;
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

int Main(int argc, char** argv) {
  const std::vector<std::string> all(argv + 1, argv + argc);
  std::string mount_option;
  size_t next = 0;
  if (int code = ParseGlobalOptions(all, &mount_option, &next); code >= 0) return code;
  if (next == all.size()) return UsageError("", "missing command");
  const std::string name = all[next];
  const std::vector<std::string> rest(all.begin() + static_cast<std::ptrdiff_t>(next) + 1,
                                      all.end());
  if (name == "help") {
    const Command* cmd = rest.empty() ? nullptr : FindCommand(rest[0]);
    if (!rest.empty() && cmd == nullptr) return UsageError("", "unknown command '" + rest[0] + "'");
    if (cmd != nullptr) {
      PrintCommandHelp(*cmd);
    } else {
      PrintMainHelp();
    }
    return kOk;
  }
  const Command* cmd = FindCommand(name);
  if (cmd == nullptr) return UsageError("", "unknown command '" + name + "'");

  std::vector<OptionSpec> specs = cmd->options;
  specs.push_back({'h', "help", false});
  Args args;
  std::string error;
  if (!ParseArgs(rest, specs, &args, &error)) return UsageError(cmd->name, error);
  if (args.Has("help")) {
    PrintCommandHelp(*cmd);
    return kOk;
  }
  if (!CheckArgs(*cmd, args, &error)) return UsageError(cmd->name, error);

  Mount mount;
  if (std::string(cmd->name) != "keygen") {  // the one command that needs no mount
    if (ExitCode code = OpenMount(mount_option, &mount)) return code;
  }
  ExitCode code = cmd->run(mount, args);
  if (!std::cout.flush()) {
    PrintError("writing to stdout failed");
    code = kFailed;
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    PrintError(std::string("internal error: ") + e.what());
  } catch (...) {
    PrintError("internal error");
  }
  return kFailed;
}
