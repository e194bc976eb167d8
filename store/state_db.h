// StateDb: the RocksDB database under `state=`, the only user of RocksDB. It
// implements meta/'s Journal and keeps payloads.
//
// Layout (column family: key -> value):
//   default:   "id_limit" -> decimal counter bound; "instance" -> decimal instance id;
//              "seq" -> the last replication sequence number published (decimal);
//              "tombstone/" + name -> "<timestamp ms> <writer instance>" of a dropped
//              cluster-wide name (kept until the name is put again)
//   objects:   8-byte big-endian id -> EncodeRecord() JSON
//   names:     name bytes -> EncodeName() JSON
//   payloads:  8-byte BE id + 4-byte BE chunk number -> up to kChunk payload bytes
//              (integrated BlobDB: values of 4 KiB and more live in blob files)
//   durable:   8-byte BE id -> decimal payload size; written after the last chunk,
//              so its presence means the whole payload is in `payloads`.
//
// Thread-safe (RocksDB is); payload operations on one id must not run concurrently.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "meta/journal.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace vineyard {

class StateDb : public Journal {
 public:
  static constexpr uint64_t kChunk = 1u << 20;
  // Payloads this large bypass the WAL and are flushed instead (see PutPayload).
  static constexpr uint64_t kBulkPayload = 4u << 20;

  // `sync`: every Commit is fsynced before it returns (durability=sync).
  // `lock_wait_ms`: how long to wait for another process holding the database (a
  // previous daemon finishing its durable writes after unmount).
  static Result<std::unique_ptr<StateDb>> Open(const std::string& dir, bool sync,
                                               int lock_wait_ms = 0);
  ~StateDb() override;

  Status Commit(const JournalBatch& batch) override;
  Status SaveIdLimit(uint64_t limit) override;
  Status Load(Contents* out) override;

  // The instance id stored at the first mount (0 if none yet).
  Result<uint32_t> LoadInstance();
  Status SaveInstance(uint32_t instance);

  // Copies `size` bytes of `fd` (from offset 0) into the payload of `id`, then marks it
  // durable. `sync`: fsync the WAL before returning.
  Status PutPayload(ObjectID id, int fd, uint64_t size, bool sync);
  // Several payloads of at most kChunk bytes each, with their durable marks, in one
  // RocksDB write: the async writer's way to make many small blobs durable at once.
  struct SmallPayload {
    ObjectID id;
    std::string bytes;
  };
  Status PutSmallPayloads(const std::vector<SmallPayload>& payloads, bool sync);
  // Writes the stored payload of `id` into `fd` from offset 0; NotFound if none.
  Status ReadPayload(ObjectID id, int fd, uint64_t size);
  Status DeletePayload(ObjectID id);
  // Ids whose payload is durable, with their sizes.
  Result<std::vector<std::pair<ObjectID, uint64_t>>> ListDurable();
  // Waits for everything written so far to be on disk (flushes the WAL).
  Status SyncWal();

 private:
  StateDb() = default;
  Status Put(rocksdb::ColumnFamilyHandle* cf, const std::string& key, const std::string& value,
             bool sync);

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;  // owned; closed in the destructor
  rocksdb::ColumnFamilyHandle* objects_ = nullptr;
  rocksdb::ColumnFamilyHandle* names_ = nullptr;
  rocksdb::ColumnFamilyHandle* payloads_ = nullptr;
  rocksdb::ColumnFamilyHandle* durable_ = nullptr;
  bool sync_ = false;
};

}  // namespace vineyard
