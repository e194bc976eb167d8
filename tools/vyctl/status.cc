// status (arena usage and status.json) and keygen (a CURVE key pair; no mount).
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "tools/keygen.h"
#include "tools/vyctl/vyctl.h"

namespace vyctl {

namespace {

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

}  // namespace

ExitCode RunKeygen(const Mount&, const Args& args) {
  return vineyard::GenerateKeyPair(args.positional[0], args.Value("endpoint")) == 0 ? kOk : kFailed;
}

// status [--json]
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

}  // namespace vyctl
