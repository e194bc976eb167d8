// ObjectTable: every object and name this node can see, in memory, journaled.
//
// Lookups (`lookup`/`getattr`/`readdir` in fs/) are answered from here and never touch
// the journal. Every mutation builds one JournalBatch, commits it, and only then
// changes memory, so memory never shows a state the journal could lose.
//
// Thread-safety: all methods are thread-safe. One reader/writer lock, mu_, protects
// all state; the journal is called with mu_ held exclusively, so the journal sees
// mutations in the same order as memory. Callbacks (With, ForEach*) run with mu_ held
// shared: they must not call back into the table.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "meta/journal.h"
#include "meta/object_id.h"
#include "meta/object_meta.h"

namespace vineyard {

class ObjectTable {
 public:
  // `journal` must outlive the table.
  ObjectTable(InstanceId instance, Journal* journal);

  // Loads objects, names and the id counter from the journal. Call once, first.
  // `warnings` receives a line per skipped record.
  Status Load(std::vector<std::string>* warnings);

  InstanceId instance() const { return instance_; }
  Result<ObjectID> NewId(bool blob);

  // Adds a blob whose payload the store already holds under `id` (from NewId(true)).
  Result<ObjectRecord> AddBlob(ObjectID id, uint64_t size, Owner owner);
  // Creates a metadata object. Members must exist (NotFound); members of another
  // instance need "global": true and must be persisted (InvalidArgument).
  Result<ObjectRecord> Create(const CreateSpec& spec, Owner owner);

  bool Exists(ObjectID id) const;
  std::optional<ObjectRecord> Get(ObjectID id) const;
  // Calls `fn` with the record under the shared lock; false if there is none.
  template <typename Fn>
  bool With(ObjectID id, Fn&& fn) const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = objects_.find(id);
    if (it == objects_.end()) return false;
    fn(it->second);
    return true;
  }
  // meta.json: the stored form, members expanded in place, pretty-printed.
  Result<std::string> RenderMeta(ObjectID id) const;

  // Persists `id` and, recursively, its members. Idempotent. `changed` (optional)
  // receives the ids whose flag flipped.
  Status Persist(ObjectID id, std::vector<ObjectID>* changed = nullptr);

  // Deletes `id`, every name pointing at it, and recursively each member that no
  // other object references and no name points at. Busy if `id` is a member of
  // another object. Returns what went (the caller frees the blobs' payloads).
  struct Deleted {
    std::vector<ObjectRecord> objects;  // `id` first, then the members that went with it
    std::vector<std::string> names;
  };
  Result<Deleted> Delete(ObjectID id);
  // Forgets objects whose payload was lost (recovery), and the names on them.
  Status DropLost(const std::vector<ObjectID>& ids);

  // Names. PutName: NotFound if the object does not exist, AlreadyExists if the name
  // does and !replace. RenameName replaces `to` if it exists (rename(2) semantics).
  Status PutName(const std::string& name, ObjectID id, Owner owner, bool replace);
  Status DropName(const std::string& name);
  Status RenameName(const std::string& from, const std::string& to);
  std::optional<NameRecord> GetName(const std::string& name) const;

  // Ordered iteration for readdir: up to `max` ids greater than `after` (raw value).
  std::vector<ObjectID> ListObjects(uint64_t after, size_t max) const;
  // Up to `max` names strictly after `after` in byte order ("" = from the start).
  std::vector<std::pair<std::string, NameRecord>> ListNames(const std::string& after,
                                                            size_t max) const;

  struct Counts {
    uint64_t objects = 0, blobs = 0, persisted = 0, names = 0, blob_bytes = 0;
  };
  Counts counts() const;

 private:
  void LinkMembers(const ObjectRecord& r, int delta);  // requires mu_ held exclusively
  // Removes `id` from memory and the counts (already journaled); requires mu_ held
  // exclusively. Returns the record, or nullopt if there was none.
  std::optional<ObjectRecord> EraseLocked(ObjectID id);
  void CollectBlobs(ObjectID id, std::vector<ObjectID>* seen) const;  // requires mu_
  Status RenderInto(ObjectID id, void* json, int depth) const;        // requires mu_

  const InstanceId instance_;
  Journal* const journal_;
  std::unique_ptr<IdAllocator> ids_;  // set by Load()

  mutable std::shared_mutex mu_;
  std::map<ObjectID, ObjectRecord> objects_;  // protected by mu_
  std::map<std::string, NameRecord> names_;   // protected by mu_
  Counts counts_;                             // protected by mu_ (names taken from names_)
};

int64_t NowMs();

}  // namespace vineyard
