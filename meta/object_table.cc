#include "meta/object_table.h"

#include "meta/json.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_set>

namespace vineyard {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool MayPersist(Owner caller, const ObjectRecord& r) {
  return caller.uid == 0 || caller.uid == r.owner.uid;
}

Status NotPersistable(const std::string& member, ObjectID mid, const ObjectRecord& m) {
  return Status::NotOwner(member + (m.id == mid ? " (" : " holds ") + m.id.ToString() +
                          (m.id == mid ? ")" : "") + " belongs to uid " +
                          std::to_string(m.owner.uid) +
                          " and is not persisted: a persisted or global object may hold only "
                          "members its creator may persist (its own, or persisted ones)");
}

namespace {

void AddUid(std::vector<std::pair<uint32_t, uint32_t>>* uids, uint32_t uid, int delta) {
  for (auto it = uids->begin(); it != uids->end(); ++it) {
    if (it->first != uid) continue;
    it->second += delta;
    if (it->second == 0) uids->erase(it);
    return;
  }
  if (delta > 0) uids->emplace_back(uid, delta);
}

}  // namespace

ObjectTable::ObjectTable(InstanceId instance, Journal* journal)
    : instance_(instance), journal_(journal) {}

Status ObjectTable::Load(std::vector<std::string>* warnings) {
  WriterMutexLock lock(&mu_);
  Journal::Contents c;
  // Records arrive in id order: each goes in at the end of the map, in constant time.
  c.on_object = [this](ObjectRecord&& r) EXCLUSIVE_LOCKS_REQUIRED(mu_) {  // within Load's lock
    ObjectID id = r.id;
    objects_.emplace_hint(objects_.end(), id, std::move(r));
  };
  VY_RETURN_IF_ERROR(journal_->Load(&c));
  for (auto& line : c.bad) warnings->push_back(line);
  seq_ = c.seq;
  for (auto& r : c.objects) {  // a journal that collects them instead
    ObjectID id = r.id;
    objects_.emplace(id, std::move(r));
  }
  // Members must exist: a record whose member is gone (a corrupt or partial state)
  // is kept, but the dangling member is reported.
  for (auto& [id, r] : objects_) {
    for (auto& [field, mid] : r.members) {
      const bool here = objects_.count(mid) > 0;
      AddReferrer(mid, r.owner.uid, +1);
      if (here || r.instance != instance_) continue;  // replicated: may arrive from its origin
      warnings->push_back("object " + id.ToString() + ": member '" + field + "' (" +
                          mid.ToString() + ") is gone (deleted by its owner, or lost)");
    }
    Count(r, +1);
  }
  for (auto& [name, stamp] : c.tombstones) tombstones_[name] = stamp;
  for (auto& [name, n] : c.names) {
    if (n.writer == 0) n.writer = instance_;
    if (!objects_.count(n.id) && n.writer == instance_) {
      warnings->push_back("name '" + name + "' points at missing object " + n.id.ToString());
      continue;
    }
    names_.emplace(std::move(name), n);
  }
  ids_ = std::make_unique<IdAllocator>(
      instance_, c.id_limit, [this](uint64_t limit) { return journal_->SaveIdLimit(limit); });
  return Status::OK();
}

Result<ObjectID> ObjectTable::NewId(bool blob) { return ids_->Next(blob); }

Result<ObjectRecord> ObjectTable::AddBlob(ObjectID id, uint64_t size, Owner owner) {
  auto added = AddBlobs({{id, size}}, owner);
  if (!added.ok()) return added.status();
  return std::move(added->front());
}

Result<std::vector<ObjectRecord>> ObjectTable::AddBlobs(
    const std::vector<std::pair<ObjectID, uint64_t>>& blobs, Owner owner) {
  JournalBatch batch;
  batch.put_objects.reserve(blobs.size());
  for (auto& [id, size] : blobs) {
    ObjectRecord r;
    r.id = id;
    r.type_name = kBlobTypename;
    r.size = r.nbytes = size;
    r.instance = id.instance();
    r.timestamp_ms = NowMs();
    r.signature = MakeSignature(id, r.timestamp_ms);
    r.owner = owner;
    batch.put_objects.push_back(std::move(r));
  }
  WriterMutexLock lock(&mu_);
  for (auto& r : batch.put_objects) {
    if (objects_.count(r.id)) return Status::AlreadyExists("object " + r.id.ToString() + " exists");
  }
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  for (auto& r : batch.put_objects) InsertLocked(r);
  return std::move(batch.put_objects);
}

void ObjectTable::CollectBlobs(ObjectID id, std::unordered_set<ObjectID>* seen) const {
  // A stack, not recursion: chains of members are as long as users make them.
  std::vector<ObjectID> stack{id};
  while (!stack.empty()) {
    ObjectID cur = stack.back();
    stack.pop_back();
    if (!seen->insert(cur).second) continue;  // each object once, however many hold it
    auto it = objects_.find(cur);
    if (it == objects_.end() || cur.is_blob()) continue;
    for (auto& m : it->second.members) stack.push_back(m.second);
  }
}

bool ObjectTable::ReachesLocked(const Members& members, ObjectID target) const {
  std::vector<ObjectID> stack;
  for (auto& m : members) stack.push_back(m.second);
  std::unordered_set<ObjectID> seen;
  while (!stack.empty()) {
    ObjectID cur = stack.back();
    stack.pop_back();
    if (cur == target) return true;
    if (!seen.insert(cur).second) continue;
    auto it = objects_.find(cur);
    if (it == objects_.end()) continue;
    for (auto& m : it->second.members) stack.push_back(m.second);
  }
  return false;
}

void ObjectTable::AddReferrer(ObjectID id, uint32_t uid, int delta) {
  if (auto it = objects_.find(id); it != objects_.end()) {
    it->second.referrers += delta;
    AddUid(&it->second.referrer_uids, uid, delta);
    return;
  }
  auto p = pending_refs_.find(id);
  if (p == pending_refs_.end()) {
    if (delta < 0) return;
    p = pending_refs_.emplace(id, PendingRefs{}).first;
  }
  p->second.total += delta;
  AddUid(&p->second.uids, uid, delta);
  if (p->second.total == 0) pending_refs_.erase(p);
}

void ObjectTable::LinkMembers(const ObjectRecord& r, int delta) {
  for (auto& m : r.members) AddReferrer(m.second, r.owner.uid, delta);
}

void ObjectTable::Count(const ObjectRecord& r, int delta) {
  counts_.objects += delta;
  if (r.is_blob()) {
    counts_.blobs += delta;
    counts_.blob_bytes += delta * static_cast<int64_t>(r.size);
  }
  if (!r.transient) counts_.persisted += delta;
  if (r.instance != instance_) counts_.remote += delta;
}

void ObjectTable::InsertLocked(ObjectRecord r) {
  EraseLocked(r.id);  // a record replaced: its referrer counts wait in pending_refs_
  r.referrers = 0;
  r.referrer_uids.clear();
  if (auto p = pending_refs_.find(r.id); p != pending_refs_.end()) {
    r.referrers = p->second.total;
    r.referrer_uids = std::move(p->second.uids);
    pending_refs_.erase(p);
  }
  Count(r, +1);
  auto [it, inserted] = objects_.emplace(r.id, std::move(r));
  LinkMembers(it->second, +1);
}

bool ObjectTable::Exists(ObjectID id) const {
  ReaderMutexLock lock(&mu_);
  return objects_.count(id) > 0;
}

std::optional<ObjectRecord> ObjectTable::Get(ObjectID id) const {
  ReaderMutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

Status ObjectTable::RenderInto(ObjectID id, void* out, int depth, size_t* budget) const {
  auto& j = *static_cast<ojson*>(out);
  auto it = objects_.find(id);
  if (it == objects_.end()) {
    // A member that is gone. Ids are never reused, so one made here existed when its
    // holder was made: its owner deleted it (a weak reference does not pin it). One
    // of another node may also not have arrived yet.
    j = ojson{{"id", id.ToString()}, {"error", id.instance() == instance_ ? "deleted" : "missing"}};
    return Status::OK();
  }
  const ObjectRecord& r = it->second;
  j = ojson::object();
  j["id"] = r.id.ToString();
  j["typename"] = r.type_name;
  j["nbytes"] = r.nbytes;
  j["instance_id"] = r.instance;
  j["global"] = r.global;
  j["transient"] = r.transient;
  j["signature"] = r.signature;
  j["__timestamp"] = r.timestamp_ms;
  if (r.is_blob()) j["length"] = r.size;
  if (r.fields.empty()) return Status::OK();
  // Validated text (ParseCreateMeta, DecodeRecord): depth and size bounded.
  ojson fields = ojson::parse(r.fields, nullptr, false);
  if (fields.is_discarded()) return Status::IOError("stored fields of " + id.ToString());
  for (auto& [key, value] : fields.items()) {
    if (value.is_object() && value.contains("id") && value["id"].is_string()) {
      auto mid = ObjectID::Parse(value["id"].get<std::string>());
      // Past the depth or the budget a member stays a reference: its own meta.json
      // shows the rest (a chain or a lattice of shared members would otherwise
      // render without end).
      const bool within = depth < kMaxRenderDepth && *budget != 0;
      if (mid.ok() && within) {
        --*budget;
        ojson expanded;
        VY_RETURN_IF_ERROR(RenderInto(*mid, &expanded, depth + 1, budget));
        j[key] = std::move(expanded);
        continue;
      }
    }
    j[key] = std::move(value);
  }
  return Status::OK();
}

Result<std::string> ObjectTable::RenderMeta(ObjectID id) const {
  ReaderMutexLock lock(&mu_);
  if (!objects_.count(id)) return Status::NotFound("object " + id.ToString() + " does not exist");
  ojson j;
  size_t budget = kMaxRenderObjects;
  VY_RETURN_IF_ERROR(RenderInto(id, &j, 0, &budget));
  return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

Status ObjectTable::Persist(ObjectID id, Owner caller, std::vector<ObjectID>* changed) {
  WriterMutexLock lock(&mu_);
  if (!objects_.count(id)) return Status::NotFound("object " + id.ToString() + " does not exist");
  JournalBatch batch;
  std::vector<ObjectID> flip;
  std::vector<ObjectID> stack{id};
  std::unordered_set<ObjectID> visited;
  while (!stack.empty()) {
    ObjectID cur = stack.back();
    stack.pop_back();
    if (!visited.insert(cur).second) continue;
    auto it = objects_.find(cur);
    if (it == objects_.end()) continue;
    if (it->second.transient) {
      if (!MayPersist(caller, it->second)) {
        return Status::NotOwner(cur.ToString() +
                                (cur == id ? "" : ", a member of " + id.ToString() + ",") +
                                " belongs to uid " + std::to_string(it->second.owner.uid) +
                                ": only its owner or root may persist it");
      }
      ObjectRecord copy = it->second;
      copy.transient = false;
      batch.put_objects.push_back(std::move(copy));
      flip.push_back(cur);
    }
    for (auto& m : it->second.members) stack.push_back(m.second);
  }
  if (flip.empty()) return Status::OK();
  std::vector<wire::Change> changes;
  for (auto m = batch.put_objects.rbegin(); m != batch.put_objects.rend(); ++m) {
    changes.push_back(ObjectPut(*m));
  }
  // Names put on them while they were transient become cluster-wide now.
  std::unordered_set<ObjectID> flipped(flip.begin(), flip.end());
  for (auto& [name, n] : names_) {
    if (flipped.count(n.id)) changes.push_back(NamePut(name, n));
  }
  VY_RETURN_IF_ERROR(CommitAndPublish(&batch, std::move(changes)));
  for (ObjectID f : flip) objects_.at(f).transient = false;
  counts_.persisted += flip.size();
  if (changed) *changed = std::move(flip);
  return Status::OK();
}

Result<ObjectTable::Deleted> ObjectTable::Delete(ObjectID id) {
  WriterMutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::NotFound("object " + id.ToString() + " does not exist");
  if (it->second.instance != instance_) {
    return Status::Remote("object " + id.ToString() + " belongs to instance " +
                          std::to_string(it->second.instance) + "; delete it there");
  }
  const uint32_t owner_uid = it->second.owner.uid;
  if (uint32_t pins = it->second.ReferrersOf(owner_uid); pins > 0) {
    return Status::Busy("object " + id.ToString() + " is a member of " + std::to_string(pins) +
                        " other object(s) of its owner (uid " + std::to_string(owner_uid) + ")");
  }
  // Names pointing at each object, for the cascade's "no name points at it" test.
  std::unordered_set<ObjectID> named;
  for (auto& [name, n] : names_) named.insert(n.id);

  // Walk the cascade on a scratch copy of the reference counts.
  std::vector<ObjectID> doomed{id};
  std::map<ObjectID, uint32_t> refs;
  for (size_t i = 0; i < doomed.size(); ++i) {
    for (auto& m : objects_.at(doomed[i]).members) {
      auto mit = objects_.find(m.second);
      if (mit == objects_.end()) continue;
      if (mit->second.instance != instance_) continue;  // another node's: not ours to delete
      if (mit->second.owner.uid != owner_uid) continue;  // another owner's: held weakly
      auto [rit, fresh] = refs.emplace(m.second, mit->second.ReferrersOf(owner_uid));
      if (--rit->second == 0 && !named.count(m.second) &&
          std::find(doomed.begin(), doomed.end(), m.second) == doomed.end()) {
        doomed.push_back(m.second);
      }
    }
  }
  JournalBatch batch;
  batch.delete_objects = doomed;
  std::vector<wire::Change> changes;
  for (auto& [name, n] : names_) {
    if (n.id != id) continue;
    batch.drop_names.push_back(name);
    if (Replicated(id)) changes.push_back(NameDrop(name, NextNameStamp(name)));
  }
  for (ObjectID d : doomed) {
    if (!objects_.at(d).transient) {
      wire::Change c;
      c.op = wire::Op::kObjectDelete;
      c.id = d;
      changes.push_back(std::move(c));
    }
  }
  for (auto& c : changes) {
    if (c.op == wire::Op::kNameDrop) {
      batch.put_tombstones.emplace_back(
          c.name, NameStamp(static_cast<int64_t>(c.timestamp / 1000000), instance_));
    }
  }
  VY_RETURN_IF_ERROR(CommitAndPublish(&batch, std::move(changes)));
  for (auto& name : batch.drop_names) names_.erase(name);
  for (auto& [name, stamp] : batch.put_tombstones) tombstones_[name] = stamp;
  Deleted removed;
  removed.names = batch.drop_names;
  for (ObjectID d : doomed) {
    if (auto r = EraseLocked(d)) removed.objects.push_back(std::move(*r));
  }
  return removed;
}

std::optional<ObjectRecord> ObjectTable::EraseLocked(ObjectID id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return std::nullopt;
  LinkMembers(it->second, -1);  // while it is still here: a member cycle through it counts too
  ObjectRecord r = std::move(it->second);
  objects_.erase(it);
  Count(r, -1);
  // Objects still holding it (weakly, or a remote delete) keep counting here, so
  // that their own deletion later finds the count they added.
  if (r.referrers > 0) pending_refs_[id] = PendingRefs{r.referrers, r.referrer_uids};
  return r;
}

Status ObjectTable::DropLost(const std::vector<ObjectID>& ids) {
  WriterMutexLock lock(&mu_);
  JournalBatch batch;
  std::unordered_set<ObjectID> lost(ids.begin(), ids.end());
  batch.delete_objects = ids;
  for (auto& [name, n] : names_) {
    if (lost.count(n.id)) batch.drop_names.push_back(name);
  }
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  for (auto& name : batch.drop_names) names_.erase(name);
  for (ObjectID id : ids) EraseLocked(id);
  return Status::OK();
}

std::vector<ObjectID> ObjectTable::ListObjects(uint64_t after, size_t max) const {
  ReaderMutexLock lock(&mu_);
  std::vector<ObjectID> out;
  for (auto it = objects_.upper_bound(ObjectID(after)); it != objects_.end() && out.size() < max;
       ++it) {
    out.push_back(it->first);
  }
  return out;
}

std::vector<std::pair<std::string, NameRecord>> ObjectTable::ListNames(const std::string& after,
                                                                       size_t max) const {
  ReaderMutexLock lock(&mu_);
  std::vector<std::pair<std::string, NameRecord>> out;
  auto it = after.empty() ? names_.begin() : names_.upper_bound(after);
  for (; it != names_.end() && out.size() < max; ++it) out.emplace_back(it->first, it->second);
  return out;
}

ObjectTable::Counts ObjectTable::counts() const {
  ReaderMutexLock lock(&mu_);
  Counts c = counts_;
  c.names = names_.size();
  return c;
}

}  // namespace vineyard
