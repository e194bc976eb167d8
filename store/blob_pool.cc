#include "store/blob_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "meta/log.h"
#include "store/arena.h"

namespace vineyard {

namespace {
constexpr size_t kChunk = 64;  // files made between two looks at the pool's state
}  // namespace

size_t BlobPool::SizeFor(uint64_t capacity, uint64_t nofile) {
  const uint64_t n = std::min<uint64_t>({2048, capacity / 256 / kPage, nofile / 8});
  return n < 64 ? 0 : static_cast<size_t>(n);  // a small arena keeps every page for payloads
}

BlobPool::BlobPool(Arena* arena, size_t max) : arena_(arena), max_(max) {
  if (max_ == 0) return;
  key_ = arena_->NewKey();
  filler_ = std::thread([this] { Loop(); });
}

BlobPool::~BlobPool() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  if (filler_.joinable()) filler_.join();
  Drain();
}

Status BlobPool::ChargeLocked(size_t files) {
  return arena_->Charge(key_, files * kPage, /*evict=*/false);
}

std::vector<int> BlobPool::Take(size_t n) {
  MutexLock lock(&mu_);
  const size_t k = std::min(n, fds_.size());
  std::vector<int> out(fds_.end() - static_cast<ptrdiff_t>(k), fds_.end());
  fds_.resize(fds_.size() - k);
  if (k > 0) ChargeLocked(fds_.size() + making_).ok();  // shrinking never fails
  return out;
}

void BlobPool::Refill() {
  if (max_ == 0) return;
  {
    MutexLock lock(&mu_);
    if (disabled_ || (want_ && fds_.size() + making_ >= max_)) return;
    want_ = true;
  }
  cv_.Signal();
}

uint64_t BlobPool::Drain() {
  std::vector<int> fds;
  uint64_t freed = 0;
  {
    MutexLock lock(&mu_);
    want_ = false;
    fds.swap(fds_);
    freed = fds.size() * kPage;
    if (max_ > 0) ChargeLocked(making_).ok();
  }
  for (int fd : fds) close(fd);  // an unnamed file: closing it frees its page
  return freed;
}

void BlobPool::Disable() {
  {
    MutexLock lock(&mu_);
    disabled_ = true;
  }
  Drain();
}

size_t BlobPool::ready() const {
  MutexLock lock(&mu_);
  return fds_.size();
}

void BlobPool::Loop() {
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);  // background work
  MutexUniqueLock lock(&mu_);
  for (;;) {
    while (!stopping_ && (!want_ || disabled_ || fds_.size() >= max_)) cv_.Wait(&mu_);
    if (stopping_) return;
    // Only into room nobody needs: a quarter of the arena free, and never evicting.
    const size_t n = std::min(kChunk, max_ - fds_.size());
    const uint64_t cap = arena_->capacity(), used = arena_->used();
    if (used + n * kPage > cap - cap / 4 || !ChargeLocked(fds_.size() + n).ok()) {
      want_ = false;  // full enough: wait for the next batch
      continue;
    }
    making_ = n;
    lock.Unlock();
    std::vector<int> made;
    made.reserve(n);
    Status s;
    for (size_t i = 0; i < n && s.ok(); ++i) {
      auto fd = arena_->CreatePoolFile();
      if (fd.ok()) {
        made.push_back(*fd);
      } else {
        s = fd.status();
      }
    }
    lock.Lock();
    making_ = 0;
    if (!s.ok()) {
      VY_LOG_WARN("blob pool: %s; batches create their files", s.ToString().c_str());
      disabled_ = true;
    }
    if (want_ && !disabled_ && !stopping_) {
      fds_.insert(fds_.end(), made.begin(), made.end());
      made.clear();
    }
    ChargeLocked(fds_.size()).ok();
    if (!made.empty()) {
      lock.Unlock();
      for (int fd : made) close(fd);
      lock.Lock();
    }
  }
}

}  // namespace vineyard
