// Tests store/store.cc's recovery after a restart: what Recover keeps, reloads, drops
// and reports, on a real arena directory and a real RocksDB state.
#include "store/store.h"

#include "store_fixture.h"

namespace vineyard {
namespace {

TEST_F(StoreTest, RecoverFindsBlobsWhoseArenaFileSurvived) {
  Open(Durability::kNone, 1 << 20);
  ObjectID a = NextId();
  std::string bytes = Bytes(50 * kKiB, 11);
  ASSERT_TRUE(Upload(a, bytes).ok());
  Open(Durability::kNone, 1 << 20);  // a restart; the arena (tmpfs) is still there
  EXPECT_FALSE(store_->IsResident(a));
  auto lost = store_->Recover({{a, bytes.size()}});
  EXPECT_TRUE(lost.empty());
  EXPECT_TRUE(store_->IsResident(a));
  EXPECT_EQ(store_->stats().used, PageRound(bytes.size()));
  auto got = ReadBlob(a);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes);
  EXPECT_EQ(store_->stats().reloads, 0u);
}

TEST_F(StoreTest, RecoverAfterArenaWipeReloadsDurableAndReportsTheRestLost) {
  ObjectID durable = NextId(), volatile_blob = NextId();
  std::string bytes = Bytes(70 * kKiB, 12);
  Open(Durability::kSync, 1 << 20);
  ASSERT_TRUE(Upload(durable, bytes).ok());
  Open(Durability::kNone, 1 << 20);
  ASSERT_TRUE(store_->Recover({{durable, bytes.size()}}).empty());
  ASSERT_TRUE(Upload(volatile_blob, Bytes(10 * kKiB, 13)).ok());
  store_.reset();
  WipeArenaBlobs();  // a reboot

  Open(Durability::kAsync, 1 << 20);
  auto lost = store_->Recover({{durable, bytes.size()}, {volatile_blob, 10 * kKiB}});
  EXPECT_EQ(lost, std::vector<ObjectID>{volatile_blob});
  EXPECT_FALSE(store_->IsResident(durable));
  EXPECT_EQ(store_->stats().used, 0u);
  auto got = ReadBlob(durable);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes);
  EXPECT_EQ(store_->stats().reloads, 1u);
  EXPECT_EQ(store_->OpenBlob(volatile_blob).status().code(), Status::Code::kNotFound);
}

TEST_F(StoreTest, RecoverDropsAnArenaFileOfTheWrongSize) {
  ObjectID a = NextId();
  std::string bytes = Bytes(20 * kKiB, 14);
  Open(Durability::kSync, 1 << 20);
  ASSERT_TRUE(Upload(a, bytes).ok());
  store_.reset();
  std::string path = opts_.arena + "/blobs/" + a.ToString();
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  ASSERT_EQ(truncate(path.c_str(), 100), 0);
  Open(Durability::kSync, 1 << 20);
  auto lost = store_->Recover({{a, bytes.size()}});
  EXPECT_TRUE(lost.empty()) << "the durable copy is still good";
  EXPECT_FALSE(store_->IsResident(a));
  auto got = ReadBlob(a);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes);
}

// Recover walks the table's list, the arena's and RocksDB's side by side in id order:
// a list in any order (and an id listed twice) gives the same result, orphans among
// the kept blobs go, and every kept blob is resident, durable and charged.
TEST_F(StoreTest, RecoverTakesTheTablesBlobsInAnyOrder) {
  Open(Durability::kSync, 1 << 20);
  std::vector<ObjectID> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(NextId());
    ASSERT_TRUE(Upload(ids.back(), Bytes(4 * kKiB, 20 + i)).ok());
  }
  Open(Durability::kSync, 1 << 20);
  // ids[1] and ids[4] are orphans (not in the table); the rest come reversed, one twice.
  std::vector<std::pair<ObjectID, uint64_t>> table = {
      {ids[5], 4 * kKiB}, {ids[3], 4 * kKiB}, {ids[2], 4 * kKiB}, {ids[3], 4 * kKiB},
      {ids[0], 4 * kKiB}};
  EXPECT_TRUE(store_->Recover(table).empty());
  for (int i : {0, 2, 3, 5}) {
    EXPECT_TRUE(store_->IsResident(ids[i])) << i;
    auto got = ReadBlob(ids[i]);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == Bytes(4 * kKiB, 20 + i)) << i;
  }
  for (int i : {1, 4}) EXPECT_FALSE(FileExists(store_->BlobPath(ids[i]))) << i;
  EXPECT_EQ(store_->stats().used, 4 * PageRound(4 * kKiB));
  EXPECT_EQ(store_->stats().durable, 4u);
  auto durable = DurableOnDisk();
  EXPECT_EQ(durable.size(), 4u);
  EXPECT_EQ(durable.count(ids[1]) + durable.count(ids[4]), 0u);
}

TEST_F(StoreTest, RecoverQueuesResidentButNotYetDurableBlobs) {
  ObjectID a = NextId();
  Open(Durability::kNone, 1 << 20);
  ASSERT_TRUE(Upload(a, Bytes(30 * kKiB, 15)).ok());
  Open(Durability::kAsync, 1 << 20);
  ASSERT_TRUE(store_->Recover({{a, 30 * kKiB}}).empty());
  EXPECT_TRUE(store_->SyncBlob(a).ok());
  EXPECT_EQ(store_->stats().durable, 1u);
  EXPECT_EQ(DurableOnDisk().count(a), 1u);
}

TEST_F(StoreTest, RecoverRemovesOrphanArenaFilesAndDurablePayloads) {
  ObjectID kept = NextId(), orphan = NextId();
  Open(Durability::kSync, 1 << 20);
  ASSERT_TRUE(Upload(kept, Bytes(4 * kKiB, 16)).ok());
  ASSERT_TRUE(Upload(orphan, Bytes(4 * kKiB, 17)).ok());
  Open(Durability::kSync, 1 << 20);
  std::string orphan_path = store_->BlobPath(orphan);
  ASSERT_TRUE(FileExists(orphan_path));
  auto lost = store_->Recover({{kept, 4 * kKiB}});  // the table no longer knows `orphan`
  EXPECT_TRUE(lost.empty());
  EXPECT_FALSE(FileExists(orphan_path));
  EXPECT_TRUE(FileExists(store_->BlobPath(kept)));
  EXPECT_EQ(store_->stats().used, PageRound(4 * kKiB));
  auto durable = DurableOnDisk();
  EXPECT_EQ(durable.count(orphan), 0u);
  EXPECT_EQ(durable.count(kept), 1u);
}

TEST_F(StoreTest, RecoverClearsStagingFiles) {
  Open(Durability::kNone, 1 << 20);
  auto up = store_->CreateUpload();
  ASSERT_TRUE(up.ok());
  ASSERT_EQ(write(up->fd, "unsealed", 8), 8);
  close(up->fd);
  std::string path = store_->UploadPath(up->key);
  Open(Durability::kNone, 1 << 20);
  ASSERT_TRUE(FileExists(path));
  EXPECT_TRUE(store_->Recover({}).empty());
  EXPECT_FALSE(FileExists(path));
}

TEST_F(StoreTest, RefusesStateOfAnotherInstance) {
  InstanceId instance = 5;
  {
    auto s = Store::Open(opts_, &instance);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(instance, 5u);
  }
  instance = 6;
  auto s = Store::Open(opts_, &instance);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("5"), std::string::npos) << s.status().message();
  // Unspecified: the stored one is used.
  instance = 0;
  auto again = Store::Open(opts_, &instance);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(instance, 5u);
}

TEST_F(StoreTest, FreshStateWithUnspecifiedInstanceIsInstanceOne) {
  InstanceId instance = 0;
  auto s = Store::Open(opts_, &instance);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(instance, 1u);
}

// Regression: Recover used to charge resident blobs with Arena::Charge while holding
// Store::mu_; Charge calls the evictor, which locks Store::mu_ again, so restarting
// with a smaller size= than the arena held deadlocked. Recover now charges with
// Arena::ChargeExisting. The test runs Recover on a thread and gives it 10 s; on a
// hang it leaks the stuck store rather than hanging the whole binary.
TEST_F(StoreTest, RecoverIntoASmallerArenaDoesNotDeadlockAndLaterEvictsBackUnder) {
  ObjectID a = NextId(), b = NextId();
  std::string bytes_a = Bytes(24 * kKiB, 1);
  Open(Durability::kSync, 64 * kKiB);
  ASSERT_TRUE(Upload(a, bytes_a).ok());
  ASSERT_TRUE(Upload(b, Bytes(24 * kKiB, 2)).ok());
  Open(Durability::kSync, 32 * kKiB);
  Store* store = store_.get();
  std::vector<std::pair<ObjectID, uint64_t>> blobs = {{a, 24 * kKiB}, {b, 24 * kKiB}};
  auto done = std::async(std::launch::async, [store, blobs] { return store->Recover(blobs); });
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "Recover deadlocked";
    (void)store_.release();           // stuck for good: leak it
    (void)new auto(std::move(done));  // a future's destructor would wait for the thread
    return;
  }
  EXPECT_TRUE(done.get().empty());
  // Recovery keeps what it found, even over the new capacity...
  EXPECT_TRUE(store_->IsResident(a));
  EXPECT_TRUE(store_->IsResident(b));
  EXPECT_EQ(store_->stats().used, 48 * kKiB);
  EXPECT_EQ(store_->stats().evictions, 0u);
  // ...and the next reservation evicts back under it.
  ObjectID c = NextId();
  ASSERT_TRUE(Upload(c, Bytes(4 * kKiB, 3)).ok());
  auto st = store_->stats();
  EXPECT_LE(st.used, st.capacity);
  EXPECT_GE(st.evictions, 1u);
  EXPECT_FALSE(store_->IsResident(a)) << "the least recently used goes first";
  auto got = ReadBlob(a);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes_a);
}

}  // namespace
}  // namespace vineyard
