// ObjectTable::CreateBatch: the objects of one batch upload (meta/batch.h), checked
// as a whole and committed in one JournalBatch, so a crash or a refusal leaves none
// of them. Nothing of the batch is in memory before the commit succeeds.
#include <unordered_map>
#include <unordered_set>

#include "meta/object_table.h"

namespace vineyard {

namespace {

// Member walks of one batch (persisting, nbytes) take at most this many steps: a
// chain of entries each reaching all before it would otherwise cost n^2 under the
// table's lock.
constexpr uint64_t kMaxBatchWalk = uint64_t{1} << 24;

}  // namespace

Result<ObjectRecord> ObjectTable::CreateBatch(const BatchSpec& b, Owner owner) {
  const size_t n = b.entries.size();
  if (n == 0 || b.ids.size() != n || b.root >= n) {
    return Status::InvalidArgument("an empty or inconsistent batch");
  }
  const int64_t now = NowMs();
  std::vector<ObjectRecord> recs(n);
  std::unordered_map<ObjectID, size_t> local;  // id -> entry
  local.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const BatchEntry& e = b.entries[i];
    ObjectRecord& r = recs[i];
    r.id = b.ids[i];
    r.instance = instance_;
    r.timestamp_ms = now;
    r.signature = MakeSignature(r.id, now);
    r.owner = owner;
    if (e.blob) {
      r.type_name = kBlobTypename;
      r.size = r.nbytes = e.size;
    } else {
      r.type_name = e.spec.type_name;
      r.global = e.spec.global;
      r.transient = !e.spec.persist;
      r.members = e.spec.members;
      r.fields = e.spec.fields;
    }
    local.emplace(r.id, i);
  }

  WriterMutexLock lock(&mu_);
  // The record of `id`, in the batch or in the table (null if neither has it).
  auto find = [&](ObjectID id) SHARED_LOCKS_REQUIRED(mu_) -> const ObjectRecord* {
    if (auto l = local.find(id); l != local.end()) return &recs[l->second];
    auto it = objects_.find(id);
    return it == objects_.end() ? nullptr : &it->second;
  };
  uint64_t steps = 0;
  auto budget = [&]() -> Status {
    if (++steps <= kMaxBatchWalk) return Status::OK();
    return Status::TooLarge("the batch's members reach more than " +
                            std::to_string(kMaxBatchWalk) + " objects in all");
  };

  for (size_t i = 0; i < n; ++i) {
    if (objects_.count(recs[i].id)) {
      return Status::AlreadyExists("object " + recs[i].id.ToString() + " exists");
    }
    for (auto& [field, mid] : recs[i].members) {
      if (local.count(mid)) continue;
      auto it = objects_.find(mid);
      const std::string where = "batch entry " + std::to_string(i) + ", member '" + field + "'";
      if (it == objects_.end()) {
        return Status::NotFound(where + ": object " + mid.ToString() + " does not exist");
      }
      if (it->second.instance != instance_ && !recs[i].global) {
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

  // Persisting: references go backwards, so walking the entries from the last one
  // down carries a persisted entry's flag to every batch entry it reaches. Objects
  // outside the batch that a persisted entry reaches are persisted with it.
  std::vector<ObjectID> to_persist;  // in the table
  std::unordered_set<ObjectID> visited;
  for (size_t i = n; i-- > 0;) {
    if (recs[i].transient) continue;
    for (auto& [field, mid] : recs[i].members) {
      if (auto l = local.find(mid); l != local.end()) {
        recs[l->second].transient = false;
        continue;
      }
      std::vector<ObjectID> stack{mid};
      while (!stack.empty()) {
        VY_RETURN_IF_ERROR(budget());
        ObjectID m = stack.back();
        stack.pop_back();
        if (!visited.insert(m).second) continue;
        auto it = objects_.find(m);
        if (it == objects_.end() || !it->second.transient) continue;
        if (!MayPersist(owner, it->second)) {
          return NotPersistable("batch entry " + std::to_string(i) + ", member '" + field + "'",
                                mid, it->second);
        }
        to_persist.push_back(m);
        for (auto& mm : it->second.members) stack.push_back(mm.second);
      }
    }
  }

  // nbytes: the sum over the distinct blobs each object reaches.
  for (auto& r : recs) {
    if (r.is_blob()) continue;
    std::unordered_set<ObjectID> seen;
    std::vector<ObjectID> stack;
    for (auto& m : r.members) stack.push_back(m.second);
    while (!stack.empty()) {
      VY_RETURN_IF_ERROR(budget());
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

  JournalBatch batch;
  std::vector<wire::Change> changes;
  for (ObjectID m : to_persist) {
    ObjectRecord copy = objects_.at(m);
    copy.transient = false;
    batch.put_objects.push_back(std::move(copy));
  }
  // Members before the objects holding them, so that a peer sees them first: the
  // table's members, deepest first, then the batch in its order.
  for (auto m = batch.put_objects.rbegin(); m != batch.put_objects.rend(); ++m) {
    changes.push_back(ObjectPut(*m));
  }
  for (auto& r : recs) {
    batch.put_objects.push_back(r);
    if (!r.transient) changes.push_back(ObjectPut(r));
  }
  VY_RETURN_IF_ERROR(CommitAndPublish(&batch, std::move(changes)));
  for (ObjectID m : to_persist) objects_.at(m).transient = false;
  counts_.persisted += to_persist.size();
  ObjectRecord root = recs[b.root];
  for (auto& r : recs) InsertLocked(std::move(r));
  return root;
}

}  // namespace vineyard
