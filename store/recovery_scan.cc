#include "store/recovery_scan.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "meta/log.h"
#include "store/arena.h"

namespace vineyard {

namespace {
constexpr uint64_t kGone = std::numeric_limits<uint64_t>::max();
}  // namespace

RecoveryScan::RecoveryScan(const Arena* arena, std::function<Sized()> durable)
    : arena_(arena), durable_lister_(std::move(durable)) {}

RecoveryScan::~RecoveryScan() {
  if (thread_.joinable()) thread_.join();
}

void RecoveryScan::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    List();
    StatChunks();
    TakeDurable();  // if Finish has not: the table load outlasted the stats
  });
}

void RecoveryScan::List() {
  std::vector<ObjectID> ids = arena_->ListBlobIds();
  ids_ = std::move(ids);
  sizes_.assign(ids_.size(), kGone);
  MutexLock lock(&mu_);
  listed_ = true;
  cv_.SignalAll();
}

void RecoveryScan::WaitListed() {
  MutexLock lock(&mu_);
  while (!listed_) cv_.Wait(&mu_);
}

void RecoveryScan::StatChunks() {
  const size_t n = ids_.size();
  int dir = -1;  // this thread's own (arena.h: OpenBlobsDir)
  for (;;) {
    const size_t begin = next_.fetch_add(kChunk, std::memory_order_relaxed);
    if (begin >= n) break;
    if (dir < 0 && (dir = arena_->OpenBlobsDir()) < 0) {
      VY_LOG_ERROR("recovery: cannot open the arena's blobs/: %s", strerror(errno));
      next_.store(n);  // every file then counts as gone: its durable copy is reloaded
      break;
    }
    const size_t end = std::min(n, begin + kChunk);
    for (size_t i = begin; i < end; ++i) {
      uint64_t size = 0;
      if (arena_->BlobFileSize(dir, ids_[i], &size)) sizes_[i] = size;
    }
  }
  if (dir >= 0) close(dir);
}

void RecoveryScan::TakeDurable() {
  if (durable_taken_.exchange(true)) return;
  if (durable_lister_) durable_ = durable_lister_();
}

RecoveryScan::Lists RecoveryScan::Finish() {
  const bool threaded = thread_.joinable();
  if (!threaded) List();
  TakeDurable();  // while the thread stats, if it is still at it
  WaitListed();
  StatChunks();
  if (threaded) thread_.join();  // its last chunk, or the durable list
  Lists out;
  out.files.reserve(ids_.size());
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (sizes_[i] != kGone) out.files.emplace_back(ids_[i], sizes_[i]);
  }
  ids_ = {};
  sizes_ = {};
  auto by_id = [](const auto& a, const auto& b) { return a.first < b.first; };
  // readdir's order is the tmpfs's own (creation order: nearly sorted already).
  if (!std::is_sorted(out.files.begin(), out.files.end(), by_id))
    std::sort(out.files.begin(), out.files.end(), by_id);
  out.durable = std::move(durable_);
  if (!std::is_sorted(out.durable.begin(), out.durable.end(), by_id))
    std::sort(out.durable.begin(), out.durable.end(), by_id);
  return out;
}

}  // namespace vineyard
