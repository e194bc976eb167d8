// The commands on objects: ls, stat, get, meta, rm, persist.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>

#include "tools/vyctl/vyctl.h"

namespace vyctl {

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace vyctl
