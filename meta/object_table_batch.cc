// New local objects: ObjectTable::Create (one object from a create form) and
// CreateBatch (the objects of one batch upload, meta/batch.h), checked as a whole and
// committed in one JournalBatch, so a crash or a refusal leaves none of them. Nothing of
// a batch is in memory before the commit succeeds.
#include <algorithm>
#include <unordered_set>
#include <utility>

#include "meta/object_table.h"

namespace vineyard {

Status ObjectTable::CheckMembersLocked(const ObjectRecord& r) const {
  for (auto& [field, mid] : r.members) {
    auto it = objects_.find(mid);
    if (it == objects_.end()) {
      return Status::NotFound("member '" + field + "': object " + mid.ToString() +
                              " does not exist");
    }
    if (it->second.instance != instance_) {
      if (!r.global) {
        return Status::InvalidArgument(
            "member '" + field + "' (" + mid.ToString() + ") lives on instance " +
            std::to_string(it->second.instance) + "; only a global object may have remote members");
      }
      if (it->second.transient) {
        return Status::InvalidArgument("member '" + field + "' (" + mid.ToString() +
                                       ") is remote and not persisted");
      }
    }
  }
  return Status::OK();
}

Status ObjectTable::CheckPersistableLocked(const ObjectRecord& r, Owner owner) const {
  // Persisting the object persists every member it reaches that is still transient:
  // only those the creator may persist (sharing another user's transient object by
  // reference is fine, persisting it for them is not).
  for (auto& [field, mid] : r.members) {
    std::vector<ObjectID> stack{mid};
    std::unordered_set<ObjectID> visited;
    while (!stack.empty()) {
      ObjectID m = stack.back();
      stack.pop_back();
      if (!visited.insert(m).second) continue;
      auto mit = objects_.find(m);
      if (mit == objects_.end() || !mit->second.transient) continue;
      if (!MayPersist(owner, mit->second)) {
        return NotPersistable("member '" + field + "'", mid, mit->second);
      }
      for (auto& mm : mit->second.members) stack.push_back(mm.second);
    }
  }
  return Status::OK();
}

void ObjectTable::PersistMembersLocked(const ObjectRecord& r, JournalBatch* batch,
                                       std::vector<ObjectID>* to_persist) const {
  std::vector<ObjectID> stack;
  for (auto& m : r.members) stack.push_back(m.second);
  std::unordered_set<ObjectID> visited;
  while (!stack.empty()) {
    ObjectID m = stack.back();
    stack.pop_back();
    if (!visited.insert(m).second) continue;
    auto& mr = objects_.at(m);
    if (mr.transient) {
      ObjectRecord copy = mr;
      copy.transient = false;
      batch->put_objects.push_back(std::move(copy));
      to_persist->push_back(m);
    }
    for (auto& mm : mr.members) stack.push_back(mm.second);
  }
}

Result<ObjectRecord> ObjectTable::Create(const CreateSpec& spec, Owner owner) {
  auto id = NewId(false);
  if (!id.ok()) return id.status();
  ObjectRecord r;
  r.id = *id;
  r.type_name = spec.type_name;
  r.instance = instance_;
  r.global = spec.global;
  r.transient = !spec.persist;
  r.timestamp_ms = NowMs();
  r.signature = MakeSignature(r.id, r.timestamp_ms);
  r.owner = owner;
  r.members = spec.members;
  r.fields = spec.fields;

  WriterMutexLock lock(&mu_);
  JournalBatch batch;
  std::vector<ObjectID> to_persist;
  VY_RETURN_IF_ERROR(CheckMembersLocked(r));
  if (!r.transient) VY_RETURN_IF_ERROR(CheckPersistableLocked(r, owner));
  std::unordered_set<ObjectID> reached;
  for (auto& m : r.members) CollectBlobs(m.second, &reached);
  for (ObjectID b : reached) {
    if (b.is_blob() && objects_.count(b)) r.nbytes += objects_.at(b).size;
  }
  batch.put_objects.push_back(r);
  // Persisting an object persists its members with it.
  if (!r.transient) PersistMembersLocked(r, &batch, &to_persist);
  std::vector<wire::Change> changes;
  if (!r.transient) {
    // Members first, so that a peer sees them before the object holding them.
    for (auto m = batch.put_objects.rbegin(); m != batch.put_objects.rend(); ++m) {
      changes.push_back(ObjectPut(*m));
    }
  }
  VY_RETURN_IF_ERROR(CommitAndPublish(&batch, std::move(changes)));
  for (ObjectID m : to_persist) objects_.at(m).transient = false;
  counts_.persisted += to_persist.size();
  InsertLocked(r);
  return r;
}

// The records of one batch while CreateBatch checks them: ids to entries, and the
// steps its member walks took. Member walks of one batch (persisting, nbytes) take at
// most kMaxBatchWalk steps: a chain of entries each reaching all before it would
// otherwise cost n^2 under the table's lock.
struct BatchRecords {
  static constexpr uint64_t kMaxBatchWalk = uint64_t{1} << 24;

  std::vector<ObjectRecord> recs;
  // (id, entry) sorted by id: a lookup is a binary search, and the index is one
  // allocation rather than a hash node per entry.
  std::vector<std::pair<ObjectID, uint32_t>> local;
  uint64_t steps = 0;

  // The entry of `id` in the batch, or -1.
  long Find(ObjectID id) const {
    auto it = std::lower_bound(local.begin(), local.end(), std::make_pair(id, uint32_t{0}));
    return it != local.end() && it->first == id ? static_cast<long>(it->second) : -1;
  }

  Status Step() {
    if (++steps <= kMaxBatchWalk) return Status::OK();
    return Status::TooLarge("the batch's members reach more than " +
                            std::to_string(kMaxBatchWalk) + " objects in all");
  }
};

namespace {

// The batch's records as the spec gives them, before any check; the spec's strings
// and members move into them.
void MakeRecords(BatchSpec* spec, InstanceId instance, Owner owner, BatchRecords* out) {
  BatchSpec& b = *spec;
  const size_t n = b.entries.size();
  const int64_t now = NowMs();
  out->recs.resize(n);
  out->local.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    BatchEntry& e = b.entries[i];
    ObjectRecord& r = out->recs[i];
    r.id = b.ids[i];
    r.instance = instance;
    r.timestamp_ms = now;
    r.signature = MakeSignature(r.id, now);
    r.owner = owner;
    if (e.blob) {
      r.type_name = kBlobTypename;
      r.size = r.nbytes = e.size;
    } else {
      r.type_name = std::move(e.spec.type_name);
      r.global = e.spec.global;
      r.transient = !e.spec.persist;
      r.members = std::move(e.spec.members);
      r.fields = std::move(e.spec.fields);
    }
    out->local.emplace_back(r.id, static_cast<uint32_t>(i));
  }
  std::sort(out->local.begin(), out->local.end());
}

}  // namespace

Status ObjectTable::CheckBatchLocked(const BatchRecords& br) const {
  for (size_t i = 0; i < br.recs.size(); ++i) {
    if (objects_.count(br.recs[i].id)) {
      return Status::AlreadyExists("object " + br.recs[i].id.ToString() + " exists");
    }
    for (auto& [field, mid] : br.recs[i].members) {
      if (br.Find(mid) >= 0) continue;
      auto it = objects_.find(mid);
      const std::string where = "batch entry " + std::to_string(i) + ", member '" + field + "'";
      if (it == objects_.end()) {
        return Status::NotFound(where + ": object " + mid.ToString() + " does not exist");
      }
      if (it->second.instance != instance_ && !br.recs[i].global) {
        return Status::InvalidArgument(where + " (" + mid.ToString() + ") lives on instance " +
                                       std::to_string(it->second.instance) +
                                       "; only a global object may have remote members");
      }
      if (it->second.instance != instance_ && it->second.transient) {
        return Status::InvalidArgument(where + " (" + mid.ToString() +
                                       ") is remote and not persisted");
      }
    }
  }
  return Status::OK();
}

Status ObjectTable::PersistBatchLocked(BatchRecords* br, Owner owner,
                                       std::vector<ObjectID>* to_persist) const {
  // References go backwards, so walking the entries from the last one down carries a
  // persisted entry's flag to every batch entry it reaches. Objects outside the batch
  // that a persisted entry reaches are persisted with it.
  std::unordered_set<ObjectID> visited;
  for (size_t i = br->recs.size(); i-- > 0;) {
    if (br->recs[i].transient) continue;
    for (auto& [field, mid] : br->recs[i].members) {
      if (long l = br->Find(mid); l >= 0) {
        br->recs[static_cast<size_t>(l)].transient = false;
        continue;
      }
      std::vector<ObjectID> stack{mid};
      while (!stack.empty()) {
        VY_RETURN_IF_ERROR(br->Step());
        ObjectID m = stack.back();
        stack.pop_back();
        if (!visited.insert(m).second) continue;
        auto it = objects_.find(m);
        if (it == objects_.end() || !it->second.transient) continue;
        if (!MayPersist(owner, it->second)) {
          return NotPersistable("batch entry " + std::to_string(i) + ", member '" + field + "'",
                                mid, it->second);
        }
        to_persist->push_back(m);
        for (auto& mm : it->second.members) stack.push_back(mm.second);
      }
    }
  }
  return Status::OK();
}

Status ObjectTable::BatchNbytesLocked(BatchRecords* br) const {
  // The record of `id`, in the batch or in the table (null if neither has it).
  auto find = [&](ObjectID id) SHARED_LOCKS_REQUIRED(mu_) -> const ObjectRecord* {
    if (long l = br->Find(id); l >= 0) return &br->recs[static_cast<size_t>(l)];
    auto it = objects_.find(id);
    return it == objects_.end() ? nullptr : &it->second;
  };
  // The sum over the distinct blobs each object reaches (one set and stack for all,
  // emptied per object: not an allocation per record).
  std::unordered_set<ObjectID> seen;
  std::vector<ObjectID> stack;
  for (auto& r : br->recs) {
    if (r.is_blob()) continue;
    if (!seen.empty()) seen.clear();
    for (auto& m : r.members) stack.push_back(m.second);
    while (!stack.empty()) {
      VY_RETURN_IF_ERROR(br->Step());
      ObjectID cur = stack.back();
      stack.pop_back();
      if (!seen.insert(cur).second) continue;
      const ObjectRecord* m = find(cur);
      if (!m) continue;
      if (cur.is_blob()) {
        r.nbytes += m->size;
      } else {
        for (auto& mm : m->members) stack.push_back(mm.second);
      }
    }
  }
  return Status::OK();
}

Result<ObjectRecord> ObjectTable::CreateBatch(BatchSpec b, Owner owner) {
  const size_t n = b.entries.size();
  if (n == 0 || b.ids.size() != n || b.root >= n) {
    return Status::InvalidArgument("an empty or inconsistent batch");
  }
  BatchRecords br;
  MakeRecords(&b, instance_, owner, &br);

  WriterMutexLock lock(&mu_);
  VY_RETURN_IF_ERROR(CheckBatchLocked(br));
  std::vector<ObjectID> to_persist;  // in the table
  VY_RETURN_IF_ERROR(PersistBatchLocked(&br, owner, &to_persist));
  VY_RETURN_IF_ERROR(BatchNbytesLocked(&br));

  // The batch's records become the journal batch's (no copy, no move of each) and
  // go into the table from there after the commit; the table's objects it persists
  // follow them (the journal applies a batch as a whole, in any order).
  JournalBatch batch;
  batch.put_objects = std::move(br.recs);
  batch.put_objects.reserve(n + to_persist.size());
  for (ObjectID m : to_persist) {
    ObjectRecord copy = objects_.at(m);
    copy.transient = false;
    batch.put_objects.push_back(std::move(copy));
  }
  // Members before the objects holding them, so that a peer sees them first: the
  // table's members, deepest first, then the batch in its order.
  std::vector<wire::Change> changes;
  for (size_t i = batch.put_objects.size(); i-- > n;) {
    changes.push_back(ObjectPut(batch.put_objects[i]));
  }
  for (size_t i = 0; i < n; ++i) {
    if (!batch.put_objects[i].transient) changes.push_back(ObjectPut(batch.put_objects[i]));
  }
  VY_RETURN_IF_ERROR(CommitAndPublish(&batch, std::move(changes)));
  for (ObjectID m : to_persist) objects_.at(m).transient = false;
  counts_.persisted += to_persist.size();
  ObjectRecord root = batch.put_objects[b.root];
  for (size_t i = 0; i < n; ++i) InsertLocked(std::move(batch.put_objects[i]));
  return root;
}

}  // namespace vineyard
