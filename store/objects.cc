#include "store/objects.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include <cerrno>
#include <chrono>

#include "meta/log.h"
#include "store/arena.h"

namespace vineyard {

namespace {

// This thread's CPU time in microseconds.
long ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

// Seconds since `t`, which moves to now (the steps of loading the state, logged).
double SecondsSince(std::chrono::steady_clock::time_point& t) {
  auto now = std::chrono::steady_clock::now();
  double d = std::chrono::duration<double>(now - t).count();
  t = now;
  return d;
}

}  // namespace

// ---- Recovery at mount ------------------------------------------------------------

Result<std::unique_ptr<ObjectStore>> ObjectStore::Open(const StoreOptions& opts,
                                                       InstanceId* instance) {
  auto t = std::chrono::steady_clock::now();
  auto store = Store::Open(opts, instance);
  if (!store.ok()) return store.status();
  const double open_s = SecondsSince(t);
  std::unique_ptr<ObjectStore> os(new ObjectStore());
  os->own_store_ = std::move(*store);
  os->store_ = os->own_store_.get();
  os->store_->StartRecoveryScan();  // overlaps the table's load
  os->own_table_ = std::make_unique<ObjectTable>(*instance, os->store_->journal());
  os->table_ = os->own_table_.get();
  std::vector<std::string> warnings;
  Status s = os->table_->Load(&warnings);
  const double load_s = SecondsSince(t);
  if (!s.ok()) return Status::IOError("loading the object table: " + s.ToString());
  for (auto& w : warnings) VY_LOG_WARN("recovery: %s", w.c_str());
  VY_RETURN_IF_ERROR(os->RecoverPayloads(*instance));
  const double recover_s = SecondsSince(t);
  ObjectTable::Counts counts = os->table_->counts();
  VY_LOG_INFO("instance %u: %llu objects, %llu names recovered (RocksDB open %.3f s, table %.3f s, "
              "payloads %.3f s)",
              *instance, static_cast<unsigned long long>(counts.objects),
              static_cast<unsigned long long>(counts.names), open_s, load_s, recover_s);
  return os;
}

Status ObjectStore::RecoverPayloads(InstanceId instance) {
  std::vector<std::pair<ObjectID, uint64_t>> blobs;
  blobs.reserve(table_->counts().blobs);
  table_->ForEach([&](const ObjectRecord& r) {
    // Other nodes' blobs have no payload here to recover (cached copies are not kept).
    if (r.is_blob() && r.id.instance() == instance) blobs.emplace_back(r.id, r.size);
  });
  std::vector<ObjectID> lost = store_->Recover(blobs);
  if (lost.empty()) return Status::OK();
  VY_LOG_WARN("recovery: %zu blob(s) had no durable payload and are gone", lost.size());
  Status s = table_->DropLost(lost);
  if (!s.ok()) return Status::IOError("recovery: " + s.ToString());
  return Status::OK();
}

// ---- Creating objects --------------------------------------------------------------

Result<ObjectID> ObjectStore::SealBlob(uint64_t upload, uint64_t size, Owner owner) {
  auto id = table_->NewId(/*blob=*/true);
  if (!id.ok()) return id.status();
  VY_RETURN_IF_ERROR(store_->SealUpload(upload, *id, size));
  auto rec = table_->AddBlob(*id, size, owner);
  if (!rec.ok()) {
    store_->DeleteBlob(*id);
    return rec.status();
  }
  return *id;
}

Result<ObjectID> ObjectStore::SealMeta(uint64_t upload, const CreateSpec& spec, Owner owner) {
  auto rec = table_->Create(spec, owner);
  if (!rec.ok()) return rec.status();
  store_->DropUpload(upload);  // the bytes live on as metadata; an open fd stays valid
  return rec->id;
}

Result<std::vector<ObjectID>> ObjectStore::NewIds(const std::vector<bool>& blob) {
  std::vector<ObjectID> ids;
  ids.reserve(blob.size());
  for (bool b : blob) {
    auto id = table_->NewId(b);
    if (!id.ok()) return id.status();
    ids.push_back(*id);
  }
  return ids;
}

Result<ObjectID> ObjectStore::SealBatch(uint64_t upload, int src, uint64_t payload_at,
                                        BatchSpec batch, Owner owner,
                                        const std::function<void(long)>& after_blob) {
  long t[4];  // this thread's CPU time (us) at each phase: the load does not distort it
  t[0] = ThreadCpuUs();
  std::vector<Store::BlobRange> ranges;
  for (size_t i = 0; i < batch.entries.size(); ++i) {
    const BatchEntry& e = batch.entries[i];
    if (e.blob) ranges.push_back({batch.ids[i], payload_at + e.offset, e.size});
  }
  std::vector<ObjectID> made;
  made.reserve(ranges.size());
  auto undo = [&] {
    for (ObjectID id : made) store_->DeleteBlob(id);
  };
  long blobs = 0;
  // The durable writer is woken once, after the last blob: not a thread switch per blob.
  Status s = store_->CreateBlobs(src, ranges, &made, [&] {
    if (after_blob) after_blob(++blobs);
  });
  store_->WakeWriter();
  if (!s.ok()) {
    undo();
    return s;
  }
  t[1] = ThreadCpuUs();
  const size_t entries = batch.entries.size();
  auto root = table_->CreateBatch(std::move(batch), owner);
  if (!root.ok()) {
    undo();
    return root.status();
  }
  t[2] = ThreadCpuUs();
  store_->DropUpload(upload);  // the bytes live on in the blobs; an open fd stays valid
  t[3] = ThreadCpuUs();
  // Where the seal's CPU time goes (README "Per-object cost"), with `-d`.
  VY_LOG_DEBUG("batch of %zu entries (%zu blobs): blob files %ld us, records %ld us, "
               "drop upload %ld us",
               entries, ranges.size(), t[1] - t[0], t[2] - t[1], t[3] - t[2]);
  return root->id;
}

Result<ObjectRecord> ObjectStore::MakeBlob(uint64_t len, const Fill& fill, Owner owner) {
  auto up = store_->CreateFill(len);
  if (!up.ok()) return up.status();
  Status s = fill(*up, len);
  Result<ObjectID> id = Status::OK();
  if (s.ok()) {
    id = table_->NewId(/*blob=*/true);
    if (!id.ok()) s = id.status();
  }
  if (s.ok()) s = store_->SealUpload(up->key, *id, len);
  close(up->fd);
  if (!s.ok()) {
    store_->DropUpload(up->key);
    return s;
  }
  auto rec = table_->AddBlob(*id, len, owner);
  if (!rec.ok()) store_->DeleteBlob(*id);
  return rec;
}

Result<ObjectRecord> ObjectStore::CreateBlob(const void* bytes, uint64_t len, Owner owner) {
  return MakeBlob(
      len,
      [&](const Store::Upload& up, uint64_t n) -> Status {
        uint64_t done = 0;
        while (done < n) {
          ssize_t w = pwrite(up.fd, static_cast<const char*>(bytes) + done, n - done,
                             static_cast<off_t>(done));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) return Status::FromErrno("write blob", w < 0 ? errno : EIO);
          done += static_cast<uint64_t>(w);
        }
        return Status::OK();
      },
      owner);
}

Result<ObjectRecord> ObjectStore::CreateBlobFrom(int src, uint64_t offset, uint64_t len,
                                                 Owner owner) {
  return MakeBlob(
      len,
      [&](const Store::Upload& up, uint64_t n) {
        return CopyIntoFill(src, offset, up.fd, n, up.backed);
      },
      owner);
}

Result<ObjectRecord> ObjectStore::CreateMeta(const CreateSpec& spec, Owner owner) {
  return table_->Create(spec, owner);
}

// ---- Deleting objects --------------------------------------------------------------

Result<ObjectTable::Deleted> ObjectStore::Delete(ObjectID id) {
  auto gone = table_->Delete(id);
  if (!gone.ok()) return gone;
  for (const ObjectRecord& r : gone->objects) {
    if (r.is_blob()) store_->DeleteBlob(r.id);
  }
  return gone;
}

void ObjectStore::Undo(const std::vector<ObjectID>& created) {
  for (auto it = created.rbegin(); it != created.rend(); ++it) (void)Delete(*it);
}

bool ObjectStore::ForgetIfDeleted(ObjectID id) {
  if (table_->Exists(id)) return false;  // created or replaced: nothing cached to drop
  if (id.is_blob()) store_->DeleteBlob(id);
  return true;
}

// ---- Pinning blobs ------------------------------------------------------------------

Result<PinnedBlob> ObjectStore::Pin(ObjectID id) {
  PinnedBlob b;
  b.id = id;
  if (!table_->With(id, [&](const ObjectRecord& r) { b.size = r.size; }) || !id.is_blob()) {
    return Status::NotFound("no blob " + id.ToString());
  }
  auto fd = store_->OpenBlob(id);
  if (!fd.ok()) return fd.status();
  void* p = b.size ? mmap(nullptr, b.size, PROT_READ, MAP_SHARED, *fd, 0) : nullptr;
  const int err = errno;
  close(*fd);  // the mapping holds the file
  if (p == MAP_FAILED) {
    store_->CloseBlob(id);
    return Status::FromErrno("map " + id.ToString(), err);
  }
  b.data = static_cast<const char*>(p);
  return b;
}

void ObjectStore::Unpin(const PinnedBlob& b) {
  if (b.data) munmap(const_cast<char*>(b.data), b.size);
  store_->CloseBlob(b.id);
}

// ---- Other nodes ----------------------------------------------------------------------

Result<uint64_t> ObjectStore::ServePayload(ObjectID id, uint64_t offset, char* buf,
                                           uint32_t* len) {
  // Only persisted payloads leave the node: a transient blob is nobody else's business
  // (and ids are easy to guess).
  bool persisted = false;
  table_->With(id, [&](const ObjectRecord& r) { persisted = !r.transient; });
  if (id.instance() != store_->instance() || !persisted) {
    return Status::NotFound(id.ToString() + " is not a persisted blob of this node");
  }
  auto fd = store_->OpenBlob(id);
  if (!fd.ok()) return fd.status();
  struct stat sb;
  Status s = fstat(*fd, &sb) == 0 ? Status::OK() : Status::FromErrno("stat payload", errno);
  uint64_t total = static_cast<uint64_t>(sb.st_size), want = *len;
  *len = 0;
  if (s.ok() && offset > total) {
    s = Status::InvalidArgument("offset " + std::to_string(offset) + " is past the end of " +
                                id.ToString() + " (" + std::to_string(total) + " bytes)");
  }
  while (s.ok() && offset + *len < total && *len < want) {
    ssize_t n = pread(*fd, buf + *len, want - *len, static_cast<off_t>(offset + *len));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      s = n < 0 ? Status::FromErrno("read payload", errno) : Status::IOError("short payload");
      break;
    }
    *len += static_cast<uint32_t>(n);
  }
  close(*fd);
  store_->CloseBlob(id);
  if (!s.ok()) return s;
  return total;
}

void ObjectStore::SetRemote(bool fetch_allowed, Fetch fetch) {
  Store::Remote remote;
  ObjectTable* table = table_;
  remote.size = [table, fetch_allowed](ObjectID id) -> Result<uint64_t> {
    auto r = table->Get(id);
    if (!r || !r->is_blob()) return Status::NotFound("no blob " + id.ToString());
    if (!fetch_allowed) {
      return Status::Remote("the payload of " + id.ToString() + " is on instance " +
                            std::to_string(r->instance) + " and remote=error");
    }
    return r->size;
  };
  remote.fetch = std::move(fetch);
  store_->SetRemote(std::move(remote));
}

}  // namespace vineyard
