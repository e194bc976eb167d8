// The seal path of DESIGN.md §4: an upload in new/ becomes an object when its last
// writer lets go. In order:
//   1. new/<file>.meta.json -> a metadata object (the bytes are create-form JSON)
//   2. new/<file>.blob -> a vineyard::Blob of exactly the bytes: no builder is asked
//      (how a writer stores bytes that a builder would claim, e.g. an .npy file as is)
//   3. a file a builder plugin claims (by suffix or magic) -> a typed object
//      (PluginHost::Build; the builder's error fails close() with EIO)
//   4. anything else -> a vineyard::Blob holding exactly the bytes written
// On failure the file stays as written and user.vineyard.error says why.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

Result<ObjectID> SealMeta(FsState* fs, Upload* up, uint64_t size) {
  if (size > kMaxMetaBytes) {
    return Status::TooLarge("metadata is " + std::to_string(size) +
                            " bytes, over the limit of 16 MiB");
  }
  std::string bytes(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(up->fd, bytes.data() + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno("read new/" + up->name, n < 0 ? errno : EIO);
    got += static_cast<size_t>(n);
  }
  auto spec = ParseCreateMeta(bytes);
  if (!spec.ok()) return spec.status();
  auto rec = fs->table->Create(*spec, up->owner);
  if (!rec.ok()) return rec.status();
  fs->store->DropUpload(up->key);  // the bytes live on as metadata; the fd stays valid
  return rec->id;
}

Result<ObjectID> SealBlob(FsState* fs, Upload* up, uint64_t size) {
  auto id = fs->table->NewId(/*blob=*/true);
  if (!id.ok()) return id.status();
  VY_RETURN_IF_ERROR(fs->store->SealUpload(up->key, *id, size));
  auto rec = fs->table->AddBlob(*id, size, up->owner);
  if (!rec.ok()) {
    fs->store->DeleteBlob(*id);
    return rec.status();
  }
  return *id;
}

// Builder plugins (DESIGN.md §8). Returns nullopt when no builder claims the file,
// so the default rules apply. On success the upload's bytes live on in the objects
// the builder made: its staging file goes (the open fd stays valid until release).
std::optional<Result<ObjectID>> TryBuilders(FsState* fs, Upload* up, uint64_t size) {
  if (!fs->plugins) return std::nullopt;
  auto built = fs->plugins->Build(up->name, up->fd, size, up->owner);
  if (built && built->ok()) fs->store->DropUpload(up->key);
  return built;
}

}  // namespace

Status SealUpload(FsState* fs, Upload* up, fuse_ino_t ino) {
  up->dirty = false;
  if (up->fd < 0 || up->key == 0) return Status::IOError("new/" + up->name + " has no data");
  struct stat st;
  if (fstat(up->fd, &st) != 0) return Status::FromErrno("stat new/" + up->name, errno);
  // Writes through a mapping reach the file without passing write(): the file's own
  // size is the truth.
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  Result<ObjectID> id = Status::OK();
  if (up->write_failed || (up->pt_written && fs->store->ArenaExhausted())) {
    // A write failed with ENOSPC (through passthrough we cannot see the failure
    // itself, only an arena left full): the file may miss bytes, so it is not sealed.
    id = Status::NoSpace("the arena filled up while new/" + up->name +
                         " was written: the file may be incomplete (rewrite it)");
  } else if (EndsWith(up->name, ".meta.json")) {
    id = SealMeta(fs, up, size);
  } else if (EndsWith(up->name, ".blob")) {
    id = SealBlob(fs, up, size);  // the writer's word: exactly these bytes, no builder
  } else if (auto built = TryBuilders(fs, up, size)) {
    id = std::move(*built);
  } else {
    id = SealBlob(fs, up, size);
  }
  if (!id.ok()) {
    up->error = OneLine(id.status().message());
    ++fs->counters.seal_errors;
    VY_LOG_INFO("seal of new/%s failed: %s", up->name.c_str(), up->error.c_str());
    return id.status();
  }
  up->sealed = *id;
  up->key = 0;
  up->error.clear();
  ++fs->counters.seals;
  // new/<name> is now a link: drop the kernel's cached file entry and its pages.
  fs->notifier.InvalEntry(InodeTable::FixedIno(Kind::kNew), up->name);
  fs->notifier.InvalInode(ino);
  return Status::OK();
}

bool ProcessStillHolds(FsState* fs, pid_t pid, fuse_ino_t ino, const std::string& path,
                       bool check_maps, const struct stat& backing) {
  if (pid <= 0) return false;
  // 1. Another descriptor of the same process still refers to the file (a shell's
  //    `> file` redirect dups the descriptor and closes the original first). close()
  //    has already removed the closing descriptor from the table when FLUSH arrives.
  char dir[64];
  std::snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
  if (DIR* d = opendir(dir)) {
    bool held = false;
    char target[PATH_MAX];
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      if (path == target) {
        held = true;
        break;
      }
    }
    closedir(d);
    if (held) return true;
  }
  // 2. A mapping of the file: its bytes arrive when it is unmapped. Generating
  //    /proc/<pid>/maps costs ~100 us for a large process, so it is read only for
  //    files sized by truncate/fallocate, which is how a file is prepared for mmap.
  //    (Pages dirtied through a mapping before close() are written back by the
  //    kernel before FLUSH, so only a mapping that outlives close() matters.)
  if (!check_maps) return false;
  char maps[64];
  std::snprintf(maps, sizeof maps, "/proc/%d/maps", pid);
  FILE* f = std::fopen(maps, "re");
  if (!f) return false;
  unsigned want_major = 0, want_minor = 0;
  bool check_dev = std::sscanf(fs->opts.device.c_str(), "%u:%u", &want_major, &want_minor) == 2;
  char line[4096];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f)) {
    // address perms offset dev(hex maj:min) inode path
    unsigned major, minor;
    unsigned long long inode;
    if (std::sscanf(line, "%*s %*s %*s %x:%x %llu", &major, &minor, &inode) != 3) continue;
    if (inode == backing.st_ino && major == major(backing.st_dev) &&
        minor == minor(backing.st_dev)) {
      found = true;
    } else if (inode == ino) {
      found = !check_dev || (major == want_major && minor == want_minor);
    }
  }
  std::fclose(f);
  return found;
}

}  // namespace vineyard
