#include "tools/mount_table.h"

#include <limits.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

namespace vineyard {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::vector<MountEntry> ReadMountTable() {
  // Format (proc(5)): id parent major:minor root point options [optional...] - type
  // source super-options
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point, word;
    if (!(f >> id >> parent >> dev >> root >> point)) continue;
    while (f >> word && word != "-") {
    }
    MountEntry e;
    e.device = dev;
    e.point = Unescape(point);
    f >> e.type >> e.source;
    e.source = Unescape(e.source);
    out.push_back(std::move(e));
  }
  return out;
}

std::string ResolveMountPath(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p.empty()) return "";
  char real[PATH_MAX];
  if (realpath(p.c_str(), real)) return real;  // a live path: symlinks resolved too
  size_t slash = p.rfind('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
  std::string name = slash == std::string::npos ? p : p.substr(slash + 1);
  if (name == "." || name == ".." || name.empty()) {
    return realpath(p.c_str(), real) ? std::string(real) : std::string();
  }
  if (!realpath(parent.c_str(), real)) return "";
  std::string base(real);
  return base == "/" ? "/" + name : base + "/" + name;
}

const MountEntry* TopMountAt(const std::vector<MountEntry>& table, const std::string& point) {
  const MountEntry* top = nullptr;
  for (auto& e : table) {
    if (e.point == point) top = &e;
  }
  return top;
}

int CountMountsAt(const std::vector<MountEntry>& table, const std::string& point,
                  const std::string& type) {
  int n = 0;
  for (auto& e : table) n += e.point == point && e.type == type;
  return n;
}

}  // namespace vineyard
