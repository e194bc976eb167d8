// The reserve (`reserve=SIZE`): arena memory written ahead for the payloads the daemon
// writes itself — remote fetches, reloads from RocksDB, builders' blobs.
//
// Why: on the VM kind this project is measured on, the first write to memory the
// guest has not touched lately runs at ~0.5 GB/s (the host hands freed memory back
// to itself and faults it in again on use), against 20+ GB/s into pages a file
// already holds. Vineyard's answer is `reserve_memory` (pre-touch the whole arena at
// start); here one file of `reserve` bytes is kept written, in huge pages where the
// policy allows, by a background thread at nice 10. A daemon-written payload of
// 2 MiB or more takes it (CreateFill), overwrites it from the start and drops the
// tail, and once that payload is in place the thread writes a new one. The reserve holds zeros only and is never
// visible in the tree; it is charged to the arena like a payload, never evicts
// anything to exist (it waits for room), and is removed at unmount.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "meta/log.h"
#include "store/arena.h"
#include "store/store.h"

namespace vineyard {

namespace {
constexpr uint64_t kReserveKey = 0;             // staging keys start at 1
constexpr uint64_t kReserveMinTake = 2u << 20;  // smaller payloads use fresh pages
constexpr uint64_t kTaking = ~uint64_t{0};       // reserve_taker_ before its key is known
}  // namespace

std::string Store::ReservePath() const { return arena_->dir() + "/reserve"; }

void Store::RemoveReserveFiles() const {
  unlink(ReservePath().c_str());
  unlink((ReservePath() + ".filling").c_str());
}

uint64_t Store::DropReserveLocked() {
  if (!reserve_ready_) return 0;
  reserve_ready_ = false;
  reserve_hold_ = true;  // the room is for the caller, not for a new reserve
  unlink(ReservePath().c_str());
  arena_->Uncharge(kReserveKey);
  return PageRound(opts_.reserve);
}

Result<Store::Upload> Store::CreateFill(uint64_t size) {
  bool take = false;
  uint64_t have = 0;
  {
    MutexLock lock(&mu_);
    if (reserve_ready_ && size >= kReserveMinTake) {
      take = true;
      have = opts_.reserve;
      reserve_ready_ = false;
      reserve_taker_ = kTaking;
      ++counters_.reserve_takes;
    }
  }
  if (take) {
    auto adopted = arena_->AdoptStaging(ReservePath());
    if (adopted.ok()) arena_->MoveCharge(kReserveKey, adopted->first);
    {
      MutexLock lock(&mu_);
      reserve_taker_ = adopted.ok() ? adopted->first : 0;
    }
    cv_.SignalAll();  // the reserver writes the next one once this payload is in place
    if (adopted.ok()) {
      auto [key, fd] = *adopted;
      // Keep what will be overwritten, free the rest at once; beyond the reserve the
      // file grows in fresh (small) pages.
      Status s;
      if (size < have && ftruncate(fd, static_cast<off_t>(size)) != 0) {
        s = Status::FromErrno("fill: shrink the reserve", errno);
      }
      if (s.ok()) s = arena_->Charge(key, size);
      if (s.ok()) return Upload{key, fd, std::min(size, have)};
      close(fd);
      DropUpload(key);
      return s;
    }
    arena_->Uncharge(kReserveKey);
    VY_LOG_WARN("reserve: %s", adopted.status().ToString().c_str());
  }
  auto up = CreateUpload();
  if (!up.ok()) return up.status();
  Status s = ReserveUpload(up->key, size);
  if (!s.ok()) {
    close(up->fd);
    DropUpload(up->key);
    return s;
  }
  return up;
}

void Store::StartReserver() {
  if (opts_.reserve == 0 || reserver_.joinable()) return;
  reserver_ = std::thread([this] { ReserveLoop(); });
}

// Writes `size` zero bytes into `path`, sized first and in 4 MiB pieces so that a
// huge-page policy gives it huge pages. Stops early (false) once `stop` says so.
bool Store::WriteReserve(const std::string& path, uint64_t size) {
  static const std::vector<char> zeros(4u << 20, 0);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    VY_LOG_WARN("reserve: create %s: %s", path.c_str(), strerror(errno));
    return false;
  }
  bool ok = ftruncate(fd, static_cast<off_t>(size)) == 0;
  for (uint64_t off = 0; ok && off < size; off += zeros.size()) {
    {
      MutexLock lock(&mu_);
      if (stopping_) ok = false;
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), size - off));
    if (ok) ok = pwrite(fd, zeros.data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n);
  }
  close(fd);
  return ok;
}

void Store::ReserveLoop() {
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);  // background work
  const std::string path = ReservePath(), filling = path + ".filling";
  MutexUniqueLock lock(&mu_);
  for (;;) {
    while (!stopping_ && reserve_ready_) cv_.Wait(&mu_);
    if (stopping_) break;
    if (reserve_hold_) {  // dropped to make room: let the caller take it first
      reserve_hold_ = false;
      const auto until = CondVar::Deadline(std::chrono::seconds(1));
      while (!stopping_ && cv_.WaitUntil(&mu_, until)) {
      }
      continue;
    }
    if (reserve_taker_ != 0) {
      // Taken: the payload going into it (a copy on both cores, a fetch) finishes
      // first; until it is sealed or dropped, writing the next one would compete.
      if (reserve_taker_ == kTaking || arena_->Charged(reserve_taker_)) {
        const auto until = CondVar::Deadline(std::chrono::milliseconds(10));
        while (!stopping_ && cv_.WaitUntil(&mu_, until)) {
        }
        continue;
      }
      reserve_taker_ = 0;
    }
    lock.Unlock();
    // Only into room nobody else needs: a reserve never evicts a payload.
    bool room = ArenaFree() >= opts_.reserve &&
                arena_->Charge(kReserveKey, opts_.reserve, /*evict=*/false).ok();
    bool written = room && WriteReserve(filling, opts_.reserve) &&
                   rename(filling.c_str(), path.c_str()) == 0;
    lock.Lock();
    if (written) {
      reserve_ready_ = true;
      continue;
    }
    unlink(filling.c_str());
    if (room) arena_->Uncharge(kReserveKey);
    if (stopping_) break;
    cv_.WaitFor(&mu_, std::chrono::seconds(1));  // no room yet: look again later
  }
  lock.Unlock();
  RemoveReserveFiles();
  arena_->Uncharge(kReserveKey);
}

}  // namespace vineyard
