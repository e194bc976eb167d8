#include "tools/mount_safety.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "meta/log.h"
#include "tools/mount_table.h"

namespace vineyard {
namespace {

constexpr char kVineyardType[] = "fuse.vineyardfs";

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

int RemoveEntry(const char* path, const struct stat*, int type, struct FTW*) {
  int rc = type == FTW_DP ? rmdir(path) : unlink(path);
  if (rc != 0) VY_LOG_WARN("undo: could not remove %s: %s", path, strerror(errno));
  return 0;  // go on with the rest
}

}  // namespace

Status CheckMountPoint(const std::string& mountpoint) {
  const std::string point = ResolveMountPath(mountpoint);
  if (point.empty()) {
    return Status::NotFound("mount point " + mountpoint +
                            ": its parent directory does not exist (create it: mkdir -p " +
                            mountpoint + ")");
  }
  std::vector<MountEntry> table = ReadMountTable();
  const MountEntry* top = TopMountAt(table, point);
  const bool ours = top != nullptr && top->type == kVineyardType;
  // A dead FUSE mount answers ENOTCONN to every request, but stat(2) may be answered
  // from the kernel's attribute cache: statfs(2) always asks the daemon.
  struct stat st;
  struct statfs sfs;
  int err = stat(mountpoint.c_str(), &st) == 0 ? 0 : errno;
  if (err == 0 && top != nullptr && top->type.rfind("fuse", 0) == 0 &&
      statfs(mountpoint.c_str(), &sfs) != 0) {
    err = errno;
  }
  if (err != 0) {
    if (err == ENOTCONN && ours) {
      return Status::Busy(mountpoint +
                          " is a dead vineyardfs mount: its daemon is gone (killed or crashed). "
                          "Unmount it first (fusermount3 -u " +
                          mountpoint +
                          "), then mount again: every sealed object comes back from the state");
    }
    if (err == ENOTCONN) {
      return Status::Busy(mountpoint + " is on a dead FUSE mount" +
                          (top ? " (" + top->type + ")" : std::string()) +
                          ": unmount it first (fusermount3 -u " + mountpoint + ")");
    }
    if (err == ENOENT) {
      return Status::NotFound("mount point " + mountpoint +
                              " does not exist (create it: mkdir -p " + mountpoint + ")");
    }
    return Status::FromErrno("mount point " + mountpoint, err);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("mount point " + mountpoint + " is not a directory");
  }
  if (ours) {
    return Status::Busy(mountpoint + " is already a vineyardfs mount, and its daemon is running (" +
                        mountpoint +
                        "/status.json tells which). Unmount it first (fusermount3 -u " +
                        mountpoint + "), or mount on another directory");
  }
  return Status::OK();
}

Result<std::unique_ptr<StateLock>> StateLock::Acquire(const std::string& state_dir,
                                                      const std::string& mountpoint) {
  const std::string path = state_dir + "/" + kFileName;
  // A daemon that exits removes the file after its lock is taken by nobody: retry
  // when the file we locked is no longer the one at `path`.
  for (int attempt = 0; attempt < 5; ++attempt) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::FromErrno("open " + path, errno);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      char buf[4096] = {};
      ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
      close(fd);
      if (err != EWOULDBLOCK) return Status::FromErrno("lock " + path, err);
      std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
      size_t nl = text.find('\n');
      std::string pid = text.substr(0, nl);
      std::string where = nl == std::string::npos ? "" : text.substr(nl + 1);
      while (!where.empty() && where.back() == '\n') where.pop_back();
      return Status::Busy("state " + state_dir + " is in use by another vineyardfs daemon" +
                          (pid.empty() ? std::string() : " (pid " + pid + ")") +
                          (where.empty() ? std::string() : " serving " + where) +
                          ": unmount that first, or give this mount its own state= (and arena=)");
    }
    struct stat locked, now;
    if (fstat(fd, &locked) != 0 || stat(path.c_str(), &now) != 0 || locked.st_ino != now.st_ino) {
      close(fd);
      continue;
    }
    std::string text = std::to_string(getpid()) + "\n" + mountpoint + "\n";
    if (ftruncate(fd, 0) != 0 ||
        pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      int err = errno;
      close(fd);
      return Status::FromErrno("write " + path, err);
    }
    return std::unique_ptr<StateLock>(new StateLock(fd, path));
  }
  return Status::Busy("state " + state_dir + ": " + path +
                      " keeps changing; is another daemon starting?");
}

StateLock::~StateLock() {
  unlink(path_.c_str());
  close(fd_);
}

Status MountUndo::MakeDirs(const std::string& dir, mode_t mode) {
  std::string cur;
  for (size_t pos = 0; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    cur = dir.substr(0, pos);
    if (cur.empty() || Exists(cur)) continue;
    if (mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return Status::FromErrno("mkdir " + cur, errno);
    }
    dirs_.push_back(cur);
  }
  return Status::OK();
}

void MountUndo::NoteNewFile(const std::string& path) {
  if (!Exists(path)) files_.push_back(path);
}

void MountUndo::NoteArena(const std::string& dir) {
  arena_ = ResolveMountPath(dir);
  arena_tmpfs_before_ = CountMountsAt(ReadMountTable(), arena_, "tmpfs");
}

MountUndo::~MountUndo() {
  if (committed_) return;
  if (!arena_.empty()) {
    // The store mounted its arena tmpfs in this attempt: nothing was in it before.
    int extra = CountMountsAt(ReadMountTable(), arena_, "tmpfs") - arena_tmpfs_before_;
    for (; extra > 0; --extra) {
      if (umount2(arena_.c_str(), 0) != 0 && umount2(arena_.c_str(), MNT_DETACH) != 0) {
        VY_LOG_WARN("undo: could not unmount the arena tmpfs on %s: %s", arena_.c_str(),
                    strerror(errno));
        break;
      }
      VY_LOG_INFO("undo: unmounted the arena tmpfs on %s", arena_.c_str());
    }
  }
  for (auto it = files_.rbegin(); it != files_.rend(); ++it) unlink(it->c_str());
  // Only the topmost directory of each MakeDirs matters: removing it removes those
  // below. FTW_MOUNT: never into another file system (a stuck mount, say).
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    if (!Exists(*it)) continue;
    nftw(it->c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  }
}

}  // namespace vineyard
