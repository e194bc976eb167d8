// Store::CreateBlobs: the payload files of a batch upload (fs/batch.cc), made with as
// few system calls per blob as the arena allows. Since the third round (README
// "Per-object cost") a small blob takes a ready file of the BlobPool (store/blob_pool.h:
// pwrite into its allocated page, linkat to blobs/<id>) and the descriptor goes on to
// the durable writer instead of being closed here; without a pool file it is created
// as below. A blob of CopyBlob costs a staging
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

#include "meta/log.h"
#include "store/arena.h"
#include "store/blob_pool.h"
#include "store/store.h"

namespace vineyard {

namespace {

// Blobs from this size on take CopyBlob's path (the reserve, copies on two cores).
constexpr uint64_t kSmallBlob = 2u << 20;

// Writes at offset 0 on (a pool file's offset stays 0: pwrite, not write).
Status PWriteAll(int fd, const char* data, uint64_t len) {
  for (uint64_t done = 0; done < len;) {
    ssize_t w = pwrite(fd, data + done, std::min<uint64_t>(len - done, 1u << 30),
                       static_cast<off_t>(done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::FromErrno("write payload", w < 0 ? errno : EIO);
    done += static_cast<uint64_t>(w);
  }
  return Status::OK();
}

Status CopyRange(int src, uint64_t from, int dst, uint64_t len) {
  loff_t in = static_cast<loff_t>(from), out = 0;
  for (uint64_t left = len; left > 0;) {
    ssize_t c = copy_file_range(src, &in, dst, &out, left, 0);
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
    // MAP_POPULATE: the upload's pages mapped in one call, not a fault per page.
    addr = mmap(nullptr, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd,
                static_cast<off_t>(lo - skew));
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
  size_t nonempty = 0;
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
      ++nonempty;
      lo = std::min(lo, b.offset);
      hi = std::max(hi, b.offset + b.size);
    }
  }
  if (small.empty()) return Status::OK();
  // Ready files for the non-empty ones (their pages' charge moves to the batch's).
  std::vector<int> pooled = pool_->Take(nonempty);
  const uint64_t key = arena_->NewKey();
  Status s = arena_->Charge(key, charge);  // evicts if it must, once for all
  std::vector<std::pair<ObjectID, uint64_t>> charged;
  std::vector<int> fds;  // of `charged`, open for the durable writer
  if (s.ok()) s = WriteSmallBlobs(src, small, lo, hi, &pooled, &charged, &fds, each);
  for (int fd : pooled) close(fd);  // left over by a failure: unnamed, so freed
  arena_->SplitCharge(key, charged);  // made blobs own their pages; the rest is released
  std::vector<int> to_close;
  {
    MutexLock lock(&mu_);
    blobs_.reserve(blobs_.size() + charged.size());
    const bool queue = db_ && opts_.durability == Durability::kAsync;
    for (size_t i = 0; i < charged.size(); ++i) {
      auto [id, size] = charged[i];
      Blob& b = blobs_[id];
      Tally(b, -1);
      b.size = size;
      b.resident = true;
      Tally(b, +1);
      if (queue) queue_.push_back(id);
      if (fds[i] < 0) {
        // closed already (over the cap above)
      } else if (queue && writer_fds_.size() < writer_fds_max_) {
        writer_fds_.emplace(id, fds[i]);
      } else {
        to_close.push_back(fds[i]);
      }
      made->push_back(id);
    }
  }
  for (int fd : to_close) close(fd);
  pool_->Refill();  // the pool fills up again while the next upload is written
  return s;
}

Status Store::WriteSmallBlobs(int src, const std::vector<const BlobRange*>& small, uint64_t lo,
                              uint64_t hi, std::vector<int>* pooled,
                              std::vector<std::pair<ObjectID, uint64_t>>* charged,
                              std::vector<int>* fds, const std::function<void()>& each) {
  const Mapping from(src, lo, hi);
  charged->reserve(small.size());
  fds->reserve(small.size());
  for (const BlobRange* b : small) {
    int fd = -1;
    if (b->size > 0 && !pooled->empty()) {
      // A pool file: its page is there; write, then give it its name.
      fd = pooled->back();
      pooled->pop_back();
      Status s = from.base ? PWriteAll(fd, from.base + (b->offset - lo), b->size)
                           : CopyRange(src, b->offset, fd, b->size);
      if (!s.ok()) {
        close(fd);
        return s;
      }
      s = arena_->LinkBlobFile(fd, b->id);
      if (!s.ok()) {
        close(fd);
        if (s.sys_errno() == EEXIST) return s;
        VY_LOG_WARN("blob pool: %s; batches create their files", s.ToString().c_str());
        pool_->Disable();  // no linkat here: create the files from now on
        for (int p : *pooled) close(p);
        pooled->clear();
        fd = -1;
      }
    }
    if (fd < 0) {
      auto made = arena_->CreateBlobFile(b->id);
      if (!made.ok()) return made.status();
      fd = *made;
      Status s;
      if (b->size > 0) {
        s = from.base ? PWriteAll(fd, from.base + (b->offset - lo), b->size)
                      : CopyRange(src, b->offset, fd, b->size);
      }
      if (!s.ok()) {
        close(fd);
        arena_->RemoveBlobFile(b->id);
        return s;
      }
    }
    charged->emplace_back(b->id, b->size);
    // At most writer_fds_max_ stay open for the durable writer (which opens the others
    // by name): a batch of more small blobs than RLIMIT_NOFILE would fail with EMFILE.
    if (fds->size() >= writer_fds_max_) {
      close(fd);
      fd = -1;
    }
    fds->push_back(fd);
    if (each) each();
  }
  return Status::OK();
}

}  // namespace vineyard
