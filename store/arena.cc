#include "store/arena.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "meta/log.h"

namespace vineyard {

uint64_t PageRound(uint64_t bytes) { return (bytes + 4095) & ~uint64_t{4095}; }

uint64_t TmpfsSlack(uint64_t capacity) {
  return PageRound(std::min<uint64_t>(capacity / 8, uint64_t{256} << 20));
}

Status AppendSmallPages(int fd, const char* data, size_t len, uint64_t offset) {
  constexpr size_t kPiece = 256u << 10;
  for (size_t done = 0; done < len;) {
    ssize_t w =
        pwrite(fd, data + done, std::min(kPiece, len - done), static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::FromErrno("write payload", w < 0 ? errno : EIO);
    done += static_cast<size_t>(w);
  }
  return Status::OK();
}

namespace {

// copy_file_range of [from, from+len) of src to [to, ...) of dst, retrying EINTR.
Status CopyFileRange(int src, uint64_t from, int dst, uint64_t to, uint64_t len) {
  loff_t in = static_cast<loff_t>(from), out = static_cast<loff_t>(to);
  for (uint64_t left = len; left > 0;) {
    ssize_t c = copy_file_range(src, &in, dst, &out, left, 0);
    if (c < 0 && errno == EINTR) continue;
    if (c <= 0) return Status::FromErrno("copy payload", c < 0 ? errno : EIO);
    left -= static_cast<uint64_t>(c);
  }
  return Status::OK();
}

// memcpy of `len` bytes split between this thread and one more (large copies only).
void CopyOnTwoCores(char* to, const char* from, uint64_t len) {
  constexpr uint64_t kTwoThreadsFrom = 32u << 20, kHuge = 2u << 20;
  if (len < kTwoThreadsFrom) {
    std::memcpy(to, from, len);
    return;
  }
  const uint64_t half = (len / 2 + kHuge - 1) & ~(kHuge - 1);  // whole huge pages each
  std::thread other([=] { std::memcpy(to + half, from + half, len - half); });
  std::memcpy(to, from, half);
  other.join();
}

}  // namespace

Status CopyIntoFill(int src, uint64_t src_offset, int dst, uint64_t len, uint64_t backed) {
  const uint64_t mapped = std::min(len, backed);
  if (mapped > 0) {
    const uint64_t skew = src_offset & 4095;  // mmap offsets are page-aligned
    void* from = mmap(nullptr, mapped + skew, PROT_READ, MAP_SHARED, src,
                      static_cast<off_t>(src_offset - skew));
    void* to = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, dst, 0);
    const bool both = from != MAP_FAILED && to != MAP_FAILED;
    if (both) CopyOnTwoCores(static_cast<char*>(to), static_cast<const char*>(from) + skew, mapped);
    if (from != MAP_FAILED) munmap(from, mapped + skew);
    if (to != MAP_FAILED) munmap(to, mapped);
    if (!both) {  // no address space: the kernel copies it instead
      VY_RETURN_IF_ERROR(CopyFileRange(src, src_offset, dst, 0, mapped));
    }
  }
  return CopyFileRange(src, src_offset + mapped, dst, mapped, len - mapped);
}

Result<std::unique_ptr<Arena>> Arena::Open(const std::string& dir, uint64_t capacity) {
  for (const char* sub : {"/blobs", "/staging"}) {
    std::string path = dir + sub;
    if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::FromErrno("arena: mkdir " + path, errno);
    }
  }
  const std::string blobs = dir + "/blobs";
  int fd = open(blobs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("arena: open " + blobs, errno);
  return std::unique_ptr<Arena>(new Arena(dir, capacity, fd));
}

Arena::~Arena() { close(blobs_fd_); }

uint64_t Arena::NewKey() {
  MutexLock lock(&mu_);
  return next_staging_++;
}

void Arena::SplitCharge(uint64_t key, const std::vector<std::pair<ObjectID, uint64_t>>& to) {
  MutexLock lock(&mu_);
  auto it = charge_.find(key);
  uint64_t left = it == charge_.end() ? 0 : it->second;
  if (it != charge_.end()) charge_.erase(it);
  for (auto& [id, bytes] : to) {
    const uint64_t want = std::min(left, PageRound(bytes));
    left -= want;
    uint64_t& dst = charge_[id.raw()];
    used_ -= dst;
    dst = want;
  }
  used_ -= left;
}

namespace {
// "o" + 16 hex digits, the name of a blob's payload file (ObjectID::ToString).
void BlobName(ObjectID id, char (&name)[18]) {
  static const char kHex[] = "0123456789abcdef";
  name[0] = 'o';
  for (int i = 0; i < 16; ++i) name[1 + i] = kHex[(id.raw() >> (60 - 4 * i)) & 15];
  name[17] = '\0';
}
}  // namespace

Result<int> Arena::CreateBlobFile(ObjectID id) const {
  char name[18];
  BlobName(id, name);
  int fd = openat(blobs_fd_, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
  if (fd < 0) return Status::FromErrno("arena: create blobs/" + std::string(name), errno);
  return fd;
}

Result<int> Arena::CreatePoolFile() const {
  int fd = openat(blobs_fd_, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0400);
  if (fd < 0) return Status::FromErrno("arena: O_TMPFILE in blobs/", errno);
  // The page a small payload's first write would allocate; a file system without
  // fallocate still gives a pool file (the write allocates then).
  fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096);
  return fd;
}

Status Arena::LinkBlobFile(int fd, ObjectID id) const {
  char name[18];
  BlobName(id, name);
  if (linkat(fd, "", blobs_fd_, name, AT_EMPTY_PATH) == 0) return Status::OK();
  if (errno != ENOENT && errno != EPERM) {
    return Status::FromErrno("arena: link blobs/" + std::string(name), errno);
  }
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (linkat(AT_FDCWD, self.c_str(), blobs_fd_, name, AT_SYMLINK_FOLLOW) == 0) {
    return Status::OK();
  }
  return Status::FromErrno("arena: link blobs/" + std::string(name), errno);
}

void Arena::RemoveBlobFile(ObjectID id) const {
  char name[18];
  BlobName(id, name);
  unlinkat(blobs_fd_, name, 0);
}

uint64_t Arena::used() const {
  MutexLock lock(&mu_);
  return used_;
}

std::string Arena::BlobPath(ObjectID id) const { return dir_ + "/blobs/" + id.ToString(); }

std::string Arena::StagingPath(uint64_t key) const {
  return dir_ + "/staging/" + std::to_string(key);
}

Status Arena::Charge(uint64_t key, uint64_t bytes, bool evict) {
  const uint64_t want = PageRound(bytes);
  // Check, evict, check again. The evictor runs without mu_ (it takes the store's lock
  // and calls Uncharge), so the next check sees what it freed; another thread's charge
  // may have taken that room meanwhile, so while the evictor frees something, ask again
  // (a bounded number of rounds). It fails only once an eviction frees nothing.
  constexpr int kMaxEvictRounds = 16;
  int rounds = 0;
  uint64_t freed = 0;
  for (;;) {
    uint64_t shortfall;
    {
      MutexLock lock(&mu_);
      auto it = charge_.find(key);
      const uint64_t cur = it == charge_.end() ? 0 : it->second;
      if (want <= cur || used_ - cur + want <= capacity_) {
        used_ = used_ - cur + want;
        charge_[key] = want;
        return Status::OK();
      }
      if (want > capacity_) {
        return Status::NoSpace("payload of " + std::to_string(bytes) +
                               " bytes is larger than the arena (" + std::to_string(capacity_) +
                               " bytes)");
      }
      shortfall = used_ - cur + want - capacity_;
      if (!evictor_ || !evict || (rounds > 0 && freed == 0) || rounds == kMaxEvictRounds) {
        return Status::NoSpace("arena full: " + std::to_string(used_) + " of " +
                               std::to_string(capacity_) + " bytes in use and nothing evictable");
      }
    }
    freed = evictor_(shortfall);
    ++rounds;
  }
}

void Arena::ChargeExisting(uint64_t key, uint64_t bytes) {
  MutexLock lock(&mu_);
  uint64_t& cur = charge_[key];
  used_ = used_ - cur + PageRound(bytes);
  cur = PageRound(bytes);
}

void Arena::ReserveCharges(size_t n) {
  MutexLock lock(&mu_);
  charge_.reserve(charge_.size() + n);
}

void Arena::Uncharge(uint64_t key) {
  MutexLock lock(&mu_);
  auto it = charge_.find(key);
  if (it == charge_.end()) return;
  used_ -= it->second;
  charge_.erase(it);
}

bool Arena::Charged(uint64_t key) const {
  MutexLock lock(&mu_);
  return charge_.count(key) > 0;
}

void Arena::MoveCharge(uint64_t from, uint64_t to) {
  MutexLock lock(&mu_);
  auto it = charge_.find(from);
  uint64_t bytes = it == charge_.end() ? 0 : it->second;
  if (it != charge_.end()) charge_.erase(it);
  uint64_t& dst = charge_[to];
  used_ -= dst;
  dst = bytes;
}

Result<std::pair<uint64_t, int>> Arena::CreateStaging() {
  uint64_t key;
  {
    MutexLock lock(&mu_);
    key = next_staging_++;
  }
  std::string path = StagingPath(key);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("arena: create " + path, errno);
  return std::make_pair(key, fd);
}

Result<std::pair<uint64_t, int>> Arena::AdoptStaging(const std::string& from) {
  uint64_t key;
  {
    MutexLock lock(&mu_);
    key = next_staging_++;
  }
  std::string path = StagingPath(key);
  if (rename(from.c_str(), path.c_str()) != 0) {
    return Status::FromErrno("arena: move " + from + " to " + path, errno);
  }
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    unlink(path.c_str());
    return Status::FromErrno("arena: open " + path, err);
  }
  return std::make_pair(key, fd);
}

void Arena::ClearStaging() {
  std::string dir = dir_ + "/staging";
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0) ++n;
  }
  closedir(d);
  if (n) VY_LOG_INFO("arena: dropped %d unsealed upload(s) of a previous run", n);
}

std::vector<std::pair<ObjectID, uint64_t>> Arena::ListBlobs() const {
  std::vector<std::pair<ObjectID, uint64_t>> out;
  std::vector<ObjectID> ids = ListBlobIds();
  out.reserve(ids.size());
  for (ObjectID id : ids) {
    uint64_t size = 0;
    if (BlobFileSize(blobs_fd_, id, &size)) out.emplace_back(id, size);
  }
  return out;
}

std::vector<ObjectID> Arena::ListBlobIds() const {
  std::vector<ObjectID> out;
  std::string dir = dir_ + "/blobs";
  struct stat dst;
  // A tmpfs directory's size is 20 bytes per entry (BOGO_DIRENT_SIZE): size the list once.
  if (stat(dir.c_str(), &dst) == 0) out.reserve(static_cast<size_t>(dst.st_size / 20));
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto id = ObjectID::Parse(e->d_name);
    if (!id.ok()) {
      VY_LOG_WARN("arena: ignoring stray file %s/%s", dir.c_str(), e->d_name);
      continue;
    }
    out.push_back(*id);
  }
  closedir(d);
  return out;
}

int Arena::OpenBlobsDir() const {
  return openat(blobs_fd_, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

bool Arena::BlobFileSize(int dir, ObjectID id, uint64_t* size) const {
  // ObjectID::ToString's name, without a heap string per file (millions at a mount).
  static const char kHex[] = "0123456789abcdef";
  char name[18];
  name[0] = 'o';
  for (int i = 0; i < 16; ++i) name[16 - i] = kHex[(id.raw() >> (4 * i)) & 0xf];
  name[17] = '\0';
  struct stat st;
  if (fstatat(dir, name, &st, 0) != 0) {
    VY_LOG_WARN("arena: ignoring %s/blobs/%s: %s", dir_.c_str(), id.ToString().c_str(),
                strerror(errno));
    return false;
  }
  *size = static_cast<uint64_t>(st.st_size);
  return true;
}

bool IsTmpfsMountPoint(const std::string& dir) {
  struct statfs sfs;
  struct stat st, parent;
  if (statfs(dir.c_str(), &sfs) != 0 || sfs.f_type != TMPFS_MAGIC) return false;
  if (stat(dir.c_str(), &st) != 0 || stat((dir + "/..").c_str(), &parent) != 0) return false;
  return st.st_dev != parent.st_dev;
}

Status MountArenaTmpfs(const std::string& dir, uint64_t size, const std::string& huge,
                       bool* mounted) {
  *mounted = false;
  std::string opts = "size=" + std::to_string(PageRound(size)) + ",mode=0700";
  if (!huge.empty() && huge != "never") opts += ",huge=" + huge;
  if (IsTmpfsMountPoint(dir)) {
    // Left by a previous run (a crash, or a clean unmount: the arena outlives the
    // daemon so that a remount finds its payloads). Resize it to the new limit.
    if (mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts.c_str()) !=
        0) {
      VY_LOG_WARN("arena: could not resize the tmpfs on %s: %s", dir.c_str(), strerror(errno));
    }
    return Status::OK();
  }
  if (mount("vineyardfs-arena", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    return Status::FromErrno("arena: mount tmpfs on " + dir + " (" + opts + ")", errno);
  }
  *mounted = true;
  return Status::OK();
}

}  // namespace vineyard
