// Tests store/store.cc: uploads and seals, durability modes, eviction and delete, on a
// real arena directory and a real RocksDB state (store_fixture.h). Recovery after a
// restart is in store_recover_test.cc, reserve= in store_reserve_test.cc.
#include "store/store.h"

#include "store_fixture.h"

namespace vineyard {
namespace {

TEST_F(StoreTest, SealedUploadReadsBackTheSameBytes) {
  Open(Durability::kNone, 4 << 20);
  ObjectID id = NextId();
  std::string bytes = Bytes((1 << 20) + 123, 1);
  ASSERT_TRUE(Upload(id, bytes).ok());
  EXPECT_TRUE(store_->IsResident(id));
  auto got = ReadBlob(id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->size(), bytes.size());
  EXPECT_TRUE(*got == bytes);
  EXPECT_TRUE(FileExists(store_->BlobPath(id)));
  auto st = store_->stats();
  EXPECT_EQ(st.resident, 1u);
  EXPECT_EQ(st.used, PageRound(bytes.size()));
  EXPECT_EQ(st.capacity, uint64_t{4} << 20);
}

TEST_F(StoreTest, SealedPayloadFileIsReadOnlyAndTheUploadFileIsGone) {
  Open(Durability::kNone, 1 << 20);
  auto up = store_->CreateUpload();
  ASSERT_TRUE(up.ok());
  std::string path = store_->UploadPath(up->key);
  ASSERT_TRUE(FileExists(path));
  ASSERT_TRUE(store_->ReserveUpload(up->key, 5).ok());
  ASSERT_EQ(write(up->fd, "hello", 5), 5);
  close(up->fd);
  ObjectID id = NextId();
  ASSERT_TRUE(store_->SealUpload(up->key, id, 5).ok());
  EXPECT_FALSE(FileExists(path));
  struct stat st;
  ASSERT_EQ(stat(store_->BlobPath(id).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u) << "payloads are immutable";
  EXPECT_EQ(*ReadBlob(id), "hello");
}

TEST_F(StoreTest, AsRootTheArenaIsATmpfsThatOutlivesTheStore) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount tmpfs";
  Open(Durability::kNone, 1 << 20);
  EXPECT_TRUE(store_->mounted_tmpfs());
  EXPECT_TRUE(IsTmpfsMountPoint(opts_.arena));
  Open(Durability::kNone, 1 << 20);
  EXPECT_FALSE(store_->mounted_tmpfs()) << "the existing tmpfs is reused";
  EXPECT_TRUE(IsTmpfsMountPoint(opts_.arena));
}

TEST_F(StoreTest, DropUploadRemovesTheFileAndItsCharge) {
  Open(Durability::kNone, 1 << 20);
  auto up = store_->CreateUpload();
  ASSERT_TRUE(up.ok());
  close(up->fd);
  ASSERT_TRUE(store_->ReserveUpload(up->key, 10000).ok());
  EXPECT_EQ(store_->stats().used, PageRound(10000));
  store_->DropUpload(up->key);
  EXPECT_FALSE(FileExists(store_->UploadPath(up->key)));
  EXPECT_EQ(store_->stats().used, 0u);
}

TEST_F(StoreTest, ReserveLargerThanTheArenaIsNoSpace) {
  Open(Durability::kNone, 64 * kKiB);
  auto up = store_->CreateUpload();
  ASSERT_TRUE(up.ok());
  close(up->fd);
  Status s = store_->ReserveUpload(up->key, 64 * kKiB + 1);
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_EQ(store_->stats().used, 0u);
}

TEST_F(StoreTest, SyncDurabilityMakesThePayloadDurableBeforeSealReturns) {
  Open(Durability::kSync, 1 << 20);
  ObjectID id = NextId();
  std::string bytes = Bytes(300 * kKiB, 2);
  ASSERT_TRUE(Upload(id, bytes).ok());
  auto st = store_->stats();
  EXPECT_EQ(st.durable, 1u) << "durable on return, not later";
  EXPECT_EQ(st.pending_durable, 0u);
  EXPECT_TRUE(store_->SyncBlob(id).ok());
  auto durable = DurableOnDisk();
  EXPECT_EQ(durable, (std::map<ObjectID, uint64_t>{{id, bytes.size()}}));
}

TEST_F(StoreTest, AsyncDurabilitySyncBlobWaitsUntilDurable) {
  Open(Durability::kAsync, 8 << 20);
  std::vector<std::pair<ObjectID, std::string>> blobs;
  for (int i = 0; i < 5; ++i) {
    blobs.emplace_back(NextId(), Bytes((1 << 20) + i, 10 + i));
    ASSERT_TRUE(Upload(blobs.back().first, blobs.back().second).ok());
  }
  // The last one sealed is the last one the writer copies.
  ASSERT_TRUE(store_->SyncBlob(blobs.back().first).ok());
  for (auto& [id, bytes] : blobs) EXPECT_TRUE(store_->SyncBlob(id).ok());
  auto st = store_->stats();
  EXPECT_EQ(st.durable, 5u);
  EXPECT_EQ(st.pending_durable, 0u);
  EXPECT_EQ(st.durable_errors, 0u);
  auto durable = DurableOnDisk();
  ASSERT_EQ(durable.size(), 5u);
  for (auto& [id, bytes] : blobs) EXPECT_EQ(durable[id], bytes.size());
}

TEST_F(StoreTest, AsyncDurabilityFinishesPendingWritesOnClose) {
  Open(Durability::kAsync, 8 << 20);
  ObjectID id = NextId();
  ASSERT_TRUE(Upload(id, Bytes(2 << 20, 3)).ok());
  // No SyncBlob: the destructor drains the queue.
  auto durable = DurableOnDisk();
  EXPECT_EQ(durable.count(id), 1u);
}

TEST_F(StoreTest, AsyncWriterBatchesManySmallAndLargePayloadsAndEveryOneComesBack) {
  // More small blobs than one batch of the writer holds, an empty one, and one over a
  // chunk (written alone), sealed back to back: each is durable with its own bytes.
  Open(Durability::kAsync, 64 << 20);
  std::map<ObjectID, std::string> written;
  for (uint32_t i = 0; i < 600; ++i) {
    ObjectID id = NextId();
    written[id] = Bytes(i == 0 ? 0 : (i % 50 == 0 ? (3 << 20) / 2 : 1000 + i), 100 + i);
    ASSERT_TRUE(Upload(id, written[id]).ok());
  }
  for (auto& [id, bytes] : written) ASSERT_TRUE(store_->SyncBlob(id).ok()) << id.ToString();
  EXPECT_EQ(store_->stats().durable_errors, 0u);
  auto durable = DurableOnDisk();
  ASSERT_EQ(durable.size(), written.size());
  WipeArenaBlobs();  // every byte must now come from RocksDB
  Open(Durability::kAsync, 64 << 20);
  std::vector<std::pair<ObjectID, uint64_t>> known;
  for (auto& [id, bytes] : written) known.emplace_back(id, bytes.size());
  ASSERT_TRUE(store_->Recover(known).empty());
  for (auto& [id, bytes] : written) {
    EXPECT_EQ(durable[id], bytes.size());
    auto got = ReadBlob(id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == bytes) << id.ToString();
  }
}

TEST_F(StoreTest, NoneDurabilityNeverWritesPayloads) {
  Open(Durability::kNone, 1 << 20);
  ObjectID id = NextId();
  ASSERT_TRUE(Upload(id, Bytes(1000, 4)).ok());
  EXPECT_TRUE(store_->SyncBlob(id).ok());
  EXPECT_EQ(store_->stats().durable, 0u);
  EXPECT_TRUE(DurableOnDisk().empty());
}

TEST_F(StoreTest, SealingABlobEvictsTheLeastRecentlyUsedDurableOne) {
  Open(Durability::kSync, 64 * kKiB);
  ObjectID a = NextId(), b = NextId();
  std::string bytes_a = Bytes(40 * kKiB, 5), bytes_b = Bytes(40 * kKiB, 6);
  ASSERT_TRUE(Upload(a, bytes_a).ok());
  ASSERT_TRUE(Upload(b, bytes_b).ok()) << "a durable blob should have made room";
  auto st = store_->stats();
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_FALSE(store_->IsResident(a));
  EXPECT_FALSE(FileExists(store_->BlobPath(a)));
  EXPECT_TRUE(store_->IsResident(b));
  EXPECT_LE(st.used, st.capacity);

  // The evicted blob comes back from RocksDB, identical, evicting b in turn.
  auto got = ReadBlob(a);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes_a);
  st = store_->stats();
  EXPECT_EQ(st.reloads, 1u);
  EXPECT_EQ(st.evictions, 2u);
  EXPECT_TRUE(store_->IsResident(a));
  EXPECT_FALSE(store_->IsResident(b));
  got = ReadBlob(b);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes_b);
  EXPECT_EQ(store_->stats().reloads, 2u);
}

TEST_F(StoreTest, AsyncBlobIsEvictableOnceDurable) {
  Open(Durability::kAsync, 64 * kKiB);
  ObjectID a = NextId(), b = NextId();
  std::string bytes_a = Bytes(40 * kKiB, 7);
  ASSERT_TRUE(Upload(a, bytes_a).ok());
  ASSERT_TRUE(store_->SyncBlob(a).ok());
  ASSERT_TRUE(Upload(b, Bytes(40 * kKiB, 8)).ok());
  EXPECT_EQ(store_->stats().evictions, 1u);
  EXPECT_FALSE(store_->IsResident(a));
  ASSERT_TRUE(store_->SyncBlob(b).ok());
  auto got = ReadBlob(a);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes_a);
}

TEST_F(StoreTest, EvictionPrefersTheLeastRecentlyUsed) {
  Open(Durability::kSync, 64 * kKiB);
  ObjectID a = NextId(), b = NextId(), c = NextId();
  ASSERT_TRUE(Upload(a, Bytes(24 * kKiB, 1)).ok());
  ASSERT_TRUE(Upload(b, Bytes(24 * kKiB, 2)).ok());
  ASSERT_TRUE(ReadBlob(a).ok());  // a is now more recently used than b
  ASSERT_TRUE(Upload(c, Bytes(24 * kKiB, 3)).ok());
  EXPECT_TRUE(store_->IsResident(a));
  EXPECT_FALSE(store_->IsResident(b));
  EXPECT_TRUE(store_->IsResident(c));
  EXPECT_EQ(store_->stats().evictions, 1u);
}

TEST_F(StoreTest, PinnedBlobIsNotEvictedAndReserveFailsWithNoSpace) {
  Open(Durability::kSync, 64 * kKiB);
  ObjectID a = NextId();
  std::string bytes_a = Bytes(40 * kKiB, 9);
  ASSERT_TRUE(Upload(a, bytes_a).ok());
  auto fd = store_->OpenBlob(a);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  uint64_t used = store_->stats().used;

  auto up = store_->CreateUpload();
  ASSERT_TRUE(up.ok());
  close(up->fd);
  Status s = store_->ReserveUpload(up->key, 40 * kKiB);
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_TRUE(store_->IsResident(a));
  EXPECT_TRUE(FileExists(store_->BlobPath(a)));
  EXPECT_EQ(store_->stats().evictions, 0u);
  EXPECT_EQ(store_->stats().used, used) << "a failed reservation changes nothing";

  // Unpinned, it may go.
  close(*fd);
  store_->CloseBlob(a);
  EXPECT_TRUE(store_->ReserveUpload(up->key, 40 * kKiB).ok());
  EXPECT_EQ(store_->stats().evictions, 1u);
  EXPECT_FALSE(store_->IsResident(a));
  store_->DropUpload(up->key);
}

TEST_F(StoreTest, NonDurableBlobIsNeverEvicted) {
  Open(Durability::kNone, 64 * kKiB);
  ObjectID a = NextId();
  ASSERT_TRUE(Upload(a, Bytes(40 * kKiB, 1)).ok());
  Status s = Upload(NextId(), Bytes(40 * kKiB, 2));
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_TRUE(store_->IsResident(a));
  EXPECT_EQ(store_->stats().evictions, 0u);
  EXPECT_EQ(store_->stats().used, PageRound(40 * kKiB));
}

TEST_F(StoreTest, DeleteBlobFreesArenaAndDurableCopy) {
  Open(Durability::kSync, 1 << 20);
  ObjectID a = NextId(), b = NextId();
  ASSERT_TRUE(Upload(a, Bytes(10 * kKiB, 1)).ok());
  ASSERT_TRUE(Upload(b, Bytes(10 * kKiB, 2)).ok());
  store_->DeleteBlob(a);
  EXPECT_FALSE(store_->IsResident(a));
  EXPECT_FALSE(FileExists(store_->BlobPath(a)));
  EXPECT_EQ(store_->OpenBlob(a).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->stats().used, PageRound(10 * kKiB));
  auto durable = DurableOnDisk();
  EXPECT_EQ(durable.count(a), 0u);
  EXPECT_EQ(durable.count(b), 1u);
}

TEST_F(StoreTest, OpenBlobOfUnknownIdIsNotFound) {
  Open(Durability::kNone, 1 << 20);
  EXPECT_EQ(store_->OpenBlob(NextId()).status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace vineyard
