#include "fs/internal.h"
#include "fs/node.h"

namespace vineyard {

// The fixed nodes' numbers are the node table's (node.h).
fuse_ino_t InodeTable::FixedIno(Kind k) {
  return static_cast<size_t>(k) < kKindCount ? OpsOf(k).fixed_ino : 0;
}

InodeTable::InodeTable() {
  for (size_t i = 0; i < kKindCount; ++i) {
    const NodeOps& ops = OpsOf(static_cast<Kind>(i));
    if (ops.fixed_ino == 0) continue;
    NodeKey key{ops.kind, 0, {}};
    nodes_[ops.fixed_ino] = Node{key, 1, {}};
    by_key_[key] = ops.fixed_ino;
  }
}

fuse_ino_t InodeTable::Ref(const NodeKey& key) {
  MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    ++nodes_[it->second].nlookup;
    return it->second;
  }
  fuse_ino_t ino = next_++;
  nodes_[ino] = Node{key, 1, {}};
  by_key_[key] = ino;
  return ino;
}

std::optional<NodeKey> InodeTable::Get(fuse_ino_t ino) const {
  MutexLock lock(&mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return std::nullopt;
  return it->second.key;
}

std::optional<fuse_ino_t> InodeTable::Find(const NodeKey& key) const {
  MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

void InodeTable::Forget(fuse_ino_t ino, uint64_t n) {
  if (ino <= 8) return;  // fixed nodes (1..8) live forever
  MutexLock lock(&mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  if (it->second.nlookup > n) {
    it->second.nlookup -= n;
    return;
  }
  by_key_.erase(it->second.key);
  nodes_.erase(it);
}

void InodeTable::Rekey(const NodeKey& from, const NodeKey& to) {
  MutexLock lock(&mu_);
  auto dst = by_key_.find(to);
  if (dst != by_key_.end()) {
    nodes_[dst->second].key = NodeKey{to.kind, ~uint64_t{0}, "/replaced"};  // no name holds a slash
    by_key_.erase(dst);
  }
  auto src = by_key_.find(from);
  if (src == by_key_.end()) return;
  fuse_ino_t ino = src->second;
  by_key_.erase(src);
  nodes_[ino].key = to;
  by_key_[to] = ino;
}

size_t InodeTable::size() const {
  MutexLock lock(&mu_);
  return nodes_.size();
}

std::vector<std::pair<fuse_ino_t, NodeKey>> InodeTable::OfKind(Kind k) const {
  MutexLock lock(&mu_);
  std::vector<std::pair<fuse_ino_t, NodeKey>> out;
  for (auto& [ino, node] : nodes_) {
    if (node.key.kind == k) out.push_back({ino, node.key});
  }
  return out;
}

void InodeTable::NoteMetaSize(fuse_ino_t ino, uint64_t size) {
  MutexLock lock(&mu_);
  auto it = nodes_.find(ino);
  if (it != nodes_.end()) it->second.meta.size = size + 1;
}

InodeTable::MetaCache InodeTable::SwapMeta(fuse_ino_t ino, uint64_t hash, uint64_t size) {
  MutexLock lock(&mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return MetaCache{};
  MetaCache old = it->second.meta;
  it->second.meta = MetaCache{hash, size + 1};
  return old;
}

bool InodeTable::IsSmallMeta(fuse_ino_t ino, uint64_t max) const {
  MutexLock lock(&mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || it->second.key.kind != Kind::kMetaFile) return false;
  const uint64_t size = it->second.meta.size;  // plus one, 0: unknown
  return size != 0 && size - 1 <= max;
}

// ---- NewDir ----

std::shared_ptr<Upload> NewDir::Find(const std::string& name) const {
  MutexLock lock(&mu_);
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second;
}

std::shared_ptr<Upload> NewDir::BySerial(uint64_t serial) const {
  MutexLock lock(&mu_);
  auto it = by_serial_.find(serial);
  return it == by_serial_.end() ? nullptr : it->second;
}

Result<std::shared_ptr<Upload>> NewDir::Add(const std::string& name, Owner owner, mode_t mode) {
  MutexLock lock(&mu_);
  if (entries_.count(name)) return Status::AlreadyExists("new/" + name + " exists");
  auto up = std::make_shared<Upload>(next_serial_++, name, owner, mode & 07777);
  entries_[name] = up;
  by_serial_[up->serial] = up;
  order_.push_back(up->serial);
  return up;
}

std::shared_ptr<Upload> NewDir::Remove(const std::string& name) {
  MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return nullptr;
  auto up = it->second;
  entries_.erase(it);
  return up;
}

Result<std::shared_ptr<Upload>> NewDir::Rename(Upload* up, const std::string& from,
                                                const std::string& to) {
  MutexLock lock(&mu_);
  auto it = entries_.find(from);
  if (it == entries_.end()) return Status::NotFound("new/" + from + " does not exist");
  if (it->second.get() != up) return Status::Busy("new/" + from + " was renamed meanwhile");
  if (from == to) return std::shared_ptr<Upload>();
  auto moved = it->second;
  std::shared_ptr<Upload> replaced;
  auto dst = entries_.find(to);
  if (dst != entries_.end()) replaced = dst->second;
  entries_.erase(it);
  entries_[to] = std::move(moved);
  up->name = to;
  return replaced;
}

void NewDir::Retire(uint64_t serial) {
  MutexLock lock(&mu_);
  by_serial_.erase(serial);
}

std::vector<std::pair<std::string, std::shared_ptr<Upload>>> NewDir::List() const {
  MutexLock lock(&mu_);
  return {entries_.begin(), entries_.end()};
}

std::vector<std::shared_ptr<Upload>> NewDir::TakeOldest(size_t n) {
  MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Upload>> out;
  size_t dropped = 0;
  while (!order_.empty() && out.size() < n && dropped < kMaxDropped) {
    const uint64_t serial = order_.front();
    order_.pop_front();
    auto s = by_serial_.find(serial);
    // Named still? (up->name is guarded by mu_ too.) Else it left new/: drop it.
    auto e = s == by_serial_.end() ? entries_.end() : entries_.find(NameOf(*s->second));
    if (e == entries_.end() || e->second != s->second) {
      ++dropped;
      continue;
    }
    out.push_back(e->second);
  }
  return out;
}

void NewDir::PutBack(const std::vector<uint64_t>& serials) {
  MutexLock lock(&mu_);
  order_.insert(order_.end(), serials.begin(), serials.end());
}

NewDir::Sizes NewDir::sizes() const {
  MutexLock lock(&mu_);
  return Sizes{entries_.size(), order_.size(), by_serial_.size()};
}

// ---- Notifier ----

void Notifier::Start(fuse_session* se) {
  se_ = se;
  thread_ = std::thread([this] { Loop(); });
}

void Notifier::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void Notifier::InvalEntry(fuse_ino_t parent, std::string name) {
  {
    MutexLock lock(&mu_);
    if (!se_ || stop_) return;
    queue_.push_back(Item{parent, std::move(name)});
  }
  cv_.Signal();
}

void Notifier::InvalInode(fuse_ino_t ino) {
  {
    MutexLock lock(&mu_);
    if (!se_ || stop_) return;
    queue_.push_back(Item{ino, {}});
  }
  cv_.Signal();
}

void Notifier::Loop() {
  MutexUniqueLock lock(&mu_);
  for (;;) {
    while (!stop_ && queue_.empty()) cv_.Wait(&mu_);
    if (stop_) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    lock.Unlock();
    // ENOENT only means the kernel had nothing cached: not an error.
    if (item.name.empty()) {
      fuse_lowlevel_notify_inval_inode(se_, item.ino, 0, 0);
    } else {
      fuse_lowlevel_notify_inval_entry(se_, item.ino, item.name.c_str(), item.name.size());
    }
    lock.Lock();
  }
}

}  // namespace vineyard
