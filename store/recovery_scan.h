// RecoveryScan: what recovery compares the object table's blobs with at mount: the
// arena's payload files (id, size) and RocksDB's durable payloads, each in id order.
//
// Listing the arena is a readdir of blobs/ and a stat per file, ~2.4 µs each on a
// 2 vCPU VM (a dentry lookup and a syscall): seconds at millions of blobs, the longest
// part of a mount. So the stats are shared out in chunks: Start() runs a thread that
// lists blobs/ and stats chunks while the object table loads on the caller's thread;
// Finish() (recovery, once the table is loaded) takes the durable list if the thread
// has not taken it yet, then stats the chunks that are left beside the thread, and
// returns both lists once every chunk is done. On two cores the table load, the stats
// and the durable list then end together instead of the stats alone after the load.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "meta/mutex.h"
#include "meta/object_id.h"

namespace vineyard {

class Arena;

class RecoveryScan {
 public:
  using Sized = std::vector<std::pair<ObjectID, uint64_t>>;
  // `durable` lists the durable payloads (RocksDB's key order); `arena` outlives us.
  RecoveryScan(const Arena* arena, std::function<Sized()> durable);
  ~RecoveryScan();  // waits for the thread
  RecoveryScan(const RecoveryScan&) = delete;
  RecoveryScan& operator=(const RecoveryScan&) = delete;

  // Starts the thread (at most once).
  void Start();
  struct Lists {
    Sized files;    // (id, size) of every blob file that could be stat'ed, by id
    Sized durable;  // (id, size) of every durable payload, by id
  };
  // Does what is left on the calling thread (everything if Start was not called),
  // waits for the thread, and returns the lists. Call once.
  Lists Finish();

  // Blob files per chunk of stats: small enough that the two threads end close
  // together, large enough that claiming one costs nothing beside its stats.
  static constexpr size_t kChunk = 2048;

 private:
  void List();       // readdir of blobs/, then listed_
  void StatChunks();  // claims and stats chunks until none is left
  void TakeDurable();  // the durable list, by whichever thread gets here first
  void WaitListed();

  const Arena* const arena_;
  const std::function<Sized()> durable_lister_;
  std::thread thread_;
  Mutex mu_;
  CondVar cv_;
  bool listed_ GUARDED_BY(mu_) = false;
  // Written by List before listed_, read-only after.
  std::vector<ObjectID> ids_;
  // sizes_[i] for ids_[i], kGone if its stat failed: each chunk's slots are written by
  // the one thread that claimed it (next_), read by Finish after the join.
  std::vector<uint64_t> sizes_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> durable_taken_{false};
  Sized durable_;  // written by the thread that took it; read after the join
};

}  // namespace vineyard
