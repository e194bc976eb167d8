// The payloads' residency: the LRU, eviction, and the pins that open blobs hold.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/log.h"
#include "store/arena.h"
#include "store/state_db.h"
#include "store/store.h"

namespace vineyard {

void Store::LruInsert(ObjectID id, Blob& b) {
  if (b.in_lru) lru_.erase(b.lru);
  b.lru = lru_.insert(lru_.end(), id);
  b.in_lru = true;
}

void Store::Tally(const Blob& b, int sign) {
  // Unsigned arithmetic: adding 2^64 - 1 is subtracting one.
  const uint64_t one = sign > 0 ? 1 : ~uint64_t{0};
  if (b.resident) counters_.resident += one;
  if (b.durable) counters_.durable += one;
  if (b.cached) counters_.cached += one;
}

void Store::LruErase(Blob& b) {
  if (!b.in_lru) return;
  lru_.erase(b.lru);
  b.in_lru = false;
}

uint64_t Store::DetachPayloadLocked(ObjectID id) {
  const uint64_t key = arena_->NewKey();
  arena_->MoveCharge(id.raw(), key);
  if (rename(arena_->BlobPath(id).c_str(), arena_->StagingPath(key).c_str()) != 0) {
    arena_->Uncharge(key);
    return 0;
  }
  return key;
}

void Store::DropDetached(uint64_t key) {
  if (key == 0) return;
  unlink(arena_->StagingPath(key).c_str());
  arena_->Uncharge(key);
}

uint64_t Store::Evict(uint64_t bytes) {
  std::vector<uint64_t> trash;
  uint64_t freed = 0;
  {
    MutexLock lock(&mu_);
    freed += DropReserveLocked();  // written-ahead memory goes before any payload
    for (auto it = lru_.begin(); it != lru_.end() && freed < bytes;) {
      ObjectID id = *it++;
      Blob& b = blobs_.at(id);
      if (!Evictable(b)) continue;
      LruErase(b);
      Tally(b, -1);
      b.resident = false;
      if (drop_hook_) drop_hook_(id);
      freed += PageRound(b.size);
      trash.push_back(DetachPayloadLocked(id));
      ++counters_.evictions;
      VY_LOG_DEBUG("evicted %s from the arena", id.ToString().c_str());
      if (b.cached) {
        blobs_.erase(id);  // fetched again on the next open
      } else {
        Tally(b, +1);
      }
    }
  }
  for (uint64_t key : trash) DropDetached(key);  // frees the pages, outside the lock
  return freed;
}

Result<int> Store::OpenBlob(ObjectID id) {
  VY_RETURN_IF_ERROR(PinBlob(id));
  int fd = open(arena_->BlobPath(id).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    CloseBlob(id);
    return Status::FromErrno("open payload of " + id.ToString(), err);
  }
  return fd;
}

Status Store::PinBlob(ObjectID id) {
  MutexUniqueLock lock(&mu_);
  auto it = blobs_.find(id);
  while (it == blobs_.end()) {
    if (!remote_.fetch || id.instance() == instance_) {
      return Status::NotFound("payload of " + id.ToString() + " is not here");
    }
    lock.Unlock();
    auto size = remote_.size(id);
    if (!size.ok()) return size.status();
    VY_RETURN_IF_ERROR(FetchRemote(id, *size));
    lock.Lock();
    it = blobs_.find(id);
  }
  // (Look the entry up again after waiting: an insert may have rehashed the map.)
  auto settled = [&]() EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto cur = blobs_.find(id);
    return cur == blobs_.end() || !cur->second.loading;
  };
  while (!settled()) cv_.Wait(&mu_);
  it = blobs_.find(id);
  if (it == blobs_.end()) return Status::NotFound("payload of " + id.ToString() + " is gone");
  Blob& b = it->second;
  ++b.pins;
  LruErase(b);
  if (!b.resident) {
    b.loading = true;
    uint64_t size = b.size;
    lock.Unlock();
    // Reload from RocksDB into a staging file, then move it into place.
    auto fill = CreateFill(size);
    Status s = fill.status();
    if (s.ok()) {
      std::string from = arena_->StagingPath(fill->key), path = arena_->BlobPath(id);
      s = db_ ? db_->ReadPayload(id, fill->fd, size) : Status::NotFound("no state");
      if (s.ok() && ftruncate(fill->fd, static_cast<off_t>(size)) != 0) {
        s = Status::FromErrno("reload: truncate", errno);
      }
      close(fill->fd);
      if (s.ok() && (chmod(from.c_str(), 0400) != 0 || rename(from.c_str(), path.c_str()) != 0)) {
        s = Status::FromErrno("reload: move into place", errno);
      }
      if (s.ok()) {
        arena_->MoveCharge(fill->key, id.raw());
      } else {
        DropUpload(fill->key);
      }
    }
    lock.Lock();
    b.loading = false;
    cv_.SignalAll();
    if (!s.ok()) {
      --b.pins;
      if (Evictable(b)) LruInsert(id, b);
      return s;
    }
    Tally(b, -1);
    b.resident = true;
    Tally(b, +1);
    ++counters_.reloads;
    QueueCollapse(id, size);
  }
  return Status::OK();
}

void Store::CloseBlob(ObjectID id) {
  MutexLock lock(&mu_);
  UnpinLocked(id);
}

void Store::UnpinLocked(ObjectID id) {
  auto it = blobs_.find(id);
  if (it == blobs_.end()) return;
  Blob& b = it->second;
  if (b.pins > 0) --b.pins;
  if (Evictable(b)) LruInsert(id, b);  // most recently used
}

Status Store::SyncBlob(ObjectID id) {
  if (!db_ || opts_.durability == Durability::kNone) return Status::OK();
  MutexLock lock(&mu_);
  auto done = [&]() EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = blobs_.find(id);
    return stopping_ || it == blobs_.end() || it->second.durable || it->second.failed;
  };
  while (!done()) cv_.Wait(&mu_);
  auto it = blobs_.find(id);
  if (it == blobs_.end()) return Status::NotFound("payload of " + id.ToString() + " is gone");
  if (it->second.failed) return Status::IOError("durable copy of " + id.ToString() + " failed");
  if (!it->second.durable) return Status::IOError("store is shutting down");
  return Status::OK();
}

void Store::DeleteBlob(ObjectID id) {
  uint64_t trash = 0;
  {
    MutexLock lock(&mu_);
    auto it = blobs_.find(id);
    if (it != blobs_.end()) {
      if (drop_hook_) drop_hook_(id);
      LruErase(it->second);
      Tally(it->second, -1);
      blobs_.erase(it);
    }
    trash = DetachPayloadLocked(id);
  }
  cv_.SignalAll();
  DropDetached(trash);
  if (db_) {
    Status s = db_->DeletePayload(id);
    if (!s.ok()) VY_LOG_WARN("delete payload %s: %s", id.ToString().c_str(), s.ToString().c_str());
  }
}

bool Store::IsResident(ObjectID id) const {
  MutexLock lock(&mu_);
  auto it = blobs_.find(id);
  return it != blobs_.end() && it->second.resident;
}
}  // namespace vineyard
