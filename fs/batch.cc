// new/<x>.batch: many objects in one upload, all or nothing (meta/batch.h has the
// format). The seal reads the manifest, takes ids for every entry, copies each blob
// entry's bytes into its own arena file, then commits every record in one journal
// batch (ObjectTable::CreateBatch). A failure at any step removes the arena files
// made so far; a crash before the commit leaves them as orphans, which recovery
// removes (Store::Recover), so a restart shows the whole batch or none of it.
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

// The manifest: the bytes before the first NUL (or the whole file). Sets
// *payload_at to where the payload starts.
Status ReadManifest(Upload* up, uint64_t size, std::string* out, uint64_t* payload_at)
    EXCLUSIVE_LOCKS_REQUIRED(up->mu) {
  out->clear();
  char buf[1 << 16];
  uint64_t at = 0;
  while (at < size) {
    if (at > kMaxBatchManifestBytes) {
      return Status::TooLarge("batch manifest: no NUL byte in the first 16 MiB (the manifest " +
                              std::string("is at most 16 MiB, then a NUL, then the payload)"));
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof buf, size - at));
    ssize_t n = pread(up->fd, buf, want, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno("read new/" + up->name, n < 0 ? errno : EIO);
    if (const void* nul = memchr(buf, '\0', static_cast<size_t>(n))) {
      const size_t len = static_cast<size_t>(static_cast<const char*>(nul) - buf);
      out->append(buf, len);
      *payload_at = at + len + 1;
      return Status::OK();
    }
    out->append(buf, static_cast<size_t>(n));
    at += static_cast<uint64_t>(n);
  }
  *payload_at = size;
  return Status::OK();
}

// Test hook: VINEYARDFS_TEST_KILL_IN_BATCH=N makes the daemon SIGKILL itself after the
// N-th blob of a batch is in the arena, before the commit (tests of the all-or-nothing
// rule across a crash).
long TestKillAfterBlobs() {
  static const long n = [] {
    const char* v = std::getenv("VINEYARDFS_TEST_KILL_IN_BATCH");
    return v ? std::atol(v) : 0L;
  }();
  return n;
}

}  // namespace

Status CheckBatch(Upload* up, uint64_t size) {
  std::string manifest;
  uint64_t payload_at = 0;
  VY_RETURN_IF_ERROR(ReadManifest(up, size, &manifest, &payload_at));
  return ParseBatch(manifest, size - payload_at).status();
}

Result<ObjectID> SealBatch(FsState* fs, Upload* up, uint64_t size) {
  auto cpu_us = [] {  // this thread's CPU time: the load does not distort it
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
  };
  const long t0 = cpu_us();
  std::string manifest;
  uint64_t payload_at = 0;
  VY_RETURN_IF_ERROR(ReadManifest(up, size, &manifest, &payload_at));
  auto batch = ParseBatch(manifest, size - payload_at, [fs](const std::vector<bool>& blob) {
    return fs->objects.NewIds(blob);
  });
  if (!batch.ok()) return batch.status();
  // With `-d`: this phase here, the others from the facade (README "Per-object cost").
  VY_LOG_DEBUG("batch of %zu entries: read+parse %ld us", batch->entries.size(), cpu_us() - t0);
  auto after_blob = [](long blobs) {
    if (blobs == TestKillAfterBlobs()) kill(getpid(), SIGKILL);
  };
  return fs->objects.SealBatch(up->key, up->fd, payload_at, std::move(*batch), up->owner,
                               after_blob);
}

}  // namespace vineyard
