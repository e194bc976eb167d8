// Arena: the payload half of objects (the seed page: "stored locally"), one tmpfs file
// per blob so that each payload can be mapped, served zero-copy and freed by unlinking.
//
//   <arena>/blobs/<id>       a sealed blob's payload (id as printed, "o8001...")
//   <arena>/staging/<n>      a file being written in new/, not yet an object
//
// Capacity: every file is accounted in whole 4 KiB pages, as tmpfs allocates them;
// the sum never exceeds `capacity`. When a reservation does not fit, the arena asks
// its evictor to free the least recently used evictable blobs; if that is not enough
// the reservation fails with NoSpace and nothing changes.
//
// Thread-safety: all methods are thread-safe; mu_ protects the accounting and LRU.
// The evictor callback is called without mu_ held.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "meta/mutex.h"
#include "meta/object_id.h"
#include "store/sharded_map.h"
#include "meta/status.h"

namespace vineyard {

uint64_t PageRound(uint64_t bytes);
// Room the arena tmpfs has beyond `capacity`: uploads written through passthrough
// grow without asking the daemon, and may overshoot until their seal, which evicts
// back under capacity or fails with ENOSPC. 1/8 of capacity, at most 256 MiB.
uint64_t TmpfsSlack(uint64_t capacity);

// Writes `len` bytes at `offset` of an arena file the daemon is filling from the start
// (a fetched, reloaded or built payload), in pieces that keep it in small pages.
// Under huge=within_size a write covering a whole 2 MiB extent inside the file's size
// takes a new huge page, and on this machine kind filling fresh huge pages runs at
// ~0.5 GB/s against 5+ GB/s for small ones (README, "Huge pages"); so such files are
// never sized first and are appended in 256 KiB pieces. The collapser turns their
// extents into huge pages afterwards, off the request path. Retries EINTR and short
// writes.
Status AppendSmallPages(int fd, const char* data, size_t len, uint64_t offset);

// Copies `len` bytes of file `src` from `src_offset` to the start of an arena file the
// daemon is filling (a builder's blob cut from an upload). The first `backed` bytes of
// `dst` already hold pages (Store::Upload::backed: the reserve): that part is copied
// between shared mappings by up to two threads, which allocates nothing and runs at
// memory speed on both cores (copy_file_range is one thread through a pipe, half
// that). The rest is copy_file_range, which appends in small pages (see above).
// `src` must not shrink meanwhile (an upload being sealed is locked).
Status CopyIntoFill(int src, uint64_t src_offset, int dst, uint64_t len, uint64_t backed);

class Arena {
 public:
  // Frees at least `bytes` by evicting blobs; returns how many bytes it freed.
  using Evictor = std::function<uint64_t(uint64_t bytes)>;

  // Prepares the directory layout under `dir` (which must exist).
  static Result<std::unique_ptr<Arena>> Open(const std::string& dir, uint64_t capacity);

  void SetEvictor(Evictor evictor) { evictor_ = std::move(evictor); }
  const std::string& dir() const { return dir_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t used() const;

  std::string BlobPath(ObjectID id) const;
  std::string StagingPath(uint64_t key) const;

  // Accounting. Charge grows or shrinks `key`'s charge to `bytes` (page-rounded),
  // evicting if needed; NoSpace if it cannot fit. Keys: a staging number, or an id.
  // With evict=false it fails with NoSpace instead of asking the evictor.
  Status Charge(uint64_t key, uint64_t bytes, bool evict = true);
  void Uncharge(uint64_t key);
  // Accounts `bytes` for `key` without eviction, even over capacity (recovery: what
  // is already in the arena is counted as it is; later charges evict back under).
  void ChargeExisting(uint64_t key, uint64_t bytes);
  // Makes room for `n` more charges at once (recovery, before ChargeExisting of each).
  void ReserveCharges(size_t n);
  // Moves a charge from one key to another (staging -> blob at seal).
  void MoveCharge(uint64_t from, uint64_t to);
  // Whether `key` holds a charge (a staging key: until it is sealed or dropped).
  bool Charged(uint64_t key) const;

  // A new empty staging file, opened O_RDWR; returns its key and fd.
  Result<std::pair<uint64_t, int>> CreateStaging();
  // Moves the file at `path` (in the arena's tmpfs) to a new staging key and opens it
  // O_RDWR; returns the key and fd. Its charge is the caller's to move.
  Result<std::pair<uint64_t, int>> AdoptStaging(const std::string& path);
  // Removes every staging file (unsealed uploads of a previous run).
  void ClearStaging();

  // A new staging key without a file (a charge for payloads made under other names).
  uint64_t NewKey();
  // Splits the charge of `key` between blob ids, each page-rounded; what is left of
  // `key`'s charge is released. One lock for a whole batch (CreateBlobs).
  void SplitCharge(uint64_t key, const std::vector<std::pair<ObjectID, uint64_t>>& to);
  // Creates the payload file of blob `id` in blobs/ (openat on a held directory fd,
  // O_EXCL, mode 0400 from the start: no staging name, rename or chmod), open O_RDWR
  // (the durable writer reads it through the same descriptor). EEXIST if it is there.
  Result<int> CreateBlobFile(ObjectID id) const;
  // Removes the payload file of blob `id` (unlinkat on the held directory fd).
  void RemoveBlobFile(ObjectID id) const;
  // A file for a BlobPool (store/blob_pool.h): an O_TMPFILE of blobs/ (no name, mode
  // 0400), open O_RDWR, with its first 4 KiB page allocated beyond its size 0.
  Result<int> CreatePoolFile() const;
  // Gives a pool file its name blobs/<id> (linkat; through /proc/self/fd where
  // AT_EMPTY_PATH is refused). EEXIST if it is there.
  Status LinkBlobFile(int fd, ObjectID id) const;

  // Blob files present in the arena: id -> size (recovery).
  std::vector<std::pair<ObjectID, uint64_t>> ListBlobs() const;
  // ListBlobs in two steps, so that several threads can share the stats (recovery's
  // RecoveryScan): the ids of blobs/ (one readdir; strays are logged and skipped),
  // then the size of each file (false if it is gone) relative to `dir`, an fd of
  // blobs/ from OpenBlobsDir (one per thread: a shared fd's reference count is
  // written by every stat, and the threads would fight over its cache line).
  std::vector<ObjectID> ListBlobIds() const;
  int OpenBlobsDir() const;  // O_PATH; -1 on error; the caller closes it
  bool BlobFileSize(int dir, ObjectID id, uint64_t* size) const;

 private:
  Arena(std::string dir, uint64_t capacity, int blobs_fd)
      : dir_(std::move(dir)), capacity_(capacity), blobs_fd_(blobs_fd) {}

 public:
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

 private:
  const std::string dir_;
  const uint64_t capacity_;
  const int blobs_fd_;  // blobs/, O_PATH: the directory of CreateBlobFile
  Evictor evictor_;
  mutable Mutex mu_;
  uint64_t used_ GUARDED_BY(mu_) = 0;
  ShardedMap<uint64_t, uint64_t> charge_ GUARDED_BY(mu_);  // key -> rounded bytes
  uint64_t next_staging_ GUARDED_BY(mu_) = 1;
};

// Mounts a tmpfs of `size` bytes on `dir` unless `dir` is already a tmpfs mount
// point, in which case it is reused (its files survived a daemon crash) and resized.
// `*mounted` tells whether this call mounted it. Needs CAP_SYS_ADMIN.
Status MountArenaTmpfs(const std::string& dir, uint64_t size, const std::string& huge,
                       bool* mounted);
bool IsTmpfsMountPoint(const std::string& dir);

}  // namespace vineyard
