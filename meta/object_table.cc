#include "meta/object_table.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_set>

namespace vineyard {

using ojson = nlohmann::ordered_json;

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

ObjectTable::ObjectTable(InstanceId instance, Journal* journal)
    : instance_(instance), journal_(journal) {}

Status ObjectTable::Load(std::vector<std::string>* warnings) {
  Journal::Contents c;
  VY_RETURN_IF_ERROR(journal_->Load(&c));
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (auto& line : c.bad) warnings->push_back(line);
  for (auto& r : c.objects) {
    ObjectID id = r.id;
    objects_.emplace(id, std::move(r));
  }
  // Members must exist: a record whose member is gone (a corrupt or partial state)
  // is kept, but the dangling member is reported.
  for (auto& [id, r] : objects_) {
    for (auto& [field, mid] : r.members) {
      auto it = objects_.find(mid);
      if (it == objects_.end()) {
        warnings->push_back("object " + id.ToString() + ": member '" + field + "' (" +
                            mid.ToString() + ") is missing");
      } else {
        ++it->second.referrers;
      }
    }
    ++counts_.objects;
    if (r.is_blob()) {
      ++counts_.blobs;
      counts_.blob_bytes += r.size;
    }
    if (!r.transient) ++counts_.persisted;
  }
  for (auto& [name, n] : c.names) {
    if (!objects_.count(n.id)) {
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
  ObjectRecord r;
  r.id = id;
  r.type_name = kBlobTypename;
  r.size = r.nbytes = size;
  r.instance = id.instance();
  r.timestamp_ms = NowMs();
  r.signature = MakeSignature(id, r.timestamp_ms);
  r.owner = owner;
  JournalBatch batch;
  batch.put_objects.push_back(r);
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (objects_.count(id)) return Status::AlreadyExists("object " + id.ToString() + " exists");
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  objects_.emplace(id, r);
  ++counts_.objects;
  ++counts_.blobs;
  counts_.blob_bytes += size;
  return r;
}

void ObjectTable::CollectBlobs(ObjectID id, std::vector<ObjectID>* seen) const {
  if (std::find(seen->begin(), seen->end(), id) != seen->end()) return;
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  if (id.is_blob()) {
    seen->push_back(id);
    return;
  }
  for (auto& m : it->second.members) CollectBlobs(m.second, seen);
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

  std::unique_lock<std::shared_mutex> lock(mu_);
  JournalBatch batch;
  std::vector<ObjectID> to_persist;
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
  std::vector<ObjectID> blobs;
  for (auto& m : r.members) CollectBlobs(m.second, &blobs);
  for (ObjectID b : blobs) r.nbytes += objects_.at(b).size;
  batch.put_objects.push_back(r);
  if (!r.transient) {
    // Persisting an object persists its members with it.
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
        batch.put_objects.push_back(std::move(copy));
        to_persist.push_back(m);
      }
      for (auto& mm : mr.members) stack.push_back(mm.second);
    }
  }
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  for (ObjectID m : to_persist) objects_.at(m).transient = false;
  counts_.persisted += to_persist.size() + (r.transient ? 0 : 1);
  auto [it, inserted] = objects_.emplace(r.id, r);
  LinkMembers(it->second, +1);
  ++counts_.objects;
  return r;
}

void ObjectTable::LinkMembers(const ObjectRecord& r, int delta) {
  for (auto& m : r.members) {
    auto it = objects_.find(m.second);
    if (it != objects_.end()) it->second.referrers += delta;
  }
}

bool ObjectTable::Exists(ObjectID id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return objects_.count(id) > 0;
}

std::optional<ObjectRecord> ObjectTable::Get(ObjectID id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

Status ObjectTable::RenderInto(ObjectID id, void* out, int depth) const {
  auto& j = *static_cast<ojson*>(out);
  auto it = objects_.find(id);
  if (it == objects_.end()) {
    j = ojson{{"id", id.ToString()}, {"error", "missing"}};
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
  ojson fields = ojson::parse(r.fields, nullptr, false);
  if (fields.is_discarded()) return Status::IOError("stored fields of " + id.ToString());
  for (auto& [key, value] : fields.items()) {
    if (value.is_object() && value.contains("id") && value["id"].is_string() &&
        depth < 4 * kMaxMetaDepth) {
      auto mid = ObjectID::Parse(value["id"].get<std::string>());
      if (mid.ok()) {
        ojson expanded;
        VY_RETURN_IF_ERROR(RenderInto(*mid, &expanded, depth + 1));
        j[key] = std::move(expanded);
        continue;
      }
    }
    j[key] = std::move(value);
  }
  return Status::OK();
}

Result<std::string> ObjectTable::RenderMeta(ObjectID id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (!objects_.count(id)) return Status::NotFound("object " + id.ToString() + " does not exist");
  ojson j;
  VY_RETURN_IF_ERROR(RenderInto(id, &j, 0));
  return j.dump(2) + "\n";
}

Status ObjectTable::Persist(ObjectID id, std::vector<ObjectID>* changed) {
  std::unique_lock<std::shared_mutex> lock(mu_);
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
      ObjectRecord copy = it->second;
      copy.transient = false;
      batch.put_objects.push_back(std::move(copy));
      flip.push_back(cur);
    }
    for (auto& m : it->second.members) stack.push_back(m.second);
  }
  if (flip.empty()) return Status::OK();
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  for (ObjectID f : flip) objects_.at(f).transient = false;
  counts_.persisted += flip.size();
  if (changed) *changed = std::move(flip);
  return Status::OK();
}

Result<ObjectTable::Deleted> ObjectTable::Delete(ObjectID id) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::NotFound("object " + id.ToString() + " does not exist");
  if (it->second.referrers > 0) {
    return Status::Busy("object " + id.ToString() + " is a member of " +
                        std::to_string(it->second.referrers) + " other object(s)");
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
      auto [rit, fresh] = refs.emplace(m.second, mit->second.referrers);
      if (--rit->second == 0 && !named.count(m.second) &&
          std::find(doomed.begin(), doomed.end(), m.second) == doomed.end()) {
        doomed.push_back(m.second);
      }
    }
  }
  JournalBatch batch;
  batch.delete_objects = doomed;
  for (auto& [name, n] : names_) {
    if (n.id == id) batch.drop_names.push_back(name);
  }
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  for (auto& name : batch.drop_names) names_.erase(name);
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
  ObjectRecord r = std::move(it->second);
  objects_.erase(it);
  LinkMembers(r, -1);
  --counts_.objects;
  if (r.is_blob()) {
    --counts_.blobs;
    counts_.blob_bytes -= r.size;
  }
  if (!r.transient) --counts_.persisted;
  return r;
}

Status ObjectTable::DropLost(const std::vector<ObjectID>& ids) {
  std::unique_lock<std::shared_mutex> lock(mu_);
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

Status ObjectTable::PutName(const std::string& name, ObjectID id, Owner owner, bool replace) {
  VY_RETURN_IF_ERROR(ValidateName(name));
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (!objects_.count(id)) return Status::NotFound("object " + id.ToString() + " does not exist");
  if (!replace && names_.count(name)) return Status::AlreadyExists("name '" + name + "' exists");
  NameRecord n{id, owner, NowMs()};
  JournalBatch batch;
  batch.put_names.emplace_back(name, n);
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  names_[name] = n;
  return Status::OK();
}

Status ObjectTable::DropName(const std::string& name) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (!names_.count(name)) return Status::NotFound("name '" + name + "' does not exist");
  JournalBatch batch;
  batch.drop_names.push_back(name);
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  names_.erase(name);
  return Status::OK();
}

Status ObjectTable::RenameName(const std::string& from, const std::string& to) {
  VY_RETURN_IF_ERROR(ValidateName(to));
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = names_.find(from);
  if (it == names_.end()) return Status::NotFound("name '" + from + "' does not exist");
  if (from == to) return Status::OK();
  NameRecord n = it->second;
  JournalBatch batch;
  batch.drop_names.push_back(from);
  batch.put_names.emplace_back(to, n);
  VY_RETURN_IF_ERROR(journal_->Commit(batch));
  names_.erase(from);
  names_[to] = n;
  return Status::OK();
}

std::optional<NameRecord> ObjectTable::GetName(const std::string& name) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

std::vector<ObjectID> ObjectTable::ListObjects(uint64_t after, size_t max) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<ObjectID> out;
  for (auto it = objects_.upper_bound(ObjectID(after)); it != objects_.end() && out.size() < max;
       ++it) {
    out.push_back(it->first);
  }
  return out;
}

std::vector<std::pair<std::string, NameRecord>> ObjectTable::ListNames(const std::string& after,
                                                                       size_t max) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<std::pair<std::string, NameRecord>> out;
  auto it = after.empty() ? names_.begin() : names_.upper_bound(after);
  for (; it != names_.end() && out.size() < max; ++it) out.emplace_back(it->first, it->second);
  return out;
}

ObjectTable::Counts ObjectTable::counts() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  Counts c = counts_;
  c.names = names_.size();
  return c;
}

}  // namespace vineyard
