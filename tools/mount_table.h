// The kernel's mount table as the daemon and vyctl need it: which mounts sit on a
// path, and what a path resolves to even when it is a dead FUSE mount (whose root
// stat(2) answers ENOTCONN, so realpath(3) fails on it).
#pragma once

#include <string>
#include <vector>

namespace vineyard {

struct MountEntry {
  std::string point;   // absolute, unescaped
  std::string type;    // "tmpfs", "fuse.vineyardfs", ...
  std::string source;  // "vineyard", "vineyardfs-arena", ...
  std::string device;  // "major:minor"
};

// /proc/self/mountinfo, in mount order (a later entry on a point hides an earlier one).
std::vector<MountEntry> ReadMountTable();

// `path` made absolute with its symlinks resolved, without stat'ing its last
// component (realpath of the parent + the last name). "" if the parent is missing.
std::string ResolveMountPath(const std::string& path);

// The topmost mount on exactly `point` (a ResolveMountPath result), or nullptr.
const MountEntry* TopMountAt(const std::vector<MountEntry>& table, const std::string& point);

// How many mounts of `type` sit on exactly `point`.
int CountMountsAt(const std::vector<MountEntry>& table, const std::string& point,
                  const std::string& type);

}  // namespace vineyard
