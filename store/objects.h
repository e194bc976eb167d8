// ObjectStore: the object-level transactions of a node, over its two stores: the
// object table (meta/: records and names, journaled) and the Store (payloads). Every
// user action that touches both goes through one method here, which also undoes what
// it did when a later step fails, so fs/, the plugin host and the daemon's main never
// sequence the two themselves:
//
//   sealing    SealBlob (an upload becomes a blob), SealMeta (a metadata object),
//              SealBatch (many objects, all or nothing), CreateBlob/CreateBlobFrom and
//              CreateMeta (what builder plugins create)
//   deleting   Delete (an object, its cascade and their payloads), Undo (a failed
//              builder's objects), ForgetIfDeleted (a peer deleted its object)
//   pinning    Pin/Unpin (a blob mapped read-only for views and plugin calls)
//   mounting   Open (the store, the table and recovery of payloads against records)
//   peers      ServePayload (bytes of a persisted blob to a peer), SetRemote (fetching
//              other nodes' payloads)
//
// Order of a creation: the payload first, then the record (a crash in between leaves
// an orphan payload, which recovery removes); of a deletion: the record first, then the
// payload. So a restart never shows a record without its payload.
//
// Thread-safety: all methods are thread-safe (the table and the Store are). The
// facade holds no lock of its own; the table's and the Store's are taken one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "meta/batch.h"
#include "meta/object_table.h"
#include "store/store.h"

namespace vineyard {

// A blob pinned in the arena and mapped read-only: what views and plugin calls read.
struct PinnedBlob {
  ObjectID id;
  const char* data = nullptr;  // null for an empty blob
  uint64_t size = 0;
};

class ObjectStore {
 public:
  // Over a store and a table that outlive it (the table loaded from store->journal()).
  ObjectStore(Store* store, ObjectTable* table) : store_(store), table_(table) {}

  // Recovery at mount: opens the Store of `opts` (`instance` as Store::Open), loads the
  // table from its journal, then compares the table's blobs with the payloads that
  // survived and forgets the records whose payload is gone. Logs what it recovered.
  static Result<std::unique_ptr<ObjectStore>> Open(const StoreOptions& opts,
                                                   InstanceId* instance);

  Store* store() const { return store_; }
  ObjectTable* table() const { return table_; }

  // ---- Creating objects (Owner: the creating uid) ----
  // Upload `upload` (size bytes) becomes a new blob; on failure nothing of it is left
  // but the upload itself.
  Result<ObjectID> SealBlob(uint64_t upload, uint64_t size, Owner owner);
  // Creates the metadata object `spec`; then upload `upload`, whose bytes it was, goes.
  Result<ObjectID> SealMeta(uint64_t upload, const CreateSpec& spec, Owner owner);
  // Ids for a batch's entries (ParseBatch's allocator): a blob id where `blob` is true.
  Result<std::vector<ObjectID>> NewIds(const std::vector<bool>& blob);
  // Every object of `batch` (ids from NewIds) from the upload `upload`, whose payload
  // starts at `payload_at` of `src`: each blob entry's bytes into its own arena file,
  // then every record in one journal commit. All or nothing: on failure the arena files
  // made go; a crash before the commit leaves orphans, which recovery removes.
  // `after_blob(n)` runs after the n-th blob is in the arena (a test hook). On success
  // the upload goes too (its open descriptors stay valid). Returns the root's id.
  Result<ObjectID> SealBatch(uint64_t upload, int src, uint64_t payload_at, BatchSpec batch,
                             Owner owner,
                             const std::function<void(long)>& after_blob);
  // A blob of `len` bytes copied from `bytes` (a builder's vy_host.create_blob).
  Result<ObjectRecord> CreateBlob(const void* bytes, uint64_t len, Owner owner);
  // A blob of [offset, offset+len) of `src` (create_blob_from_upload).
  Result<ObjectRecord> CreateBlobFrom(int src, uint64_t offset, uint64_t len, Owner owner);
  // A metadata object (Table::Create's rules).
  Result<ObjectRecord> CreateMeta(const CreateSpec& spec, Owner owner);
  // An upload whose bytes live on elsewhere (a builder made objects of it) goes.
  void DropUpload(uint64_t upload) { store_->DropUpload(upload); }

  // ---- Deleting objects ----
  // Deletes `id` as ObjectTable::Delete does, then the payloads of the blobs that went.
  Result<ObjectTable::Deleted> Delete(ObjectID id);
  // Deletes `created` newest first (so that members are no longer referenced when they
  // go), with their payloads; failures are skipped. A failed builder's undo.
  void Undo(const std::vector<ObjectID>& created);
  // After a peer's change named `id`: true (and the cached payload dropped) if the
  // object is gone, false if it was created or replaced.
  bool ForgetIfDeleted(ObjectID id);

  // ---- Pinning blobs ----
  // NotFound if `id` is not a blob; the store's error if it cannot be loaded. Pair
  // every success with Unpin.
  Result<PinnedBlob> Pin(ObjectID id);
  void Unpin(const PinnedBlob& blob);

  // ---- Other nodes ----
  // Serves up to *len bytes of this node's persisted blob `id` from `offset` into
  // `buf`; sets *len to what it copied and returns the payload's size. Transient
  // blobs and other nodes' blobs are NotFound (ids are easy to guess).
  Result<uint64_t> ServePayload(ObjectID id, uint64_t offset, char* buf, uint32_t* len);
  // Opening a blob another node made fetches it through `fetch` (remote=fetch), or
  // fails with Remote (`fetch_allowed` false: remote=error).
  using Fetch = std::function<Status(ObjectID, uint64_t, const Store::Remote::Sink&)>;
  void SetRemote(bool fetch_allowed, Fetch fetch);

 private:
  ObjectStore() = default;
  // The rest of Open: recovery of payloads against the loaded table.
  Status RecoverPayloads(InstanceId instance);
  // A blob of `len` bytes that `fill` writes into a fresh arena file.
  using Fill = std::function<Status(const Store::Upload& up, uint64_t len)>;
  Result<ObjectRecord> MakeBlob(uint64_t len, const Fill& fill, Owner owner);

  std::unique_ptr<Store> own_store_;      // Open only; destroyed after the table
  std::unique_ptr<ObjectTable> own_table_;
  Store* store_ = nullptr;
  ObjectTable* table_ = nullptr;
};

}  // namespace vineyard
