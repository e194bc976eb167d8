// Tests store/state_db.cc on a real RocksDB in a temp dir: the journal (Commit/Load),
// the id limit, the instance, and chunked payloads.
#include "store/state_db.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/store/temp_dir.h"

namespace vineyard {
namespace {

class StateDbTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void TearDown() override { db_.reset(); }
  void Reopen(bool sync = false) {
    db_.reset();
    auto db = StateDb::Open(dir_ + "/state", sync);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }

  // A file in the temp dir holding `size` deterministic pseudo-random bytes.
  std::string MakeFile(const std::string& name, uint64_t size, uint32_t seed) {
    std::string bytes(size, '\0');
    std::mt19937 rng(seed);
    for (auto& c : bytes) c = static_cast<char>(rng());
    std::string path = dir_ + "/" + name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t w = write(fd, bytes.data() + done, bytes.size() - done);
      EXPECT_GT(w, 0);
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    close(fd);
    return bytes;
  }
  std::string ReadAll(const std::string& path) {
    std::string out;
    int fd = open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << path;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
  }
  Status Put(ObjectID id, const std::string& file, uint64_t size) {
    int fd = open((dir_ + "/" + file).c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    Status s = db_->PutPayload(id, fd, size, /*sync=*/true);
    close(fd);
    return s;
  }
  Result<std::string> Read(ObjectID id, uint64_t size) {
    std::string path = dir_ + "/readback";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    Status s = db_->ReadPayload(id, fd, size);
    close(fd);
    if (!s.ok()) return s;
    return ReadAll(path);
  }
  Journal::Contents LoadAll() {
    Journal::Contents c;
    Status s = db_->Load(&c);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  TempDir tmp_{"vy-statedb-test"};
  const std::string dir_ = tmp_.path();
  std::unique_ptr<StateDb> db_;
};

ObjectRecord BlobRecord(uint64_t counter, uint64_t size) {
  ObjectRecord r;
  r.id = ObjectID::Make(true, 1, counter);
  r.type_name = kBlobTypename;
  r.size = r.nbytes = size;
  r.instance = 1;
  r.timestamp_ms = 1700000000000 + static_cast<int64_t>(counter);
  r.signature = MakeSignature(r.id, r.timestamp_ms);
  r.owner = {1000, 1000};
  return r;
}

ObjectRecord PairRecord(uint64_t counter, ObjectID a, ObjectID b) {
  ObjectRecord r;
  r.id = ObjectID::Make(false, 1, counter);
  r.type_name = "vineyard::Pair";
  r.instance = 1;
  r.transient = false;
  r.global = true;
  r.timestamp_ms = 1700000000500;
  r.signature = 42;
  r.members = {{"first_", a}, {"second_", b}};
  r.fields = R"({"first_":{"id":")" + a.ToString() + R"("},"note":"x","second_":{"id":")" +
             b.ToString() + R"("}})";
  return r;
}

// Mount streams records into the table (Contents::on_object) instead of collecting
// them: every record arrives once, decoded exactly, in id order (blobs and metadata
// objects interleaved as their ids fall), whatever order they were committed in.
TEST_F(StateDbTest, LoadStreamsEveryRecordInIdOrder) {
  std::vector<ObjectRecord> all;
  for (uint64_t c = 1; c <= 3000; ++c) all.push_back(BlobRecord(c * 7919 % 3001 + 1, c));
  all.push_back(PairRecord(5, all[0].id, all[1].id));
  all.push_back(PairRecord(2, all[2].id, all[2].id));
  for (size_t i = 0; i < all.size(); i += 100) {
    JournalBatch b;
    for (size_t j = i; j < std::min(all.size(), i + 100); ++j) b.put_objects.push_back(all[j]);
    ASSERT_TRUE(db_->Commit(b).ok());
  }
  Reopen();
  std::map<ObjectID, const ObjectRecord*> want;
  for (auto& r : all) want[r.id] = &r;
  std::vector<ObjectRecord> got;
  Journal::Contents c;
  c.on_object = [&](ObjectRecord&& r) { got.push_back(std::move(r)); };
  ASSERT_TRUE(db_->Load(&c).ok());
  EXPECT_TRUE(c.objects.empty()) << "handed over, not also collected";
  EXPECT_TRUE(c.bad.empty());
  ASSERT_EQ(got.size(), want.size());
  auto w = want.begin();
  for (size_t i = 0; i < got.size(); ++i, ++w) {
    const ObjectRecord& r = got[i];
    ASSERT_EQ(r.id, w->first) << i;
    EXPECT_EQ(r.size, w->second->size);
    EXPECT_EQ(r.type_name, w->second->type_name);
    EXPECT_EQ(r.signature, w->second->signature);
    EXPECT_EQ(r.timestamp_ms, w->second->timestamp_ms);
    EXPECT_EQ(r.owner.uid, w->second->owner.uid);
    EXPECT_EQ(r.transient, w->second->transient);
    EXPECT_EQ(r.members, w->second->members);
    EXPECT_EQ(r.fields, w->second->fields);
  }
  // Without on_object, the same records are collected, in the same order.
  auto collected = LoadAll();
  ASSERT_EQ(collected.objects.size(), got.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(collected.objects[i].id, got[i].id);
}

TEST_F(StateDbTest, FreshStateIsEmpty) {
  auto c = LoadAll();
  EXPECT_EQ(c.id_limit, 0u);
  EXPECT_TRUE(c.objects.empty());
  EXPECT_TRUE(c.names.empty());
  EXPECT_TRUE(c.bad.empty());
  auto instance = db_->LoadInstance();
  ASSERT_TRUE(instance.ok());
  EXPECT_EQ(*instance, 0u);
  auto durable = db_->ListDurable();
  ASSERT_TRUE(durable.ok());
  EXPECT_TRUE(durable->empty());
}

TEST_F(StateDbTest, CommitThenLoadRoundTripsAcrossReopen) {
  ObjectRecord a = BlobRecord(1, 100), b = BlobRecord(2, 5000);
  ObjectRecord pair = PairRecord(3, a.id, b.id);
  JournalBatch batch;
  batch.put_objects = {a, b, pair};
  batch.put_names = {{"mypair", NameRecord{pair.id, {7, 8}, 123}},
                     {"blob", NameRecord{a.id, {}, 1}}};
  ASSERT_TRUE(db_->Commit(batch).ok());
  Reopen();
  auto c = LoadAll();
  ASSERT_EQ(c.objects.size(), 3u);
  std::map<ObjectID, ObjectRecord> got;
  for (auto& r : c.objects) got[r.id] = r;
  ASSERT_TRUE(got.count(pair.id));
  const ObjectRecord& p = got[pair.id];
  EXPECT_EQ(p.type_name, "vineyard::Pair");
  EXPECT_FALSE(p.transient);
  EXPECT_TRUE(p.global);
  EXPECT_EQ(p.signature, 42u);
  EXPECT_EQ(p.timestamp_ms, pair.timestamp_ms);
  EXPECT_EQ(p.members, pair.members);
  EXPECT_EQ(p.fields, pair.fields);
  EXPECT_EQ(got[b.id].size, 5000u);
  EXPECT_EQ(got[a.id].owner.uid, 1000u);
  ASSERT_EQ(c.names.size(), 2u);
  std::map<std::string, NameRecord> names(c.names.begin(), c.names.end());
  EXPECT_EQ(names["mypair"].id, pair.id);
  EXPECT_EQ(names["mypair"].owner.uid, 7u);
  EXPECT_EQ(names["mypair"].timestamp_ms, 123);
  EXPECT_EQ(names["blob"].id, a.id);
  EXPECT_TRUE(c.bad.empty());
}

TEST_F(StateDbTest, CommitAppliesDeletesAndReplacements) {
  ObjectRecord a = BlobRecord(1, 100), b = BlobRecord(2, 200);
  JournalBatch put;
  put.put_objects = {a, b};
  put.put_names = {{"x", NameRecord{a.id, {}, 1}}, {"y", NameRecord{b.id, {}, 1}}};
  ASSERT_TRUE(db_->Commit(put).ok());
  JournalBatch change;
  ObjectRecord b2 = b;
  b2.transient = false;
  change.put_objects = {b2};
  change.delete_objects = {a.id};
  change.drop_names = {"x"};
  change.put_names = {{"z", NameRecord{b.id, {}, 2}}};
  ASSERT_TRUE(db_->Commit(change).ok());
  Reopen(/*sync=*/true);
  auto c = LoadAll();
  ASSERT_EQ(c.objects.size(), 1u);
  EXPECT_EQ(c.objects[0].id, b.id);
  EXPECT_FALSE(c.objects[0].transient);
  ASSERT_EQ(c.names.size(), 2u);
  EXPECT_EQ(c.names[0].first, "y");
  EXPECT_EQ(c.names[1].first, "z");
  // An empty batch is fine.
  EXPECT_TRUE(db_->Commit(JournalBatch{}).ok());
}

TEST_F(StateDbTest, SaveIdLimitPersistsAcrossReopen) {
  ASSERT_TRUE(db_->SaveIdLimit(4097).ok());
  ASSERT_TRUE(db_->SaveIdLimit(8193).ok());
  Reopen();
  EXPECT_EQ(LoadAll().id_limit, 8193u);
  ASSERT_TRUE(db_->SaveIdLimit(uint64_t{1} << 47).ok());
  Reopen();
  EXPECT_EQ(LoadAll().id_limit, uint64_t{1} << 47);
}

TEST_F(StateDbTest, InstanceIsSavedAndLoaded) {
  ASSERT_TRUE(db_->SaveInstance(32767).ok());
  Reopen();
  auto instance = db_->LoadInstance();
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  EXPECT_EQ(*instance, 32767u);
}

TEST_F(StateDbTest, SecondOpenOfTheSameStateFails) {
  auto again = StateDb::Open(dir_ + "/state", false);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kIOError);
}

TEST_F(StateDbTest, SecondOpenWaitsForTheHolderToClose) {
  // A previous daemon still finishing its writes holds the lock for a while.
  std::thread closer([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    db_.reset();
  });
  auto again = StateDb::Open(dir_ + "/state", false, /*lock_wait_ms=*/10000);
  closer.join();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(StateDbTest, PayloadsRoundTripByteIdentical) {
  const std::vector<uint64_t> sizes = {0, 1, 4095, 4096, StateDb::kChunk - 1, StateDb::kChunk,
                                       StateDb::kChunk + 1, 7 * StateDb::kChunk / 2,
                                       // the bulk path: no WAL, a flush instead
                                       StateDb::kBulkPayload, StateDb::kBulkPayload + 12345};
  std::map<ObjectID, std::string> want;
  uint64_t counter = 1;
  for (uint64_t size : sizes) {
    ObjectID id = ObjectID::Make(true, 1, counter++);
    std::string file = "payload-" + std::to_string(size);
    want[id] = MakeFile(file, size, static_cast<uint32_t>(size));
    ASSERT_TRUE(Put(id, file, size).ok()) << size;
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& [id, bytes] : want) {
      auto got = Read(id, bytes.size());
      ASSERT_TRUE(got.ok()) << id.ToString() << ": " << got.status().ToString();
      EXPECT_EQ(got->size(), bytes.size());
      EXPECT_TRUE(*got == bytes) << "payload of " << bytes.size() << " bytes differs";
    }
    Reopen();  // and again from disk
  }
}

TEST_F(StateDbTest, ListDurableListsPayloadsWithTheirSizes) {
  ObjectID a = ObjectID::Make(true, 1, 1), b = ObjectID::Make(true, 1, 2);
  MakeFile("a", 10, 1);
  MakeFile("b", StateDb::kChunk + 3, 2);
  ASSERT_TRUE(Put(a, "a", 10).ok());
  ASSERT_TRUE(Put(b, "b", StateDb::kChunk + 3).ok());
  Reopen();
  auto list = db_->ListDurable();
  ASSERT_TRUE(list.ok());
  std::map<ObjectID, uint64_t> got(list->begin(), list->end());
  EXPECT_EQ(got, (std::map<ObjectID, uint64_t>{{a, 10}, {b, StateDb::kChunk + 3}}));
}

TEST_F(StateDbTest, ShortSourceFileIsAnErrorAndNotDurable) {
  ObjectID a = ObjectID::Make(true, 1, 1);
  MakeFile("short", 10, 1);
  Status s = Put(a, "short", 20);
  EXPECT_FALSE(s.ok());
  auto list = db_->ListDurable();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  EXPECT_EQ(Read(a, 20).status().code(), Status::Code::kNotFound);
}

TEST_F(StateDbTest, ReadPayloadOfUnknownIdIsNotFound) {
  auto got = Read(ObjectID::Make(true, 1, 99), 10);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kNotFound);
}

TEST_F(StateDbTest, DeletePayloadRemovesOnlyThatPayload) {
  ObjectID a = ObjectID::Make(true, 1, 1), b = ObjectID::Make(true, 1, 2);
  const uint64_t size = 2 * StateDb::kChunk + 5;
  std::string bytes_b = MakeFile("b", size, 2);
  MakeFile("a", size, 1);
  ASSERT_TRUE(Put(a, "a", size).ok());
  ASSERT_TRUE(Put(b, "b", size).ok());
  ASSERT_TRUE(db_->DeletePayload(a).ok());
  EXPECT_EQ(Read(a, size).status().code(), Status::Code::kNotFound);
  auto got_b = Read(b, size);
  ASSERT_TRUE(got_b.ok()) << got_b.status().ToString();
  EXPECT_TRUE(*got_b == bytes_b);
  Reopen();
  EXPECT_EQ(Read(a, size).status().code(), Status::Code::kNotFound);
  auto list = db_->ListDurable();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].first, b);
  // Deleting what is not there is fine.
  EXPECT_TRUE(db_->DeletePayload(a).ok());
}

TEST_F(StateDbTest, SyncWalSucceeds) {
  JournalBatch batch;
  batch.put_objects = {BlobRecord(1, 1)};
  ASSERT_TRUE(db_->Commit(batch).ok());
  EXPECT_TRUE(db_->SyncWal().ok());
}

// Writes garbage straight into the column families with the RocksDB API, as a
// corrupt or foreign state would hold.
void InjectGarbage(const std::string& path) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descs = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                        {"objects", {}},
                                                        {"names", {}},
                                                        {"payloads", {}},
                                                        {"durable", {}}};
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  rocksdb::DB* raw = nullptr;
  rocksdb::DBOptions opts;
  ASSERT_TRUE(rocksdb::DB::Open(opts, path, descs, &cfs, &raw).ok());
  std::string key(8, '\0');
  key[7] = 0x7f;
  ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), cfs[1], key, "{this is not a record").ok());
  ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), cfs[2], "badname", "][").ok());
  for (auto* cf : cfs) raw->DestroyColumnFamilyHandle(cf);
  ASSERT_TRUE(raw->Close().ok());
  delete raw;
}

TEST_F(StateDbTest, CorruptRecordsAreReportedAndTheRestStillLoads) {
  ObjectRecord a = BlobRecord(1, 100), b = BlobRecord(2, 200);
  JournalBatch batch;
  batch.put_objects = {a, b};
  batch.put_names = {{"good", NameRecord{a.id, {}, 1}}};
  ASSERT_TRUE(db_->Commit(batch).ok());
  db_.reset();
  InjectGarbage(dir_ + "/state");
  Reopen();
  auto c = LoadAll();
  ASSERT_EQ(c.bad.size(), 2u);
  EXPECT_NE(c.bad[0].find("object record skipped"), std::string::npos) << c.bad[0];
  EXPECT_NE(c.bad[1].find("badname"), std::string::npos) << c.bad[1];
  ASSERT_EQ(c.objects.size(), 2u);
  EXPECT_EQ(c.objects[0].id, a.id);
  EXPECT_EQ(c.objects[1].id, b.id);
  ASSERT_EQ(c.names.size(), 1u);
  EXPECT_EQ(c.names[0].first, "good");
}

}  // namespace
}  // namespace vineyard
