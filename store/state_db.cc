#include "store/state_db.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <thread>

#include "meta/log.h"
#include "store/arena.h"

namespace vineyard {
namespace {

std::string IdKey(ObjectID id) {
  std::string k(8, '\0');
  uint64_t v = id.raw();
  for (int i = 7; i >= 0; --i, v >>= 8) k[i] = static_cast<char>(v & 0xff);
  return k;
}

std::string ChunkKey(ObjectID id, uint32_t chunk) {
  std::string k = IdKey(id);
  for (int shift = 24; shift >= 0; shift -= 8) k.push_back(static_cast<char>(chunk >> shift));
  return k;
}

constexpr const char kTombstonePrefix[] = "tombstone/";

// A whole-column-family scan at mount: read ahead, and keep its blocks out of the
// block cache (they are read once).
rocksdb::ReadOptions ScanOptions() {
  rocksdb::ReadOptions o;
  o.fill_cache = false;
  o.readahead_size = 2 << 20;
  return o;
}

Result<ObjectID> KeyId(const rocksdb::Slice& key) {
  if (key.size() < 8) return Status::InvalidArgument("short key");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(key[i]);
  return ObjectID(v);
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(what + ": " + s.ToString());
  if (s.IsNoSpace()) return Status::NoSpace(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

}  // namespace

Result<std::unique_ptr<StateDb>> StateDb::Open(const std::string& dir, bool sync,
                                               int lock_wait_ms) {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_background_jobs = 2;
  db_opts.keep_log_file_num = 4;
  db_opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  rocksdb::ColumnFamilyOptions small;
  small.write_buffer_size = 8 << 20;
  rocksdb::ColumnFamilyOptions blobs;
  blobs.write_buffer_size = 32 << 20;
  blobs.enable_blob_files = true;
  blobs.min_blob_size = 4096;
  blobs.blob_file_size = 256 << 20;
  blobs.enable_blob_garbage_collection = true;

  std::vector<rocksdb::ColumnFamilyDescriptor> descs = {{rocksdb::kDefaultColumnFamilyName, small},
                                                        {"objects", small},
                                                        {"names", small},
                                                        {"payloads", blobs},
                                                        {"durable", small}};
  std::unique_ptr<StateDb> db(new StateDb());
  db->sync_ = sync;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  // A previous daemon on this state may still be finishing its durable writes after
  // its unmount (it holds RocksDB's LOCK until then): wait for it, a bounded time.
  for (int waited_ms = 0;; waited_ms += 100) {
    s = rocksdb::DB::Open(db_opts, dir, descs, &db->cfs_, &raw);
    if (s.ok() || !s.IsIOError() || s.ToString().find("lock") == std::string::npos ||
        waited_ms >= lock_wait_ms) {
      break;
    }
    if (waited_ms == 0) VY_LOG_INFO("state %s is locked by another daemon; waiting", dir.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!s.ok()) return FromRocks(s, "open RocksDB state in " + dir);
  db->db_.reset(raw);
  db->objects_ = db->cfs_[1];
  db->names_ = db->cfs_[2];
  db->payloads_ = db->cfs_[3];
  db->durable_ = db->cfs_[4];
  return db;
}

StateDb::~StateDb() {
  if (!db_) return;
  for (auto* cf : cfs_) db_->DestroyColumnFamilyHandle(cf);
  db_->Close().PermitUncheckedError();
}

Status StateDb::Put(rocksdb::ColumnFamilyHandle* cf, const std::string& key,
                    const std::string& value, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Put(wo, cf, key, value), "RocksDB put");
}

Status StateDb::Commit(const JournalBatch& batch) {
  // The write batch's bytes reserved up front and one buffer for every record's
  // encoding: a batch of thousands of records (new/<x>.batch) neither regrows the
  // write batch nor allocates per record (README "Per-object cost").
  size_t bytes = 64;
  for (const auto& r : batch.put_objects) bytes += 256 + r.type_name.size() + r.fields.size();
  rocksdb::WriteBatch wb(bytes);
  // In key order: the memtable's skip list then inserts each record next to the one
  // before (RocksDB keeps that position); a batch's blobs and metadata objects
  // alternate, two ranges of ids, which made every insert a search from the top.
  // Stable, so a key put twice keeps its last value.
  std::vector<uint32_t> order(batch.put_objects.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return batch.put_objects[a].id.raw() < batch.put_objects[b].id.raw();
  });
  std::string value;
  for (uint32_t i : order) {
    const ObjectRecord& r = batch.put_objects[i];
    value.clear();
    if (!AppendRecord(r, &value)) value = EncodeRecord(r);
    wb.Put(objects_, IdKey(r.id), value);
  }
  for (ObjectID id : batch.delete_objects) wb.Delete(objects_, IdKey(id));
  for (const auto& [name, n] : batch.put_names) wb.Put(names_, name, EncodeName(n));
  for (const auto& name : batch.drop_names) wb.Delete(names_, name);
  for (const auto& [name, stamp] : batch.put_tombstones) {
    wb.Put(db_->DefaultColumnFamily(), kTombstonePrefix + name,
           std::to_string(stamp.first) + " " + std::to_string(stamp.second));
  }
  for (const auto& name : batch.drop_tombstones) {
    wb.Delete(db_->DefaultColumnFamily(), kTombstonePrefix + name);
  }
  if (batch.seq != 0) wb.Put(db_->DefaultColumnFamily(), "seq", std::to_string(batch.seq));
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  return FromRocks(db_->Write(wo, &wb), "journal commit");
}

Status StateDb::SaveIdLimit(uint64_t limit) {
  return Put(db_->DefaultColumnFamily(), "id_limit", std::to_string(limit), /*sync=*/true);
}

Status StateDb::Load(Contents* out) {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), "id_limit", &v);
  if (s.ok()) {
    out->id_limit = std::strtoull(v.c_str(), nullptr, 10);
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "read id_limit");
  }
  s = db_->Get(rocksdb::ReadOptions(), "seq", &v);
  if (s.ok()) {
    out->seq = std::strtoull(v.c_str(), nullptr, 10);
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "read seq");
  }
  // One pass over each column family; what is read once at mount stays out of the
  // block cache, and the scan reads ahead.
  rocksdb::ReadOptions scan = ScanOptions();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, objects_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto r = DecodeRecord(std::string_view(it->value().data(), it->value().size()));
    if (!r.ok()) {
      out->bad.push_back("object record skipped: " + r.status().message());
      continue;
    }
    if (out->on_object) {
      out->on_object(std::move(*r));
    } else {
      out->objects.push_back(std::move(*r));
    }
  }
  VY_RETURN_IF_ERROR(FromRocks(it->status(), "scan objects"));
  it.reset(db_->NewIterator(scan, names_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto n = DecodeName(std::string_view(it->value().data(), it->value().size()));
    if (!n.ok()) {
      out->bad.push_back("name '" + it->key().ToString() + "' skipped: " + n.status().message());
      continue;
    }
    out->names.emplace_back(it->key().ToString(), *n);
  }
  VY_RETURN_IF_ERROR(FromRocks(it->status(), "scan names"));
  it.reset(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = kTombstonePrefix;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string name = it->key().ToString().substr(prefix.size());
    std::string v = it->value().ToString();
    char* end = nullptr;
    long long ts = std::strtoll(v.c_str(), &end, 10);
    unsigned long writer = *end == ' ' ? std::strtoul(end + 1, &end, 10) : 0;
    if (*end != '\0' || writer == 0 || writer > 0x7fff) {
      out->bad.push_back("tombstone of '" + name + "' skipped: '" + v + "'");
      continue;
    }
    out->tombstones.emplace_back(std::move(name), NameStamp{ts, static_cast<uint32_t>(writer)});
  }
  return FromRocks(it->status(), "scan tombstones");
}

Result<uint32_t> StateDb::LoadInstance() {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), "instance", &v);
  if (s.IsNotFound()) return 0u;
  if (!s.ok()) return FromRocks(s, "read instance");
  return static_cast<uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
}

Status StateDb::SaveInstance(uint32_t instance) {
  return Put(db_->DefaultColumnFamily(), "instance", std::to_string(instance), true);
}

Status StateDb::PutPayload(ObjectID id, int fd, uint64_t size, bool sync) {
  std::string buf;
  rocksdb::WriteOptions wo;
  // A large payload skips the WAL (which would write it a second time) and is made
  // durable by flushing the payload column family before the marker is written.
  const bool bulk = size >= kBulkPayload;
  wo.disableWAL = bulk;
  uint32_t chunk = 0;
  for (uint64_t off = 0; off < size; off += kChunk, ++chunk) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off));
    buf.resize(n);
    size_t got = 0;
    while (got < n) {
      ssize_t r = pread(fd, buf.data() + got, n - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return Status::FromErrno("read payload of " + id.ToString(), r < 0 ? errno : EIO);
      got += static_cast<size_t>(r);
    }
    VY_RETURN_IF_ERROR(FromRocks(db_->Put(wo, payloads_, ChunkKey(id, chunk), buf),
                                 "store payload of " + id.ToString()));
  }
  if (bulk) {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    VY_RETURN_IF_ERROR(FromRocks(db_->Flush(fo, payloads_), "flush payload of " + id.ToString()));
  }
  return Put(durable_, IdKey(id), std::to_string(size), sync);
}

Status StateDb::PutSmallPayloads(const std::vector<SmallPayload>& payloads, bool sync) {
  rocksdb::WriteBatch wb;
  for (const auto& p : payloads) {
    if (p.bytes.size() > kChunk) return Status::InvalidArgument("payload over one chunk");
    if (!p.bytes.empty()) wb.Put(payloads_, ChunkKey(p.id, 0), p.bytes);
    wb.Put(durable_, IdKey(p.id), std::to_string(p.bytes.size()));
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, &wb), "store small payloads");
}

Status StateDb::ReadPayload(ObjectID id, int fd, uint64_t size) {
  std::string marker;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), durable_, IdKey(id), &marker);
  if (!s.ok()) return FromRocks(s, "payload of " + id.ToString());
  rocksdb::PinnableSlice value;
  uint32_t chunk = 0;
  for (uint64_t off = 0; off < size; off += kChunk, ++chunk) {
    value.Reset();
    s = db_->Get(rocksdb::ReadOptions(), payloads_, ChunkKey(id, chunk), &value);
    if (!s.ok())
      return FromRocks(s, "payload chunk " + std::to_string(chunk) + " of " + id.ToString());
    Status w = AppendSmallPages(fd, value.data(), value.size(), off);
    if (!w.ok()) return Status::IOError("reload payload of " + id.ToString() + ": " + w.message());
  }
  return Status::OK();
}

Status StateDb::DeletePayload(ObjectID id) {
  rocksdb::WriteBatch wb;
  wb.Delete(durable_, IdKey(id));
  wb.DeleteRange(payloads_, ChunkKey(id, 0), ChunkKey(ObjectID(id.raw() + 1), 0));
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &wb), "delete payload of " + id.ToString());
}

Result<std::vector<std::pair<ObjectID, uint64_t>>> StateDb::ListDurable() {
  std::vector<std::pair<ObjectID, uint64_t>> out;
  uint64_t estimate = 0;
  if (db_->GetIntProperty(durable_, "rocksdb.estimate-num-keys", &estimate)) {
    out.reserve(static_cast<size_t>(std::min<uint64_t>(estimate, 1u << 26)));
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), durable_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto id = KeyId(it->key());
    if (!id.ok()) continue;
    char digits[24] = {};  // a decimal size: at most 20 digits
    rocksdb::Slice v = it->value();
    std::memcpy(digits, v.data(), std::min<size_t>(v.size(), sizeof digits - 1));
    out.emplace_back(*id, std::strtoull(digits, nullptr, 10));
  }
  VY_RETURN_IF_ERROR(FromRocks(it->status(), "scan durable payloads"));
  return out;
}

Status StateDb::SyncWal() { return FromRocks(db_->SyncWAL(), "sync WAL"); }

}  // namespace vineyard
