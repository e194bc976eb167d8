// ObjectTable: every object and name this node can see, in memory, journaled.
//
// Lookups (`lookup`/`getattr`/`readdir` in fs/) are answered from here and never touch
// the journal. Every mutation builds one JournalBatch, commits it, and only then
// changes memory, so memory never shows a state the journal could lose.
//
// Replication (DESIGN.md §7): the table numbers every change to this node's
// cluster-visible state — its persisted objects and the names on persisted objects —
// and hands it to the change sink in commit order; the sequence number is journaled
// with the change. Objects and names of other nodes arrive through ApplyRemote and
// ApplySnapshot; a node speaks only for the objects it created, and names resolve
// last-writer-wins by (timestamp, writer instance), with tombstones for drops.
//
// Ownership (README "Ownership"): an object belongs to the uid that created it. A
// member reference by an object of the same owner pins the member (Delete is Busy);
// a reference by another owner's object is weak: it never keeps the member's owner
// from deleting it, the cascade of a delete ignores it, and the holder then shows
// the member as deleted. Persisting — at creation ("transient": false, "global":
// true) or later — may flip only objects the caller may persist: its own, or any
// as root (uid 0); otherwise NotOwner and nothing changes.
//
// Thread-safety: all methods are thread-safe. One reader/writer lock, mu_, protects
// all state; the journal is called with mu_ held exclusively, so the journal sees
// mutations in the same order as memory. Callbacks (With, ForEach*) run with mu_ held
// shared: they must not call back into the table.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "meta/batch.h"
#include "meta/journal.h"
#include "meta/mutex.h"
#include "meta/object_id.h"
#include "meta/object_meta.h"
#include "meta/wire.h"

namespace vineyard {

struct BatchRecords;  // object_table_batch.cc

// meta.json expands members in place: at most this many levels of members...
constexpr int kMaxRenderDepth = kMaxMetaDepth;
// ...and this many expanded objects in one meta.json; further members are shown as
// {"id": ...} references (shared members would otherwise multiply without end).
constexpr size_t kMaxRenderObjects = 10000;  // ~10 MB and ~0.3 s at most

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
  // AddBlob of many (id, size) in one journal commit, all or none (tools/vyfill).
  Result<std::vector<ObjectRecord>> AddBlobs(
      const std::vector<std::pair<ObjectID, uint64_t>>& blobs, Owner owner);
  // Creates a metadata object. Members must exist (NotFound); members of another
  // instance need "global": true and must be persisted (InvalidArgument); a persisted
  // or global object may hold only members `owner` may persist: its own or persisted
  // ones, any as root (NotOwner).
  Result<ObjectRecord> Create(const CreateSpec& spec, Owner owner);
  // Creates every object of `batch` (ParseBatch with ids from NewId; the store already
  // holds the payload of each blob entry) in one journal commit, or none of them.
  // Members outside the batch follow Create's rules; a persisted entry persists what it
  // reaches, in the batch and outside it. Returns the root's record. The records take
  // the spec's strings (pass it moved: no copy of each entry's fields).
  Result<ObjectRecord> CreateBatch(BatchSpec batch, Owner owner);

  // `fn` is called by a thread about to wait for the table's lock, before it waits
  // (to give up what it holds that others would wait for meanwhile).
  void SetBeforeWait(void (*fn)()) { mu_.SetBeforeWait(fn); }

  bool Exists(ObjectID id) const;
  std::optional<ObjectRecord> Get(ObjectID id) const;
  // Calls `fn` with the record under the shared lock; false if there is none.
  template <typename Fn>
  bool With(ObjectID id, Fn&& fn) const {
    ReaderMutexLock lock(&mu_);
    auto it = objects_.find(id);
    if (it == objects_.end()) return false;
    fn(it->second);
    return true;
  }
  // Calls `fn` with every record, in id order, under the shared lock.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    ReaderMutexLock lock(&mu_);
    for (auto& [id, r] : objects_) fn(r);
  }
  // meta.json: the stored form, members expanded in place (within kMaxRenderDepth and
  // kMaxRenderObjects), pretty-printed.
  Result<std::string> RenderMeta(ObjectID id) const;

  // Persists `id` and, recursively, its members, for `caller`: NotOwner (and
  // nothing changes) if one that is still transient belongs to another uid and the
  // caller is not root. Idempotent. `changed` (optional) receives the ids whose flag
  // flipped.
  Status Persist(ObjectID id, Owner caller, std::vector<ObjectID>* changed = nullptr);

  // Deletes `id` (Remote if another node created it), every name pointing at it, and
  // recursively each member of the same owner that no other object of that owner
  // references and no name points at. Busy if `id` is a member of another object of
  // its own owner (references by other owners' objects are weak and do not count).
  // Returns what went (the caller frees the blobs' payloads).
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
    uint64_t remote = 0;  // objects created by other instances
  };
  Counts counts() const;

  // ---- Replication ----
  // Receives this node's changes, numbered, in commit order. Called with the table's
  // lock held exclusively: it must only queue them.
  using ChangeSink = std::function<void(std::vector<wire::Change>&&)>;
  void SetChangeSink(ChangeSink sink);
  // The last sequence number this node published (journaled).
  uint64_t published_seq() const;
  // This node's replicated state as snapshot records: its persisted objects (members
  // before the objects holding them), the names it wrote last, and its name drops.
  // Returns the sequence number the snapshot is at.
  uint64_t Snapshot(std::vector<wire::Change>* out) const;
  // What a remote change did, for the kernel's caches and the counters.
  struct Applied {
    std::vector<ObjectID> objects;      // created, replaced or deleted
    std::vector<std::string> names;     // put or dropped
    std::vector<std::string> rejected;  // one reason per change refused
  };
  // Applies updates of their origins in order. A change that is invalid (a record
  // that does not decode, an id not created by its origin, a transient object) is
  // refused with a reason in `rejected`; the others apply. Deleted objects drop the
  // names pointing at them.
  Result<Applied> ApplyRemote(const std::vector<wire::Change>& changes);
  // Replaces everything `origin` speaks for — its objects, and the names whose last
  // writer it is — by a snapshot of its records.
  Result<Applied> ApplySnapshot(InstanceId origin, const std::vector<wire::Change>& records);

 private:
  // Referrer counts of an object that is not in objects_ (not arrived yet, or deleted
  // while other owners' objects still hold it), handed over if it (re)appears.
  struct PendingRefs {
    uint32_t total = 0;
    std::vector<std::pair<uint32_t, uint32_t>> uids;  // (uid, count > 0)
  };
  // Adds `delta` referrers owned by `uid` to `id`'s counts (or its pending ones);
  // requires mu_ held exclusively.
  void AddReferrer(ObjectID id, uint32_t uid, int delta) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LinkMembers(const ObjectRecord& r, int delta) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decodes and checks a remote object put: its id is the key and was made by the
  // origin, and it is persisted. Requires nothing.
  static Result<ObjectRecord> DecodeRemote(const wire::Change& c);
  // The records of the object puts among `changes` (an empty record for the others).
  static std::vector<Result<ObjectRecord>> DecodeRemote(const std::vector<wire::Change>& changes);
  // Erases remote object `id` and drops the names on it, into `batch` and `out`;
  // requires mu_ held exclusively.
  void EraseRemoteLocked(ObjectID id, JournalBatch* batch, Applied* out)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `id` from memory and the counts (already journaled); requires mu_ held
  // exclusively. Returns the record, or nullopt if there was none.
  std::optional<ObjectRecord> EraseLocked(ObjectID id) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CreateBatch's steps over the batch's records `br`: the members of each entry exist
  // (in the batch or the table) and may be held; the objects a persisted entry reaches
  // are persisted with it (`to_persist`: those of the table); each record's nbytes.
  // The walks are bounded in steps. Require mu_.
  Status CheckBatchLocked(const BatchRecords& br) const SHARED_LOCKS_REQUIRED(mu_);
  Status PersistBatchLocked(BatchRecords* br, Owner owner, std::vector<ObjectID>* to_persist) const
      SHARED_LOCKS_REQUIRED(mu_);
  Status BatchNbytesLocked(BatchRecords* br) const SHARED_LOCKS_REQUIRED(mu_);
  // Create's checks of a new record's members: each exists, and a remote one only under
  // a global object and persisted. Requires mu_.
  Status CheckMembersLocked(const ObjectRecord& r) const SHARED_LOCKS_REQUIRED(mu_);
  // Whether `owner` may persist every transient object `r`'s members reach (iterative);
  // requires mu_.
  Status CheckPersistableLocked(const ObjectRecord& r, Owner owner) const
      SHARED_LOCKS_REQUIRED(mu_);
  // Appends a persisted copy of every transient object `r`'s members reach to `batch`,
  // and their ids to `to_persist` (iterative); requires mu_.
  void PersistMembersLocked(const ObjectRecord& r, JournalBatch* batch,
                            std::vector<ObjectID>* to_persist) const SHARED_LOCKS_REQUIRED(mu_);
  // Adds `id` and everything it holds, transitively, to `seen` (iterative); requires mu_.
  void CollectBlobs(ObjectID id, std::unordered_set<ObjectID>* seen) const
      SHARED_LOCKS_REQUIRED(mu_);
  // Adds `r` (replacing any record of its id) to memory and the counts; requires mu_
  // held exclusively.
  void InsertLocked(ObjectRecord r) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds (+1) or removes (-1) `r` in the counts; requires mu_ held exclusively.
  void Count(const ObjectRecord& r, int delta) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Numbers `changes`, puts the last number into `batch`, commits, and hands them to
  // the sink; requires mu_ held exclusively.
  Status CommitAndPublish(JournalBatch* batch, std::vector<wire::Change> changes)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  wire::Change ObjectPut(const ObjectRecord& r) const;
  wire::Change NamePut(const std::string& name, const NameRecord& n) const;
  wire::Change NameDrop(const std::string& name, int64_t ts_ms) const;
  // The (timestamp, writer) a new local write of `name` must carry to win; requires mu_.
  int64_t NextNameStamp(const std::string& name) const SHARED_LOCKS_REQUIRED(mu_);
  // Applies one remote name put or drop under last-writer-wins; requires mu_ held
  // exclusively. True if the table changed.
  bool ApplyNameLocked(const wire::Change& c, JournalBatch* batch) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether names on `id` are cluster-wide (the object is persisted); requires mu_.
  bool Replicated(ObjectID id) const SHARED_LOCKS_REQUIRED(mu_);
  // Whether `target` is reachable from `members` through the table's member links
  // (iterative: a peer controls the depth); requires mu_.
  bool ReachesLocked(const Members& members, ObjectID target) const SHARED_LOCKS_REQUIRED(mu_);
  // Renders `id` into *json with members expanded up to kMaxRenderDepth levels and
  // while *budget (objects still to expand) lasts; requires mu_.
  Status RenderInto(ObjectID id, void* json, int depth, size_t* budget) const
      SHARED_LOCKS_REQUIRED(mu_);

  const InstanceId instance_;
  Journal* const journal_;
  std::unique_ptr<IdAllocator> ids_;  // set by Load()

  mutable SharedMutex mu_;
  std::map<ObjectID, ObjectRecord> objects_ GUARDED_BY(mu_);
  std::map<std::string, NameRecord> names_ GUARDED_BY(mu_);
  Counts counts_ GUARDED_BY(mu_);  // names taken from names_
  // Dropped names: (timestamp ms, writer) of the drop, so that an older put arriving
  // later from another node does not bring the name back. Journaled with the drop (a
  // restart must not forget them: a peer that missed the drop still holds the put),
  // and kept until the name is put again.
  std::map<std::string, NameStamp> tombstones_ GUARDED_BY(mu_);
  // Objects held as members but not here: not arrived yet (replication order across
  // origins), or deleted while weakly held.
  std::map<ObjectID, PendingRefs> pending_refs_ GUARDED_BY(mu_);
  uint64_t seq_ GUARDED_BY(mu_) = 0;  // the last sequence number published
  ChangeSink sink_ GUARDED_BY(mu_);
};

int64_t NowMs();
// Whether `caller` may persist `r`: its owner, or root (the kernel lets only those
// set user.vineyard.persist on it).
bool MayPersist(Owner caller, const ObjectRecord& r);
// NotOwner: `member` ("member 'x'"), whose value is `mid`, is or reaches `m`, which the
// creator may not persist.
Status NotPersistable(const std::string& member, ObjectID mid, const ObjectRecord& m);

}  // namespace vineyard
