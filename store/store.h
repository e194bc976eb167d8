// Store: the local half of objects. It owns the arena (payload files in memory) and
// the state database (RocksDB: the journal of meta/ and durable copies of payloads),
// and it decides where a payload is: resident in the arena, durable in RocksDB, or
// both. fs/ talks to this header only.
//
// Life of a payload: an upload file in the arena's staging/ (written through new/) is
// sealed into blobs/<id>; under durability=async a background writer then copies it
// into RocksDB, under sync the seal does so before returning. A blob that is durable
// and not open may be evicted from the arena when space is needed, and is reloaded
// from RocksDB by the next OpenBlob.
//
// Payloads of other nodes' blobs (DESIGN.md §7): when SetRemote() is given, OpenBlob
// of a blob made elsewhere fetches it into the arena as a cached copy. A cached copy
// is served like any blob, is never written to RocksDB, and may be evicted whenever
// it is not open (the next OpenBlob fetches it again).
//
// Thread-safety: all methods are thread-safe. Lock order: Store::mu_ before the
// Arena's lock; neither is held while RocksDB copies a payload.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "meta/journal.h"
#include "meta/mutex.h"
#include "meta/object_id.h"
#include "store/options.h"
#include "store/sharded_map.h"

namespace vineyard {

class Arena;
class BlobPool;
class RecoveryScan;
class StateDb;

class Store {
 public:
  // Opens (creating if needed) the arena and state of `opts`. `instance` in: the
  // instance asked for (0 = unspecified); out: the one to use (stored in state).
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& opts, InstanceId* instance);
  ~Store();  // finishes pending durable writes, then closes RocksDB

  const StoreOptions& options() const { return opts_; }
  InstanceId instance() const { return instance_; }
  Journal* journal();
  bool mounted_tmpfs() const { return mounted_tmpfs_; }

  // Recovery at mount. `blobs`: every blob in the object table with its size.
  // Returns the ids whose payload survived neither in the arena nor in RocksDB.
  std::vector<ObjectID> Recover(const std::vector<std::pair<ObjectID, uint64_t>>& blobs);
  // Optional, before Recover: lists the arena's payload files and RocksDB's durable
  // payloads on another thread, so that it overlaps loading the object table (a
  // stat per file: seconds at millions of blobs). Recover then waits for the lists.
  void StartRecoveryScan();

  // ---- Uploads (files being written in new/) ----
  struct Upload {
    uint64_t key = 0;
    int fd = -1;  // O_RDWR on the staging file; owned by the caller
    // CreateFill: the bytes at the start of the file that already hold pages (the
    // reserve, when taken): overwriting them allocates nothing (CopyIntoFill).
    uint64_t backed = 0;
  };
  Result<Upload> CreateUpload();
  // A file for a payload of `size` bytes that the daemon writes itself, already
  // charged (evicting if it must). It is the reserve when one is ready (then it holds
  // up to `reserve` bytes of zeros: the caller overwrites [0, size) and the file is
  // never larger than `size`), else a new empty upload. Seal or drop it like an upload.
  Result<Upload> CreateFill(uint64_t size);
  // Accounts `size` bytes for the upload before the file grows to it (NoSpace if the
  // arena cannot make room even by eviction).
  Status ReserveUpload(uint64_t key, uint64_t size);
  // Removes an upload's file and its charge (the upload was deleted or failed for good).
  void DropUpload(uint64_t key);
  // Turns the upload into the payload of blob `id` (size bytes). Under durability=sync
  // the payload is durable on return.
  Status SealUpload(uint64_t key, ObjectID id, uint64_t size);
  std::string UploadPath(uint64_t key) const;
  // Makes blob `id` of `size` bytes from [offset, offset+size) of `src` (a batch
  // upload's payload): its own arena file, sealed as SealUpload does. On failure
  // nothing of it is left. With `wake_writer` false the durable writer (async) is
  // not woken for it: call WakeWriter() after the last of many.
  Status CopyBlob(int src, uint64_t offset, uint64_t size, ObjectID id, bool wake_writer = true);
  void WakeWriter() { writer_cv_.Signal(); }
  // Makes every blob of `blobs` (id, offset, size of `src`) as CopyBlob would, with the
  // fewest system calls (store_batch.cc): one charge for all the small ones, each file
  // created at its final name read-only and filled with one write from a mapping of
  // `src`, one lock to register them all. Appends each made id to `*made` as it is
  // made (also on failure: the caller deletes them) and calls `each` after each one.
  // The durable writer is not woken: call WakeWriter().
  struct BlobRange {
    ObjectID id;
    uint64_t offset = 0, size = 0;
  };
  Status CreateBlobs(int src, const std::vector<BlobRange>& blobs, std::vector<ObjectID>* made,
                     const std::function<void()>& each);
  // Bytes the arena can still take: the tmpfs's own free space when the arena is a
  // tmpfs mount (it also counts uploads written behind the daemon's back through
  // passthrough), else capacity minus the charged bytes.
  uint64_t ArenaFree() const;
  // Evicts least recently used durable blobs until ArenaFree() >= bytes (or nothing
  // more can go). Uploads written through passthrough never ask for space while they
  // grow, so room is made for them when they are created.
  void MakeRoom(uint64_t bytes);
  // True when the arena tmpfs itself is (nearly) full, including its slack: a write
  // through passthrough has probably failed with ENOSPC.
  bool ArenaExhausted() const;

  // ---- Other nodes' payloads ----
  struct Remote {
    // The size of a remote blob, or why it cannot be fetched (Remote under
    // remote=error, NotFound if there is no such blob).
    std::function<Result<uint64_t>(ObjectID id)> size;
    // Fetches the payload, handing its bytes to `append` in order.
    using Sink = std::function<Status(const char* data, size_t len)>;
    std::function<Status(ObjectID id, uint64_t size, const Sink& append)> fetch;
  };
  void SetRemote(Remote remote);

  // ---- Payloads of sealed blobs ----
  // Opens the blob's arena file read-only and pins it in memory (reloading it from
  // RocksDB if it was evicted, fetching it if another node holds it). Pair every
  // successful call with CloseBlob.
  Result<int> OpenBlob(ObjectID id);
  void CloseBlob(ObjectID id);
  // OpenBlob without the descriptor: pins the blob (loading or fetching it as
  // OpenBlob does) for a caller that holds the file some other way, e.g. a
  // passthrough backing id. Pair every successful call with CloseBlob.
  Status PinBlob(ObjectID id);
  // Called with mu_ held whenever a blob's arena file stops being its payload
  // (evicted, deleted), before the file is unlinked: whoever holds the file past
  // an open (passthrough backing ids) lets go of it there. Must not call the Store.
  void SetDropHook(std::function<void(ObjectID)> hook) {
    MutexLock lock(&mu_);
    drop_hook_ = std::move(hook);
  }
  // Returns once the payload is durable (at once under durability=none).
  Status SyncBlob(ObjectID id);
  // Frees the payload in the arena and in RocksDB.
  void DeleteBlob(ObjectID id);
  bool IsResident(ObjectID id) const;
  std::string BlobPath(ObjectID id) const;

  struct Stats {
    uint64_t capacity = 0, used = 0;
    uint64_t resident = 0, durable = 0, pending_durable = 0;
    uint64_t evictions = 0, reloads = 0, durable_errors = 0;
    uint64_t collapsed = 0, pending_collapse = 0;  // huge-page collapses (queued + running)
    uint64_t cached = 0, fetched = 0;              // remote payloads: held now, fetched ever
    uint64_t reserve_ready = 0, reserve_takes = 0;  // reserve bytes written ahead; times used
    uint64_t pool_files = 0;  // BlobPool files ready for the next batch (one page each)
  };
  Stats stats() const;

 private:
  struct Blob {
    uint64_t size = 0;
    bool resident = false;
    bool durable = false;
    bool loading = false;  // a reload from RocksDB is in progress
    bool failed = false;   // the durable copy failed (SyncBlob reports it)
    bool cached = false;   // a copy of another node's payload
    int pins = 0;
    std::list<ObjectID>::iterator lru;  // valid while resident && durable && pins == 0
    bool in_lru = false;
  };

  explicit Store(StoreOptions opts);
  Status Seal(uint64_t key, ObjectID id, uint64_t size, bool wake_writer);  // SealUpload
  // What Recover compares the table's blobs with (store/recovery_scan.h).
  std::unique_ptr<RecoveryScan> MakeRecoveryScan() const;
  // Fetches remote blob `id` into the arena as a cached copy (waits if another thread
  // is fetching it already).
  Status FetchRemote(ObjectID id, uint64_t size);
  static bool Evictable(const Blob& b) {
    return b.resident && (b.durable || b.cached) && b.pins == 0 && !b.loading;
  }
  uint64_t Evict(uint64_t bytes) LOCKS_EXCLUDED(mu_);  // the arena's evictor
  // Moves blob `id`'s payload file and its charge out of blobs/ to a fresh staging key,
  // so that a reload or fetch of `id` once mu_ is let go can never meet them; returns
  // the key (0 if there was no file) for DropDetached, which unlinks the file (freeing a
  // large file's pages takes long: outside mu_) and only then releases the charge, so
  // the arena never grants pages the tmpfs still holds. A crash in between leaves a
  // staging file, which the next start removes.
  uint64_t DetachPayloadLocked(ObjectID id) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropDetached(uint64_t key) LOCKS_EXCLUDED(mu_);
  void WriterLoop();                               // the durable-payload writer thread
  // A payload for the writer: `fd` is its arena file open for reading, or -1 (the
  // writer opens it by name). WriteDurable closes every fd.
  struct DurableJob {
    ObjectID id;
    uint64_t size = 0;
    int fd = -1;
  };
  // The writer's copies of `batch` into RocksDB (mu_ not held).
  std::vector<Status> WriteDurable(const std::vector<DurableJob>& batch);
  // Their outcome; lets mu_ go while deleting the copy of a blob deleted meanwhile.
  void FinishDurable(ObjectID id, const Status& s) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static constexpr size_t kWriterBatch = 256;
  static constexpr std::chrono::milliseconds kWriterGather{2};
  void CollapseLoop();                             // the huge-page collapser thread (collapse.cc)
  // The reserve (store/reserve.cc).
  std::string ReservePath() const;
  void RemoveReserveFiles() const;
  // Removes a ready reserve to make room; returns the bytes freed.
  uint64_t DropReserveLocked() EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartReserver();
  void ReserveLoop();
  bool WriteReserve(const std::string& path, uint64_t size);
  void QueueCollapse(ObjectID id, uint64_t size) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnpinLocked(ObjectID id) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LruInsert(ObjectID id, Blob& b) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CreateBlobs' files of the small blobs: each made (from `pooled` while it lasts) and
  // written from [lo, hi) of `src`; appends (id, size) and the open fd of each made one.
  Status WriteSmallBlobs(int src, const std::vector<const BlobRange*>& small, uint64_t lo,
                         uint64_t hi, std::vector<int>* pooled,
                         std::vector<std::pair<ObjectID, uint64_t>>* charged,
                         std::vector<int>* fds, const std::function<void()>& each);
  void LruErase(Blob& b) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds (+1) or removes (-1) `b`'s flags in counters_' resident/durable/cached, which
  // stats() reports without walking blobs_: every change of a flag, insert or erase of
  // a blob is bracketed by Tally(b, -1) and Tally(b, +1).
  void Tally(const Blob& b, int sign) EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StoreOptions opts_;
  InstanceId instance_ = 0;
  Remote remote_;  // set before the mount serves requests
  std::function<void(ObjectID)> drop_hook_ GUARDED_BY(mu_);  // SetDropHook
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<BlobPool> pool_;  // empty files for batch seals (store/blob_pool.h)
  std::unique_ptr<StateDb> db_;            // null when state=none
  std::unique_ptr<Journal> null_journal_;  // used when state=none
  bool mounted_tmpfs_ = false;
  bool arena_is_tmpfs_ = false;  // the arena dir is a tmpfs mount point of its own

  mutable Mutex mu_;
  CondVar cv_;           // signalled on durable/loaded changes
  CondVar writer_cv_;    // wakes the writer: queue_ or stopping_
  CondVar collapse_cv_;  // wakes the collapser: collapse_queue_ or stopping_
  ShardedMap<ObjectID, Blob> blobs_ GUARDED_BY(mu_);  // grows 1/64 at a time
  std::list<ObjectID> lru_ GUARDED_BY(mu_);                // front = least recent
  std::deque<ObjectID> queue_ GUARDED_BY(mu_);             // awaiting the writer
  // Descriptors of queued payloads that CreateBlobs kept open for the writer (it
  // reads through them: no open by name, no close on the seal's path), bounded.
  std::unordered_map<ObjectID, int> writer_fds_ GUARDED_BY(mu_);
  size_t writer_fds_max_ = 0;
  bool writer_idle_ GUARDED_BY(mu_) = false;               // waiting for queue_
  std::unordered_set<ObjectID> fetching_ GUARDED_BY(mu_);  // remote fetches running
  bool stopping_ GUARDED_BY(mu_) = false;
  Stats counters_ GUARDED_BY(mu_);                       // evictions, reloads, errors
  std::deque<ObjectID> collapse_queue_ GUARDED_BY(mu_);  // awaiting the collapser
  bool collapsing_ GUARDED_BY(mu_) = false;              // one is in progress
  bool collapse_ = false;  // the arena tmpfs has a huge-page policy: collapse payloads
  std::thread writer_;
  std::thread collapser_;
  bool reserve_ready_ GUARDED_BY(mu_) = false;  // ReservePath() holds `reserve` bytes
  bool reserve_hold_ GUARDED_BY(mu_) = false;   // evicted for room; wait before rewriting
  uint64_t reserve_taker_ GUARDED_BY(mu_) = 0;  // the staging key filling the last reserve
  std::thread reserver_;
  std::unique_ptr<RecoveryScan> recovery_scan_;  // StartRecoveryScan until Recover
};

}  // namespace vineyard
