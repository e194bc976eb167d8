// Store::CreateBlobs: the payload files of a batch upload (fs/batch.cc), made with as
// few system calls per blob as the arena allows. A blob of CopyBlob costs a staging
// file (openat), a copy (copy_file_range), close, rename to blobs/<id>, chmod 0400 and
// four charge updates under the arena's lock; here a small blob is openat of
// blobs/<id> (O_EXCL, mode 0400) on a held directory fd, one write from a mapping of
// the upload, and close, with one charge and one lock for the whole batch. The result
// is the same as CopyBlob's: each blob its own read-only file at its final name,
// charged to its id, queued for the durable writer. A crash before the batch's
// commit leaves files that no record owns: recovery removes them (Store::Recover).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "store/arena.h"
#include "store/store.h"

namespace vineyard {

namespace {

// Blobs from this size on take CopyBlob's path (the reserve, copies on two cores).
constexpr uint64_t kSmallBlob = 2u << 20;

Status WriteAll(int fd, const char* data, uint64_t len) {
  for (uint64_t done = 0; done < len;) {
    ssize_t w = write(fd, data + done, std::min<uint64_t>(len - done, 1u << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::FromErrno("write payload", w < 0 ? errno : EIO);
    done += static_cast<uint64_t>(w);
  }
  return Status::OK();
}

Status CopyRange(int src, uint64_t from, int dst, uint64_t len) {
  loff_t in = static_cast<loff_t>(from);
  for (uint64_t left = len; left > 0;) {
    ssize_t c = copy_file_range(src, &in, dst, nullptr, left, 0);
    if (c < 0 && errno == EINTR) continue;
    if (c <= 0) return Status::FromErrno("copy payload", c < 0 ? errno : EIO);
    left -= static_cast<uint64_t>(c);
  }
  return Status::OK();
}

// A read-only mapping of [lo, hi) of `fd` (page-aligned at its start), or none.
struct Mapping {
  const char* base = nullptr;  // the byte at file offset `lo`
  void* addr = MAP_FAILED;
  size_t len = 0;
  Mapping(int fd, uint64_t lo, uint64_t hi) {
    if (hi <= lo) return;
    const uint64_t skew = lo & 4095;
    len = static_cast<size_t>(hi - lo + skew);
    addr = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(lo - skew));
    if (addr != MAP_FAILED) base = static_cast<const char*>(addr) + skew;
  }
  ~Mapping() {
    if (addr != MAP_FAILED) munmap(addr, len);
  }
};

}  // namespace

Status Store::CreateBlobs(int src, const std::vector<BlobRange>& blobs,
                          std::vector<ObjectID>* made, const std::function<void()>& each) {
  // Large blobs, and every blob under durability=sync (its copy is written before
  // the seal returns), take CopyBlob's path.
  const bool sync = db_ && opts_.durability == Durability::kSync;
  std::vector<const BlobRange*> small;
  uint64_t charge = 0, lo = UINT64_MAX, hi = 0;
  for (const BlobRange& b : blobs) {
    if (sync || b.size >= kSmallBlob) {
      VY_RETURN_IF_ERROR(CopyBlob(src, b.offset, b.size, b.id, /*wake_writer=*/false));
      made->push_back(b.id);
      if (each) each();
      continue;
    }
    small.push_back(&b);
    charge += PageRound(b.size);
    if (b.size > 0) {
      lo = std::min(lo, b.offset);
      hi = std::max(hi, b.offset + b.size);
    }
  }
  if (small.empty()) return Status::OK();
  const uint64_t key = arena_->NewKey();
  VY_RETURN_IF_ERROR(arena_->Charge(key, charge));  // evicts if it must, once for all
  const Mapping from(src, lo, hi);
  std::vector<std::pair<ObjectID, uint64_t>> charged;
  charged.reserve(small.size());
  Status s;
  for (const BlobRange* b : small) {
    auto fd = arena_->CreateBlobFile(b->id);
    if (!fd.ok()) {
      s = fd.status();
      break;
    }
    if (b->size > 0) {
      s = from.base ? WriteAll(*fd, from.base + (b->offset - lo), b->size)
                    : CopyRange(src, b->offset, *fd, b->size);
    }
    close(*fd);
    if (!s.ok()) {
      arena_->RemoveBlobFile(b->id);
      break;
    }
    charged.emplace_back(b->id, b->size);
    if (each) each();
  }
  arena_->SplitCharge(key, charged);  // made blobs own their pages; the rest is released
  {
    MutexLock lock(&mu_);
    blobs_.reserve(blobs_.size() + charged.size());
    const bool queue = db_ && opts_.durability == Durability::kAsync;
    for (auto& [id, size] : charged) {
      Blob& b = blobs_[id];
      Tally(b, -1);
      b.size = size;
      b.resident = true;
      Tally(b, +1);
      if (queue) queue_.push_back(id);
      made->push_back(id);
    }
  }
  return s;
}

}  // namespace vineyard
