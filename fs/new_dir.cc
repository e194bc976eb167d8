// new/ as the user lists it: uploads, the links sealed uploads left (until new_ttl),
// and a read-only <file>.error beside each upload whose seal failed, so that a failure
// shows in `ls new/` without reading xattrs (README: "Failed uploads").
#include <algorithm>
#include <ctime>

#include "fs/ops.h"

namespace vineyard {

namespace {

constexpr char kErrorSuffix[] = ".error";
constexpr size_t kErrorSuffixLen = sizeof kErrorSuffix - 1;

double SecondsSince(const timespec& t) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec - t.tv_sec) + (now.tv_nsec - t.tv_nsec) / 1e9;
}

bool Failed(const Upload& up) EXCLUSIVE_LOCKS_REQUIRED(up.mu) {
  return !up.error.empty() && !up.sealed.valid() && !up.removed;
}

}  // namespace

double LinkCacheSeconds(FsState* fs, const Upload& up) {
  if (fs->opts.new_ttl <= 0) return fs->opts.sealed_timeout;
  return std::clamp(fs->opts.new_ttl - SecondsSince(up.sealed_at), 0.0, fs->opts.sealed_timeout);
}

bool ExpireLink(FsState* fs, const std::shared_ptr<Upload>& up) {
  if (!up->sealed.valid() || fs->opts.new_ttl <= 0 || up->opens > 0) return false;
  if (SecondsSince(up->sealed_at) < fs->opts.new_ttl) return false;
  // NewDir::mu_ comes after Upload::mu in the lock order; Remove takes it alone.
  if (fs->uploads.Find(up->name) == up) fs->uploads.Remove(up->name);
  up->removed = true;
  RetireIfDone(fs, up.get());
  fs->notifier.InvalEntry(InodeTable::FixedIno(Kind::kNew), up->name);
  ++fs->counters.links_expired;
  return true;
}

void ExpireOldLinks(FsState* fs) {
  // Per create, up to 8 live entries (and NewDir::kMaxDropped gone ones) looked at:
  // more than the one it adds, so the order cycles through new/ and keeps up with it.
  constexpr size_t kStep = 8;
  auto oldest = fs->uploads.TakeOldest(kStep);
  fs->counters.expiry_steps += oldest.size();
  std::vector<uint64_t> back;
  for (auto& up : oldest) {
    MutexLock lock(&up->mu);
    // Not expired (within new_ttl, open, still written, failed): to the back.
    if (!ExpireLink(fs, up)) back.push_back(up->serial);
  }
  fs->uploads.PutBack(back);
}

std::vector<std::string> ListNew(FsState* fs) {
  auto entries = fs->uploads.List();
  std::vector<std::string> out;
  out.reserve(entries.size());
  std::vector<std::string> errors;
  for (auto& [name, up] : entries) {
    MutexLock lock(&up->mu);
    if (ExpireLink(fs, up)) continue;
    out.push_back(name);
    if (Failed(*up)) errors.push_back(name + kErrorSuffix);
  }
  for (auto& e : errors) {
    if (!fs->uploads.Find(e)) out.push_back(std::move(e));
  }
  return out;
}

std::shared_ptr<Upload> FailedUploadFor(FsState* fs, const std::string& error_name) {
  if (error_name.size() <= kErrorSuffixLen ||
      error_name.compare(error_name.size() - kErrorSuffixLen, kErrorSuffixLen, kErrorSuffix) != 0) {
    return nullptr;
  }
  auto up = fs->uploads.Find(error_name.substr(0, error_name.size() - kErrorSuffixLen));
  if (!up) return nullptr;
  MutexLock lock(&up->mu);
  return Failed(*up) ? up : nullptr;
}

}  // namespace vineyard
