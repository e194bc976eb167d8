// BlobPool: empty payload files made ahead of a batch seal (Store::CreateBlobs), so that
// a small blob of a batch is a write into a ready file and a link, not a create.
//
// Measured on this machine kind (tmpfs, thread CPU per call, README "Per-object cost"):
// creating blobs/<id> costs ~4.8 us, the first write of a 1 KiB payload ~4.7 us (it
// allocates the page), close ~1.8 us; a rename or a link of a ready file costs about
// what a create does (~4.8 / ~3.8 us: the dentry is the cost, not the inode). So a pool
// file is an O_TMPFILE of blobs/ (no name: nothing to find or remove after a crash, the
// kernel frees it with the daemon) with its first page already allocated: the seal
// is pwrite (~2.7 us) + linkat(AT_EMPTY_PATH) (~3.8 us) and hands the open descriptor
// to the durable writer, instead of open + write + close (~11 us).
//
// Accounting: each pool file holds one 4 KiB page, charged to the arena under the
// pool's own key (never evicting for it); Take() moves the page to the blob that
// takes the file. The pool fills only after the first batch (a store that never sees
// a batch holds nothing), only while a quarter of the arena is free, and gives way to
// any charge that needs room (Drain(), from the store's evictor); it then waits for
// the next batch before filling again. Bounded by `max` files (and descriptors).
//
// Thread-safety: all methods are thread-safe. Lock order: the pool's lock before the
// arena's. The filler thread runs at nice 10, like the durable writer.
#pragma once

#include <cstdint>
#include <thread>
#include <vector>

#include "meta/mutex.h"
#include "meta/object_id.h"
#include "meta/status.h"

namespace vineyard {

class Arena;

class BlobPool {
 public:
  static constexpr uint64_t kPage = 4096;
  // At most `max` files; 0 = no pool (Take returns nothing).
  BlobPool(Arena* arena, size_t max);
  ~BlobPool();  // stops the filler, closes (frees) every file and drops the charge
  BlobPool(const BlobPool&) = delete;
  BlobPool& operator=(const BlobPool&) = delete;

  // The pool's size for an arena of `capacity` bytes under a descriptor limit of
  // `nofile`: 2,048 files, at most 1/256 of the arena in pages and 1/8 of the limit;
  // none below 64 files (an arena under 64 MiB).
  static size_t SizeFor(uint64_t capacity, uint64_t nofile);

  // Takes up to `n` files (O_RDWR descriptors, the caller's to close). Their pages'
  // charge leaves the pool: the caller charges the blobs written into them.
  std::vector<int> Take(size_t n);
  // Asks the filler to fill the pool up (after a batch).
  void Refill();
  // Closes every ready file and drops their charge; no filling until the next
  // Refill(). Returns the bytes of charge released.
  uint64_t Drain();
  // Stops using the pool for good (linkat is refused here); closes every file.
  void Disable();
  size_t ready() const;

 private:
  void Loop();
  // Charges the pool's files (ready + being made) to the arena: `files` pages.
  Status ChargeLocked(size_t files) EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Arena* const arena_;
  const size_t max_;
  uint64_t key_ = 0;  // the arena charge key of the pool's pages
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<int> fds_ GUARDED_BY(mu_);
  size_t making_ GUARDED_BY(mu_) = 0;  // files the filler is making (charged already)
  bool want_ GUARDED_BY(mu_) = false;  // Refill() called since the last Drain()
  bool disabled_ GUARDED_BY(mu_) = false;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread filler_;
};

}  // namespace vineyard
