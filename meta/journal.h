// Journal: how the metadata tables persist. meta/ defines it, store/ implements it on
// RocksDB (store/state_db.h), so meta/ never sees a storage engine.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "meta/object_meta.h"
#include "meta/status.h"

namespace vineyard {

// A dropped cluster-wide name: the (timestamp ms, writer instance) of the drop, so
// that an older put arriving later does not bring the name back (ObjectTable).
using NameStamp = std::pair<int64_t, uint32_t>;

// One atomic change to the tables: everything in it is applied, or nothing.
struct JournalBatch {
  std::vector<ObjectRecord> put_objects;  // insert or replace
  std::vector<ObjectID> delete_objects;
  std::vector<std::pair<std::string, NameRecord>> put_names;
  std::vector<std::string> drop_names;
  std::vector<std::pair<std::string, NameStamp>> put_tombstones;  // insert or replace
  std::vector<std::string> drop_tombstones;
  // When non-zero: the last replication sequence number this node has published,
  // saved with the batch that made those changes (meta/replicator.h).
  uint64_t seq = 0;
  bool empty() const {
    return put_objects.empty() && delete_objects.empty() && put_names.empty() &&
           drop_names.empty() && put_tombstones.empty() && drop_tombstones.empty();
  }
};

// Thread-safe: the table may commit from several FUSE worker threads at once.
class Journal {
 public:
  virtual ~Journal() = default;
  // Applies `batch` atomically. Survives a crash of the process on return; survives a
  // crash of the machine too when the store runs with durability=sync.
  virtual Status Commit(const JournalBatch& batch) = 0;
  // Durably records the id counter's new upper bound (always synced).
  virtual Status SaveIdLimit(uint64_t limit) = 0;
  // Reads everything back at mount. A record that fails to decode is reported through
  // `bad` and skipped, so one corrupt value never hides the rest.
  struct Contents {
    uint64_t id_limit = 0;
    uint64_t seq = 0;  // the last saved JournalBatch::seq
    std::vector<ObjectRecord> objects;  // unless on_object is set
    // Set by the caller: each object record is handed here as it is read, in id
    // order, instead of being collected in `objects` (millions of records are never
    // all held twice).
    std::function<void(ObjectRecord&&)> on_object;
    std::vector<std::pair<std::string, NameRecord>> names;
    std::vector<std::pair<std::string, NameStamp>> tombstones;
    std::vector<std::string> bad;  // one line per skipped entry
  };
  virtual Status Load(Contents* out) = 0;
};

}  // namespace vineyard
