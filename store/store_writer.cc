// The durable writer: the background thread that copies sealed payloads into RocksDB, and the
// store's statistics.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "meta/log.h"
#include "store/arena.h"
#include "store/blob_pool.h"
#include "store/state_db.h"
#include "store/store.h"

namespace vineyard {

namespace {

// Reads `size` bytes of `fd` from offset 0.
Status ReadAll(int fd, char* buf, uint64_t size, const std::string& what) {
  uint64_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, buf + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno(what, n < 0 ? errno : EIO);
    got += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

}  // namespace

void Store::WriterLoop() {
  // Background work: let the request threads have the CPU first.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
  MutexUniqueLock lock(&mu_);
  for (;;) {
    // Drain the queue before honouring stop: a clean unmount leaves nothing behind.
    writer_idle_ = true;
    while (!stopping_ && queue_.empty()) writer_cv_.Wait(&mu_);
    writer_idle_ = false;
    if (queue_.empty()) return;
    // Let the seals of the next moment join this write: one wake-up and one RocksDB
    // write for many small blobs instead of one each (seals do not wake us meanwhile).
    if (!stopping_ && queue_.size() < kWriterBatch) {
      const auto until = CondVar::Deadline(kWriterGather);
      while (!stopping_ && writer_cv_.WaitUntil(&mu_, until)) {
      }
    }
    std::vector<DurableJob> batch;
    std::vector<int> stale;  // descriptors of blobs deleted (or made durable) meanwhile
    while (!queue_.empty() && batch.size() < kWriterBatch) {
      ObjectID id = queue_.front();
      queue_.pop_front();
      int fd = -1;
      if (auto f = writer_fds_.find(id); f != writer_fds_.end()) {
        fd = f->second;
        writer_fds_.erase(f);
      }
      auto it = blobs_.find(id);
      if (it == blobs_.end() || it->second.durable) {
        if (fd >= 0) stale.push_back(fd);
        continue;
      }
      ++it->second.pins;  // keep it resident while copying
      batch.push_back({id, it->second.size, fd});
    }
    lock.Unlock();
    for (int fd : stale) close(fd);
    std::vector<Status> results = WriteDurable(batch);
    lock.Lock();
    for (size_t i = 0; i < batch.size(); ++i) FinishDurable(batch[i].id, results[i]);
    cv_.SignalAll();
  }
}

std::vector<Status> Store::WriteDurable(const std::vector<DurableJob>& batch) {
  std::vector<Status> results(batch.size());
  std::vector<StateDb::SmallPayload> small;
  std::vector<size_t> small_at;
  small.reserve(batch.size());
  small_at.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const ObjectID id = batch[i].id;
    const uint64_t size = batch[i].size;
    // A batch seal's descriptor when it kept one (no path walk), else by name.
    int fd = batch[i].fd;
    if (fd < 0) fd = open(arena_->BlobPath(id).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      results[i] = Status::FromErrno("open payload", errno);
      continue;
    }
    if (size <= StateDb::kChunk) {
      StateDb::SmallPayload p{id, std::string(size, '\0')};
      results[i] = ReadAll(fd, p.bytes.data(), size, "read payload of " + id.ToString());
      if (results[i].ok()) {
        small.push_back(std::move(p));
        small_at.push_back(i);
      }
    } else {
      results[i] = db_->PutPayload(id, fd, size, /*sync=*/false);
    }
    close(fd);
  }
  if (!small.empty()) {
    Status s = db_->PutSmallPayloads(small, /*sync=*/false);
    for (size_t i : small_at) results[i] = s;
  }
  return results;
}

void Store::FinishDurable(ObjectID id, const Status& s) {
  auto it = blobs_.find(id);
  if (it == blobs_.end()) {
    // Deleted while being copied: drop what was written.
    mu_.Unlock();
    db_->DeletePayload(id).ok();
    mu_.Lock();
    return;
  }
  --it->second.pins;
  if (s.ok()) {
    Tally(it->second, -1);
    it->second.durable = true;
    Tally(it->second, +1);
    if (it->second.pins == 0 && it->second.resident) LruInsert(id, it->second);
  } else {
    it->second.failed = true;
    ++counters_.durable_errors;
    VY_LOG_ERROR("durable copy of %s failed: %s", id.ToString().c_str(), s.ToString().c_str());
  }
}

Store::Stats Store::stats() const {
  MutexLock lock(&mu_);
  Stats s = counters_;
  s.capacity = arena_->capacity();
  s.used = arena_->used();
  // What the tmpfs itself holds counts too: uploads written through passthrough (a
  // failed one keeps its memory until removed) are charged only when sealed.
  const uint64_t free = ArenaFree();
  if (s.capacity > free && s.capacity - free > s.used) s.used = s.capacity - free;
  s.pending_durable = queue_.size();
  s.reserve_ready = reserve_ready_ ? opts_.reserve : 0;
  s.pending_collapse = collapse_queue_.size() + (collapsing_ ? 1 : 0);
  s.pool_files = pool_ ? pool_->ready() : 0;
  return s;
}

}  // namespace vineyard
