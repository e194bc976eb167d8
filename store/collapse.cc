// Huge pages for payloads. The arena tmpfs is mounted with huge=within_size (chosen by
// measurement, see README): a small blob costs small pages, not a 2 MiB page each.
// But files written in pieces (1 MiB writes) never qualify for huge pages under that
// policy, since no single write covers a whole 2 MiB extent. So, once a blob is sealed
// (or reloaded), this thread collapses its full 2 MiB extents into huge pages with
// MADV_COLLAPSE: mapped readers then take one fault per 2 MiB instead of 512.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "meta/log.h"
#include "store/arena.h"
#include "store/store.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

namespace vineyard {

namespace {

constexpr uint64_t kHugePage = 2u << 20;

// Collapses the whole 2 MiB extents of the file at `path` (size bytes).
Status CollapseFile(const std::string& path, uint64_t size) {
  const uint64_t len = size & ~(kHugePage - 1);
  if (len == 0) return Status::OK();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  // MADV_COLLAPSE needs the mapping aligned to 2 MiB in memory as in the file:
  // reserve len + 2 MiB of address space and map the file at an aligned spot in it.
  void* reserve = mmap(nullptr, len + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (reserve == MAP_FAILED) {
    close(fd);
    return Status::FromErrno("reserve address space", errno);
  }
  auto base = (reinterpret_cast<uintptr_t>(reserve) + kHugePage - 1) & ~(kHugePage - 1);
  void* p = mmap(reinterpret_cast<void*>(base), len, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  Status s;
  if (p == MAP_FAILED) {
    s = Status::FromErrno("map " + path, errno);
  } else if (madvise(p, len, MADV_COLLAPSE) != 0) {
    s = Status::FromErrno("MADV_COLLAPSE " + path, errno);
  }
  munmap(reserve, len + kHugePage);
  close(fd);
  return s;
}

}  // namespace

void Store::QueueCollapse(ObjectID id, uint64_t size) {
  if (!collapse_ || size < kHugePage) return;
  collapse_queue_.push_back(id);
  collapse_cv_.Signal();
}

void Store::CollapseLoop() {
  // Background work: request threads first.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
  MutexUniqueLock lock(&mu_);
  for (;;) {
    while (!stopping_ && collapse_queue_.empty()) collapse_cv_.Wait(&mu_);
    if (stopping_) return;
    ObjectID id = collapse_queue_.front();
    collapse_queue_.pop_front();
    auto it = blobs_.find(id);
    if (it == blobs_.end() || !it->second.resident || it->second.loading) continue;
    ++it->second.pins;  // not evicted while collapsing
    LruErase(it->second);
    const uint64_t size = it->second.size;
    collapsing_ = true;
    lock.Unlock();
    Status s = CollapseFile(arena_->BlobPath(id), size);
    lock.Lock();
    collapsing_ = false;
    UnpinLocked(id);
    if (s.ok()) {
      ++counters_.collapsed;
    } else {
      VY_LOG_DEBUG("huge pages for %s: %s", id.ToString().c_str(), s.ToString().c_str());
    }
    cv_.SignalAll();
  }
}

}  // namespace vineyard
