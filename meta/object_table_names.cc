// ObjectTable's names (meta/object_table.h): put, drop, rename and look up, each
// journaled and published under the table's lock.
#include "meta/object_table.h"

#include <algorithm>
#include <unordered_set>

#include "meta/json.h"

namespace vineyard {

Status ObjectTable::PutName(const std::string& name, ObjectID id, Owner owner, bool replace) {
  VY_RETURN_IF_ERROR(ValidateName(name));
  WriterMutexLock lock(&mu_);
  if (!objects_.count(id)) return Status::NotFound("object " + id.ToString() + " does not exist");
  if (!replace && names_.count(name)) return Status::AlreadyExists("name '" + name + "' exists");
  NameRecord n{id, owner, NextNameStamp(name), instance_};
  JournalBatch batch;
  batch.put_names.emplace_back(name, n);
  std::vector<wire::Change> changes;
  if (Replicated(id)) changes.push_back(NamePut(name, n));
  if (tombstones_.count(name)) batch.drop_tombstones.push_back(name);
  VY_RETURN_IF_ERROR(CommitAndPublish(&batch, std::move(changes)));
  names_[name] = n;
  tombstones_.erase(name);
  return Status::OK();
}

Status ObjectTable::DropName(const std::string& name) {
  WriterMutexLock lock(&mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return Status::NotFound("name '" + name + "' does not exist");
  JournalBatch batch;
  batch.drop_names.push_back(name);
  std::vector<wire::Change> changes;
  int64_t stamp = NextNameStamp(name);
  bool replicated = Replicated(it->second.id);
  if (replicated) {
    changes.push_back(NameDrop(name, stamp));
    batch.put_tombstones.emplace_back(name, NameStamp(stamp, instance_));
  }
  VY_RETURN_IF_ERROR(CommitAndPublish(&batch, std::move(changes)));
  names_.erase(name);
  if (replicated) tombstones_[name] = {stamp, instance_};
  return Status::OK();
}

Status ObjectTable::RenameName(const std::string& from, const std::string& to) {
  VY_RETURN_IF_ERROR(ValidateName(to));
  WriterMutexLock lock(&mu_);
  auto it = names_.find(from);
  if (it == names_.end()) return Status::NotFound("name '" + from + "' does not exist");
  if (from == to) return Status::OK();
  NameRecord n = it->second;
  n.timestamp_ms = NextNameStamp(to);
  n.writer = instance_;
  JournalBatch batch;
  batch.drop_names.push_back(from);
  batch.put_names.emplace_back(to, n);
  std::vector<wire::Change> changes;
  int64_t drop_stamp = NextNameStamp(from);
  bool replicated = Replicated(n.id);
  if (replicated) {
    changes.push_back(NameDrop(from, drop_stamp));
    changes.push_back(NamePut(to, n));
    batch.put_tombstones.emplace_back(from, NameStamp(drop_stamp, instance_));
  }
  if (tombstones_.count(to)) batch.drop_tombstones.push_back(to);
  VY_RETURN_IF_ERROR(CommitAndPublish(&batch, std::move(changes)));
  names_.erase(from);
  names_[to] = n;
  tombstones_.erase(to);
  if (replicated) tombstones_[from] = {drop_stamp, instance_};
  return Status::OK();
}

std::optional<NameRecord> ObjectTable::GetName(const std::string& name) const {
  ReaderMutexLock lock(&mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

}  // namespace vineyard
