// What makes a mount attempt safe to make and safe to fail (README "Mounting"):
//
// - CheckMountPoint refuses a mount point that is missing, not a directory, or already
//   a vineyardfs mount, live or dead (after kill -9: stat answers ENOTCONN), before
//   anything is created, with a message that says what to do.
// - StateLock makes a second daemon on the same state= fail at once, naming the
//   daemon that holds it, instead of waiting for RocksDB's lock.
// - MountUndo remembers what a mount attempt created (directories, files, the arena
//   tmpfs) and removes it again unless the mount succeeded.
//
// All of it runs in the daemon's main thread, before the FUSE loop.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "meta/status.h"

namespace vineyard {

// OK if a vineyardfs may be mounted on `mountpoint`; otherwise why not and what to do.
Status CheckMountPoint(const std::string& mountpoint);

// An flock(2) on <state>/vineyardfs.pid, held while the daemon serves its mount. The
// file holds the holder's pid and mount point ("4242\n/vineyard\n"); a daemon killed
// with -9 leaves the file but not the lock, so the next one takes over.
class StateLock {
 public:
  static constexpr const char* kFileName = "vineyardfs.pid";

  // Takes the lock of `state_dir` (which exists) for a daemon serving `mountpoint`,
  // or fails at once (Busy) naming the daemon that holds it.
  static Result<std::unique_ptr<StateLock>> Acquire(const std::string& state_dir,
                                                    const std::string& mountpoint);
  ~StateLock();  // removes the file, then releases the lock

  const std::string& path() const { return path_; }

 private:
  StateLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// Not thread-safe; lives in main's stack frame, declared before everything it undoes
// (so that it is destroyed after the store has closed its files).
class MountUndo {
 public:
  MountUndo() = default;
  MountUndo(const MountUndo&) = delete;
  MountUndo& operator=(const MountUndo&) = delete;
  // Undoes everything noted unless Commit() was called.
  ~MountUndo();

  // mkdir -p `dir` with `mode`, noting the topmost directory it created.
  Status MakeDirs(const std::string& dir, mode_t mode);
  // Notes `path` as created by this attempt if it does not exist yet.
  void NoteNewFile(const std::string& path);
  // Notes how many tmpfs mounts sit on `dir` now; a tmpfs mounted there later (the
  // store's arena) is unmounted on undo.
  void NoteArena(const std::string& dir);
  // The mount succeeded: keep everything.
  void Commit() { committed_ = true; }

 private:
  bool committed_ = false;
  std::vector<std::string> dirs_, files_;  // in creation order
  std::string arena_;
  int arena_tmpfs_before_ = 0;
};

}  // namespace vineyard
