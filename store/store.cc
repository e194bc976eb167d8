#include "store/store.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "meta/log.h"
#include "store/arena.h"
#include "store/blob_pool.h"
#include "store/recovery_scan.h"
#include "store/state_db.h"

namespace vineyard {

const char* DurabilityName(Durability d) {
  switch (d) {
    case Durability::kNone:
      return "none";
    case Durability::kAsync:
      return "async";
    case Durability::kSync:
      return "sync";
  }
  return "?";
}

namespace {

// The journal of state=none: accepts everything, remembers nothing.
class NullJournal : public Journal {
 public:
  Status Commit(const JournalBatch&) override { return Status::OK(); }
  Status SaveIdLimit(uint64_t) override { return Status::OK(); }
  Status Load(Contents*) override { return Status::OK(); }
};

Status MakeDirs(const std::string& path, mode_t mode) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return Status::FromErrno("mkdir " + cur, errno);
    }
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& opts, InstanceId* instance) {
  std::unique_ptr<Store> store(new Store(opts));
  if (opts.stateless()) {
    store->null_journal_ = std::make_unique<NullJournal>();
    if (*instance == 0) *instance = 1;
  } else {
    VY_RETURN_IF_ERROR(MakeDirs(opts.state, 0700));
    auto db = StateDb::Open(opts.state, opts.durability == Durability::kSync, opts.lock_wait_ms);
    if (!db.ok()) return db.status();
    store->db_ = std::move(*db);
    auto stored = store->db_->LoadInstance();
    if (!stored.ok()) return stored.status();
    if (*stored != 0 && *instance != 0 && *stored != *instance) {
      return Status::InvalidArgument("state " + opts.state + " belongs to instance " +
                                     std::to_string(*stored) + ", not " +
                                     std::to_string(*instance));
    }
    if (*instance == 0) *instance = *stored != 0 ? *stored : 1;
    if (*stored == 0) VY_RETURN_IF_ERROR(store->db_->SaveInstance(*instance));
  }
  store->instance_ = *instance;

  VY_RETURN_IF_ERROR(MakeDirs(opts.arena, 0700));
  if (geteuid() == 0) {
    VY_RETURN_IF_ERROR(MountArenaTmpfs(opts.arena, opts.size + TmpfsSlack(opts.size), opts.huge,
                                       &store->mounted_tmpfs_));
  }
  store->arena_is_tmpfs_ = IsTmpfsMountPoint(opts.arena);
  auto arena = Arena::Open(opts.arena, opts.size);
  if (!arena.ok()) return arena.status();
  store->arena_ = std::move(*arena);
  Store* self = store.get();
  store->arena_->SetEvictor([self](uint64_t bytes) { return self->Evict(bytes); });
  if (store->db_ && opts.durability != Durability::kNone) {
    store->writer_ = std::thread([self] { self->WriterLoop(); });
  }
  rlimit nofile{};  // the pool and the writer's descriptors stay well inside the limit
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0) nofile.rlim_cur = 1024;
  store->writer_fds_max_ = static_cast<size_t>(std::min<rlim_t>(4096, nofile.rlim_cur / 8));
  store->pool_ = std::make_unique<BlobPool>(store->arena_.get(),
                                            BlobPool::SizeFor(opts.size, nofile.rlim_cur));
  if (opts.reserve > opts.size / 2) {
    return Status::InvalidArgument("reserve (" + std::to_string(opts.reserve) +
                                   " bytes) must be at most half of size (" +
                                   std::to_string(opts.size) + " bytes)");
  }
  store->RemoveReserveFiles();  // left by a daemon that was killed
  if (store->arena_is_tmpfs_ && opts.huge != "never") {
    store->collapse_ = true;
    store->collapser_ = std::thread([self] { self->CollapseLoop(); });
  }
  return store;
}

Store::Store(StoreOptions opts) : opts_(std::move(opts)) {}

void Store::SetRemote(Remote remote) { remote_ = std::move(remote); }

Status Store::FetchRemote(ObjectID id, uint64_t size) {
  {
    MutexLock lock(&mu_);
    if (fetching_.count(id)) {
      while (fetching_.count(id)) cv_.Wait(&mu_);
      return Status::OK();  // the caller looks again
    }
    if (blobs_.count(id)) return Status::OK();
    fetching_.insert(id);
  }
  auto fill = CreateFill(size);  // evicts if it must
  Status s = fill.status();
  uint64_t key = fill.ok() ? fill->key : 0;
  if (s.ok()) {
    int fd = fill->fd;
    // In order, over the reserve or appended to a new file (see AppendSmallPages).
    uint64_t at = 0;
    s = remote_.fetch(id, size, [&](const char* data, size_t len) {
      Status w = AppendSmallPages(fd, data, len, at);
      at += len;
      return w;
    });
    close(fd);
    std::string from = arena_->StagingPath(key), to = arena_->BlobPath(id);
    if (s.ok()) {
      chmod(from.c_str(), 0400);
      if (rename(from.c_str(), to.c_str()) != 0) s = Status::FromErrno("fetch: rename", errno);
    }
    if (s.ok()) {
      arena_->MoveCharge(key, id.raw());
    } else {
      unlink(from.c_str());
      arena_->Uncharge(key);
    }
  }
  MutexLock lock(&mu_);
  fetching_.erase(id);
  if (s.ok()) {
    Blob& b = blobs_[id];
    Tally(b, -1);
    b.size = size;
    b.resident = true;
    b.cached = true;
    Tally(b, +1);
    LruInsert(id, b);
    ++counters_.fetched;
    QueueCollapse(id, size);
  }
  cv_.SignalAll();
  return s;
}

Store::~Store() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  writer_cv_.SignalAll();
  collapse_cv_.SignalAll();
  if (writer_.joinable()) writer_.join();
  if (collapser_.joinable()) collapser_.join();
  if (reserver_.joinable()) reserver_.join();
  MutexLock lock(&mu_);
  for (auto& [id, fd] : writer_fds_) close(fd);  // the writer drained the queue: none
}

Journal* Store::journal() { return db_ ? static_cast<Journal*>(db_.get()) : null_journal_.get(); }

std::string Store::BlobPath(ObjectID id) const { return arena_->BlobPath(id); }
std::string Store::UploadPath(uint64_t key) const { return arena_->StagingPath(key); }

std::unique_ptr<RecoveryScan> Store::MakeRecoveryScan() const {
  return std::make_unique<RecoveryScan>(arena_.get(), [this]() -> RecoveryScan::Sized {
    if (!db_) return {};
    auto list = db_->ListDurable();
    if (list.ok()) return std::move(*list);
    VY_LOG_ERROR("recovery: %s", list.status().ToString().c_str());
    return {};
  });
}

void Store::StartRecoveryScan() {
  if (recovery_scan_) return;
  recovery_scan_ = MakeRecoveryScan();
  recovery_scan_->Start();
}

std::vector<ObjectID> Store::Recover(const std::vector<std::pair<ObjectID, uint64_t>>& blobs) {
  arena_->ClearStaging();
  // Three lists in id order, walked side by side: no hash table of millions of ids
  // is built (and thrown away) at mount. RocksDB lists in key order, which is id
  // order (8-byte big-endian keys); the table hands its blobs in id order.
  using Sized = std::pair<ObjectID, uint64_t>;
  auto by_id = [](const Sized& a, const Sized& b) { return a.first < b.first; };
  if (!recovery_scan_) recovery_scan_ = MakeRecoveryScan();
  RecoveryScan::Lists lists = recovery_scan_->Finish();  // stats beside the scan's thread
  recovery_scan_.reset();
  const std::vector<Sized>& files = lists.files;
  const std::vector<Sized>& durable = lists.durable;
  std::vector<Sized> sorted;
  const std::vector<Sized>* wanted = &blobs;
  if (!std::is_sorted(blobs.begin(), blobs.end(), by_id)) {
    sorted = blobs;
    std::sort(sorted.begin(), sorted.end(), by_id);
    wanted = &sorted;
  }
  auto orphan_file = [&](ObjectID id) {
    VY_LOG_INFO("recovery: removing orphan payload %s from the arena", id.ToString().c_str());
    unlink(arena_->BlobPath(id).c_str());
  };
  auto orphan_durable = [&](ObjectID id) {
    if (db_) db_->DeletePayload(id).ok();
  };
  std::vector<ObjectID> lost;
  size_t fi = 0, di = 0;
  MutexLock lock(&mu_);
  blobs_.reserve(blobs_.size() + wanted->size());
  arena_->ReserveCharges(wanted->size());
  for (size_t i = 0; i < wanted->size(); ++i) {
    const auto& [id, size] = (*wanted)[i];
    if (i > 0 && (*wanted)[i - 1].first == id) continue;  // listed twice: once is enough
    for (; fi < files.size() && files[fi].first < id; ++fi) orphan_file(files[fi].first);
    for (; di < durable.size() && durable[di].first < id; ++di) orphan_durable(durable[di].first);
    const Sized* f = fi < files.size() && files[fi].first == id ? &files[fi++] : nullptr;
    const Sized* d = di < durable.size() && durable[di].first == id ? &durable[di++] : nullptr;
    Blob b;
    b.size = size;
    b.resident = f && f->second == size;
    b.durable = d && d->second == size;
    if (f && !b.resident) {
      VY_LOG_WARN("recovery: arena file of %s has %llu bytes, expected %llu; dropped",
                  id.ToString().c_str(), static_cast<unsigned long long>(f->second),
                  static_cast<unsigned long long>(size));
      unlink(arena_->BlobPath(id).c_str());
    }
    if (!b.resident && !b.durable) {
      lost.push_back(id);
      continue;
    }
    // Charged without eviction (mu_ is held, and recovery must not drop what it just
    // found). If the arena shrank, later reservations evict until it fits again.
    if (b.resident) arena_->ChargeExisting(id.raw(), size);
    auto [it, fresh] = blobs_.emplace(id, b);
    if (fresh) Tally(it->second, +1);
    if (b.resident && b.durable) LruInsert(id, it->second);
    if (b.resident && !b.durable && db_ && opts_.durability != Durability::kNone) {
      queue_.push_back(id);
    }
  }
  for (; fi < files.size(); ++fi) orphan_file(files[fi].first);
  for (; di < durable.size(); ++di) orphan_durable(durable[di].first);
  cv_.SignalAll();
  writer_cv_.SignalAll();
  StartReserver();  // after recovery has charged what the arena holds
  return lost;
}

uint64_t Store::ArenaFree() const {
  uint64_t ours = arena_->capacity() > arena_->used() ? arena_->capacity() - arena_->used() : 0;
  if (!arena_is_tmpfs_) return ours;
  struct statvfs sv;
  if (statvfs(arena_->dir().c_str(), &sv) != 0) return ours;
  uint64_t tmpfs_free = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
  uint64_t slack = TmpfsSlack(arena_->capacity());
  return std::min<uint64_t>(ours, tmpfs_free > slack ? tmpfs_free - slack : 0);
}

bool Store::ArenaExhausted() const {
  if (!arena_is_tmpfs_) return false;
  struct statvfs sv;
  if (statvfs(arena_->dir().c_str(), &sv) != 0) return false;
  return static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize < (64u << 10);
}

void Store::MakeRoom(uint64_t bytes) {
  uint64_t free = ArenaFree();
  if (free < bytes) Evict(bytes - free);
}

Result<Store::Upload> Store::CreateUpload() {
  auto staging = arena_->CreateStaging();
  if (!staging.ok()) return staging.status();
  return Upload{staging->first, staging->second};
}

Status Store::ReserveUpload(uint64_t key, uint64_t size) { return arena_->Charge(key, size); }

void Store::DropUpload(uint64_t key) {
  unlink(arena_->StagingPath(key).c_str());
  arena_->Uncharge(key);
}

Status Store::CopyBlob(int src, uint64_t offset, uint64_t size, ObjectID id, bool wake_writer) {
  auto fill = CreateFill(size);
  if (!fill.ok()) return fill.status();
  Status s = CopyIntoFill(src, offset, fill->fd, size, fill->backed);
  close(fill->fd);
  if (s.ok()) s = Seal(fill->key, id, size, wake_writer);
  if (!s.ok()) DropUpload(fill->key);
  return s;
}

Status Store::SealUpload(uint64_t key, ObjectID id, uint64_t size) {
  return Seal(key, id, size, /*wake_writer=*/true);
}

Status Store::Seal(uint64_t key, ObjectID id, uint64_t size, bool wake_writer) {
  VY_RETURN_IF_ERROR(arena_->Charge(key, size));  // the final size (may shrink)
  std::string from = arena_->StagingPath(key), to = arena_->BlobPath(id);
  if (rename(from.c_str(), to.c_str()) != 0)
    return Status::FromErrno("seal: rename " + from, errno);
  arena_->MoveCharge(key, id.raw());
  // Payloads are immutable from here on: drop write permission on the arena file too.
  chmod(to.c_str(), 0400);
  bool durable = false;
  if (db_ && opts_.durability == Durability::kSync) {
    int fd = open(to.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("seal: open " + to, errno);
    Status s = db_->PutPayload(id, fd, size, /*sync=*/true);
    close(fd);
    if (!s.ok()) {
      unlink(to.c_str());
      arena_->Uncharge(id.raw());
      return s;
    }
    durable = true;
  }
  MutexLock lock(&mu_);
  Blob& b = blobs_[id];
  Tally(b, -1);
  b.size = size;
  b.resident = true;
  b.durable = durable;
  Tally(b, +1);
  QueueCollapse(id, size);
  if (durable) {
    LruInsert(id, b);
  } else if (db_ && opts_.durability == Durability::kAsync) {
    queue_.push_back(id);
    if (wake_writer && writer_idle_) writer_cv_.Signal();
  }
  return Status::OK();
}

}  // namespace vineyard
