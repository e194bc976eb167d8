// ObjectTable's side of replication (meta/object_table.h): the changes it publishes,
// remote updates and snapshots applied under last-writer-wins, and its own snapshot.
#include "meta/object_table.h"

#include <algorithm>
#include <unordered_set>

#include "meta/json.h"

namespace vineyard {

void ObjectTable::SetChangeSink(ChangeSink sink) {
  WriterMutexLock lock(&mu_);
  sink_ = std::move(sink);
}

uint64_t ObjectTable::published_seq() const {
  ReaderMutexLock lock(&mu_);
  return seq_;
}

Status ObjectTable::CommitAndPublish(JournalBatch* batch, std::vector<wire::Change> changes) {
  uint64_t seq = seq_;
  for (auto& c : changes) {
    c.origin = instance_;
    c.seq = ++seq;
  }
  if (!changes.empty()) batch->seq = seq;
  VY_RETURN_IF_ERROR(journal_->Commit(*batch));
  seq_ = seq;
  if (!changes.empty() && sink_) sink_(std::move(changes));
  return Status::OK();
}

wire::Change ObjectTable::ObjectPut(const ObjectRecord& r) const {
  wire::Change c;
  c.op = wire::Op::kObjectPut;
  c.id = r.id;
  c.record = EncodeRecord(r);
  return c;
}

wire::Change ObjectTable::NamePut(const std::string& name, const NameRecord& n) const {
  wire::Change c;
  c.op = wire::Op::kNamePut;
  c.name = name;
  c.id = n.id;
  c.timestamp = static_cast<uint64_t>(n.timestamp_ms) * 1000000;
  c.writer = n.writer != 0 ? n.writer : instance_;
  return c;
}

wire::Change ObjectTable::NameDrop(const std::string& name, int64_t ts_ms) const {
  wire::Change c;
  c.op = wire::Op::kNameDrop;
  c.name = name;
  c.timestamp = static_cast<uint64_t>(ts_ms) * 1000000;
  c.writer = instance_;
  return c;
}

int64_t ObjectTable::NextNameStamp(const std::string& name) const {
  // Later than anything this node has seen for the name, whatever the clocks say:
  // a local write must win here and on every peer.
  int64_t ts = NowMs();
  if (auto it = names_.find(name); it != names_.end())
    ts = std::max(ts, it->second.timestamp_ms + 1);
  if (auto it = tombstones_.find(name); it != tombstones_.end()) {
    ts = std::max(ts, it->second.first + 1);
  }
  return ts;
}

bool ObjectTable::Replicated(ObjectID id) const {
  auto it = objects_.find(id);
  return it == objects_.end() || !it->second.transient;
}

bool ObjectTable::ApplyNameLocked(const wire::Change& c, JournalBatch* batch) {
  const auto stamp = std::make_pair(static_cast<int64_t>(c.timestamp / 1000000), c.writer);
  auto cur = names_.find(c.name);
  if (cur != names_.end() && stamp < std::make_pair(cur->second.timestamp_ms, cur->second.writer)) {
    return false;  // ours is newer
  }
  auto tomb = tombstones_.find(c.name);
  if (tomb != tombstones_.end() && stamp < tomb->second) return false;  // dropped later
  if (c.op == wire::Op::kNamePut) {
    NameRecord n{c.id, Owner{}, stamp.first, stamp.second};
    if (auto target = objects_.find(c.id); target != objects_.end()) n.owner = target->second.owner;
    if (cur != names_.end() && cur->second.id == n.id && cur->second.writer == n.writer &&
        cur->second.timestamp_ms == n.timestamp_ms) {
      return false;  // already applied
    }
    batch->put_names.emplace_back(c.name, n);
    names_[c.name] = n;
    if (tomb != tombstones_.end()) {
      batch->drop_tombstones.push_back(c.name);
      tombstones_.erase(tomb);
    }
    return true;
  }
  tombstones_[c.name] = stamp;
  batch->put_tombstones.emplace_back(c.name, stamp);
  if (cur == names_.end()) return false;
  batch->drop_names.push_back(c.name);
  names_.erase(cur);
  return true;
}

Result<ObjectRecord> ObjectTable::DecodeRemote(const wire::Change& c) {
  auto r = DecodeRecord(c.record, /*peer=*/true);
  if (!r.ok()) return r.status();
  if (r->id != c.id) {
    return Status::InvalidArgument("record of " + r->id.ToString() + " sent as " + c.id.ToString());
  }
  if (c.id.instance() != c.origin || r->instance != c.origin) {
    return Status::InvalidArgument("instance " + std::to_string(c.origin) + " sent " +
                                   c.id.ToString() + ", made by instance " +
                                   std::to_string(c.id.instance()));
  }
  if (r->transient) {
    return Status::InvalidArgument(c.id.ToString() +
                                   " is transient: only persisted objects replicate");
  }
  for (auto& [field, mid] : r->members) {  // the rule of a local create
    if (mid.instance() != c.origin && !r->global) {
      return Status::InvalidArgument(
          c.id.ToString() + ": member '" + field + "' (" + mid.ToString() + ") lives on instance " +
          std::to_string(mid.instance()) + "; only a global object may have remote members");
    }
  }
  return r;
}

std::vector<Result<ObjectRecord>> ObjectTable::DecodeRemote(
    const std::vector<wire::Change>& changes) {
  std::vector<Result<ObjectRecord>> out;
  out.reserve(changes.size());
  for (const wire::Change& c : changes) {
    out.push_back(c.op == wire::Op::kObjectPut ? DecodeRemote(c)
                                               : Result<ObjectRecord>(ObjectRecord{}));
  }
  return out;
}

void ObjectTable::EraseRemoteLocked(ObjectID id, JournalBatch* batch, Applied* out) {
  if (!EraseLocked(id)) return;
  batch->delete_objects.push_back(id);
  out->objects.push_back(id);
  for (auto it = names_.begin(); it != names_.end();) {
    if (it->second.id == id) {
      batch->drop_names.push_back(it->first);
      out->names.push_back(it->first);
      it = names_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<ObjectTable::Applied> ObjectTable::ApplyRemote(const std::vector<wire::Change>& changes) {
  // Remote changes go to memory as the batch is built. If the journal then refuses
  // the batch, memory keeps them (the error is returned and logged): they are the
  // origin's to repeat, and a restart takes the origin's snapshot again.
  // Records are decoded before the lock is taken: lookups wait for none of it.
  std::vector<Result<ObjectRecord>> decoded = DecodeRemote(changes);
  WriterMutexLock lock(&mu_);
  JournalBatch batch;
  Applied out;
  for (size_t i = 0; i < changes.size(); ++i) {
    const wire::Change& c = changes[i];
    if (c.origin == instance_) {
      out.rejected.push_back("a change from instance " + std::to_string(c.origin) +
                             ", this node's own id");
      continue;
    }
    switch (c.op) {
      case wire::Op::kObjectPut: {
        auto& r = decoded[i];
        if (!r.ok()) {
          out.rejected.push_back(r.status().message());
          break;
        }
        auto cur = objects_.find(r->id);
        if (cur != objects_.end() && cur->second.signature == r->signature &&
            !cur->second.transient) {
          break;  // already here
        }
        if (ReachesLocked(r->members, r->id)) {
          out.rejected.push_back(r->id.ToString() + " would hold itself through its members");
          break;
        }
        batch.put_objects.push_back(*r);
        out.objects.push_back(r->id);
        InsertLocked(std::move(*r));
        break;
      }
      case wire::Op::kObjectDelete:
        if (c.id.instance() != c.origin) {
          out.rejected.push_back("instance " + std::to_string(c.origin) + " deleted " +
                                 c.id.ToString() + ", which it did not make");
          break;
        }
        EraseRemoteLocked(c.id, &batch, &out);
        break;
      case wire::Op::kNamePut:
      case wire::Op::kNameDrop:
        if (c.writer != c.origin) {
          out.rejected.push_back("instance " + std::to_string(c.origin) +
                                 " sent a name written by " + std::to_string(c.writer));
          break;
        }
        if (ApplyNameLocked(c, &batch)) out.names.push_back(c.name);
        break;
    }
  }
  if (!batch.empty()) VY_RETURN_IF_ERROR(journal_->Commit(batch));
  return out;
}

Result<ObjectTable::Applied> ObjectTable::ApplySnapshot(InstanceId origin,
                                                        const std::vector<wire::Change>& records) {
  if (origin == instance_) return Status::InvalidArgument("a snapshot of this node itself");
  std::vector<Result<ObjectRecord>> decoded = DecodeRemote(records);  // before the lock
  WriterMutexLock lock(&mu_);
  JournalBatch batch;
  Applied out;
  std::unordered_set<ObjectID> ids;
  std::unordered_set<std::string> named;
  for (size_t i = 0; i < records.size(); ++i) {
    const wire::Change& c = records[i];
    if (c.origin != origin) {
      out.rejected.push_back("a record of instance " + std::to_string(c.origin) +
                             " in the snapshot of " + std::to_string(origin));
      continue;
    }
    if (c.op == wire::Op::kObjectPut) {
      auto& r = decoded[i];
      if (!r.ok()) {
        out.rejected.push_back(r.status().message());
        continue;
      }
      ids.insert(r->id);
      auto cur = objects_.find(r->id);
      if (cur != objects_.end() && cur->second.signature == r->signature &&
          !cur->second.transient) {
        continue;
      }
      if (ReachesLocked(r->members, r->id)) {
        out.rejected.push_back(r->id.ToString() + " would hold itself through its members");
        continue;
      }
      batch.put_objects.push_back(*r);
      out.objects.push_back(r->id);
      InsertLocked(std::move(*r));
    } else if (c.op == wire::Op::kNamePut || c.op == wire::Op::kNameDrop) {
      if (c.writer != origin) {
        out.rejected.push_back("a name written by " + std::to_string(c.writer) +
                               " in the snapshot of " + std::to_string(origin));
        continue;
      }
      named.insert(c.name);
      if (ApplyNameLocked(c, &batch)) out.names.push_back(c.name);
    } else {
      out.rejected.push_back("a delete in a snapshot");
    }
  }
  // What the origin no longer has: its objects (ids carry the creator in bits
  // 62..48, so they lie in two ranges of the map, without and with the blob bit)...
  std::vector<ObjectID> gone;
  for (uint64_t blob : {uint64_t{0}, uint64_t{1} << 63}) {
    const uint64_t lo = blob | (uint64_t{origin} << 48), hi = lo + (uint64_t{1} << 48);
    for (auto it = objects_.lower_bound(ObjectID(lo)); it != objects_.end() && it->first.raw() < hi;
         ++it) {
      if (!ids.count(it->first)) gone.push_back(it->first);
    }
  }
  for (ObjectID id : gone) EraseRemoteLocked(id, &batch, &out);
  // ...and the names it wrote last.
  for (auto it = names_.begin(); it != names_.end();) {
    if (it->second.writer == origin && !named.count(it->first)) {
      batch.drop_names.push_back(it->first);
      out.names.push_back(it->first);
      it = names_.erase(it);
    } else {
      ++it;
    }
  }
  if (!batch.empty()) VY_RETURN_IF_ERROR(journal_->Commit(batch));
  return out;
}

uint64_t ObjectTable::Snapshot(std::vector<wire::Change>* out) const {
  ReaderMutexLock lock(&mu_);
  // Blobs first (they have no members), then the other objects in id order: an
  // object's members were made before it, so they come first.
  for (uint64_t blob : {uint64_t{1} << 63, uint64_t{0}}) {
    const uint64_t lo = blob | (uint64_t{instance_} << 48), hi = lo + (uint64_t{1} << 48);
    for (auto it = objects_.lower_bound(ObjectID(lo)); it != objects_.end() && it->first.raw() < hi;
         ++it) {
      if (!it->second.transient) out->push_back(ObjectPut(it->second));
    }
  }
  for (auto& [name, n] : names_) {
    if (n.writer == instance_ && Replicated(n.id)) out->push_back(NamePut(name, n));
  }
  for (auto& [name, stamp] : tombstones_) {
    if (stamp.second == instance_) out->push_back(NameDrop(name, stamp.first));
  }
  for (auto& c : *out) {
    c.origin = instance_;
    c.seq = seq_;
  }
  return seq_;
}

}  // namespace vineyard
