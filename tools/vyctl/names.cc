// The commands on names: names, name.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>

#include "tools/vyctl/vyctl.h"

namespace vyctl {

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

namespace {

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

}  // namespace

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

}  // namespace vyctl
