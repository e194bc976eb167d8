// Tests store/store.cc: uploads and seals, durability modes, eviction and reload,
// and recovery after a restart, on a real arena directory and a real RocksDB state.
// As root, Store::Open mounts a tmpfs on the arena: the fixture unmounts it.
#include "store/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/arena.h"
#include "store/state_db.h"
#include "tests/store/temp_dir.h"

namespace vineyard {
namespace {

constexpr uint64_t kKiB = 1024;

std::string Bytes(uint64_t size, uint32_t seed) {
  std::string bytes(size, '\0');
  std::mt19937 rng(seed);
  for (auto& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.state = root_ + "/state";
    opts_.arena = root_ + "/arena";
    opts_.size = 1 << 20;
    opts_.durability = Durability::kNone;
  }
  void TearDown() override {
    store_.reset();
    // As root the store mounted a tmpfs on the arena; it outlives the Store by design.
    umount2(opts_.arena.c_str(), MNT_DETACH);
  }

  void Open(Durability durability, uint64_t size) {
    store_.reset();
    opts_.durability = durability;
    opts_.size = size;
    InstanceId instance = 1;
    auto s = Store::Open(opts_, &instance);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  ObjectID NextId() { return ObjectID::Make(true, 1, next_counter_++); }

  // Writes `bytes` through an upload and seals it as `id`.
  Status Upload(ObjectID id, const std::string& bytes) {
    auto up = store_->CreateUpload();
    if (!up.ok()) return up.status();
    Status s = store_->ReserveUpload(up->key, bytes.size());
    if (!s.ok()) {
      close(up->fd);
      store_->DropUpload(up->key);
      return s;
    }
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t w = write(up->fd, bytes.data() + done, bytes.size() - done);
      if (w <= 0) {
        close(up->fd);
        return Status::FromErrno("write upload", errno);
      }
      done += static_cast<size_t>(w);
    }
    close(up->fd);
    return store_->SealUpload(up->key, id, bytes.size());
  }

  // Opens the blob, reads all of it, closes it.
  Result<std::string> ReadBlob(ObjectID id) {
    auto fd = store_->OpenBlob(id);
    if (!fd.ok()) return fd.status();
    std::string out;
    char buf[65536];
    ssize_t n;
    off_t off = 0;
    while ((n = pread(*fd, buf, sizeof buf, off)) > 0) {
      out.append(buf, static_cast<size_t>(n));
      off += n;
    }
    close(*fd);
    store_->CloseBlob(id);
    return out;
  }

  // The durable payloads, read with the store closed.
  std::map<ObjectID, uint64_t> DurableOnDisk() {
    store_.reset();
    auto db = StateDb::Open(opts_.state, false);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) return {};
    auto list = (*db)->ListDurable();
    EXPECT_TRUE(list.ok());
    return std::map<ObjectID, uint64_t>(list->begin(), list->end());
  }

  void WipeArenaBlobs() {
    for (auto& e : std::filesystem::directory_iterator(opts_.arena + "/blobs")) {
      std::filesystem::remove(e.path());
    }
  }

  TempDir tmp_{"vy-store-test"};
  const std::string root_ = tmp_.path();
  StoreOptions opts_;
  std::unique_ptr<Store> store_;
  uint64_t next_counter_ = 1;
};

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

// ---- reserve= (store/reserve.cc) ----

constexpr uint64_t kMiB = 1024 * kKiB;

// Polls `pred` for up to 10 s.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Writes `bytes` over a CreateFill file (as a fetch does) and seals it as `id`.
Status FillAndSeal(Store* store, ObjectID id, const std::string& bytes) {
  auto up = store->CreateFill(bytes.size());
  if (!up.ok()) return up.status();
  Status s = AppendSmallPages(up->fd, bytes.data(), bytes.size(), 0);
  struct stat st;
  fstat(up->fd, &st);
  close(up->fd);
  if (s.ok() && static_cast<uint64_t>(st.st_size) != bytes.size()) {
    s = Status::IOError("fill file has " + std::to_string(st.st_size) + " bytes");
  }
  if (s.ok()) s = store->SealUpload(up->key, id, bytes.size());
  if (!s.ok()) store->DropUpload(up->key);
  return s;
}

TEST_F(StoreTest, ReserveIsWrittenAheadTakenByALargeFillAndWrittenAgain) {
  opts_.reserve = 8 * kMiB;
  Open(Durability::kNone, 64 * kMiB);
  store_->Recover({});
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  EXPECT_TRUE(FileExists(opts_.arena + "/reserve"));
  EXPECT_EQ(store_->stats().used, 8 * kMiB) << "the reserve is charged like a payload";

  // Smaller than the reserve: overwritten from the start, the tail dropped.
  ObjectID a = NextId();
  std::string bytes_a = Bytes(3 * kMiB + 5, 1);
  ASSERT_TRUE(FillAndSeal(store_.get(), a, bytes_a).ok());
  EXPECT_EQ(store_->stats().reserve_takes, 1u);
  auto got = ReadBlob(a);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes_a);

  // Written again; a payload larger than the reserve takes it and grows past it.
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  ObjectID b = NextId();
  std::string bytes_b = Bytes(11 * kMiB, 2);
  ASSERT_TRUE(FillAndSeal(store_.get(), b, bytes_b).ok());
  EXPECT_EQ(store_->stats().reserve_takes, 2u);
  got = ReadBlob(b);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == bytes_b);

  // Below 2 MiB a fill is a new file: the reserve stays.
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  ObjectID c = NextId();
  ASSERT_TRUE(FillAndSeal(store_.get(), c, Bytes(100 * kKiB, 3)).ok());
  EXPECT_EQ(store_->stats().reserve_takes, 2u);
  EXPECT_EQ(store_->stats().reserve_ready, 8 * kMiB);

  // Closing the store removes it.
  store_.reset();
  EXPECT_FALSE(FileExists(opts_.arena + "/reserve"));
}

TEST_F(StoreTest, TheNextReserveWaitsUntilThePayloadInTheLastOneIsInPlace) {
  opts_.reserve = 8 * kMiB;
  Open(Durability::kNone, 64 * kMiB);
  store_->Recover({});
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  auto up = store_->CreateFill(6 * kMiB);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->backed, 6 * kMiB) << "the reserve's pages cover the whole payload";
  // While the payload is being written the reserver leaves the cores to it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(store_->stats().reserve_ready, 0u);
  EXPECT_FALSE(FileExists(opts_.arena + "/reserve.filling"));
  std::string bytes = Bytes(6 * kMiB, 4);
  ASSERT_TRUE(AppendSmallPages(up->fd, bytes.data(), bytes.size(), 0).ok());
  close(up->fd);
  ObjectID a = NextId();
  ASSERT_TRUE(store_->SealUpload(up->key, a, bytes.size()).ok());
  EXPECT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }))
      << "sealed: the next reserve is written";
  // A payload larger than the reserve is backed only as far as the reserve goes; a
  // dropped one lets the reserver go on as well.
  up = store_->CreateFill(11 * kMiB);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->backed, 8 * kMiB);
  close(up->fd);
  store_->DropUpload(up->key);
  EXPECT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  // Below 2 MiB nothing is taken, so nothing is backed.
  up = store_->CreateFill(kMiB);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->backed, 0u);
  close(up->fd);
  store_->DropUpload(up->key);
}

// CopyIntoFill: the part over existing pages through mappings (two threads from 32
// MiB), the rest with copy_file_range; every split gives the same bytes and size.
TEST(CopyIntoFillTest, CopiesTheRangeExactlyWhateverPartIsBacked) {
  TempDir dir("vy-copy");
  const uint64_t kHeader = 128;  // an .npy header: the source range is not page-aligned
  const uint64_t len = 40 * kMiB + 5;
  std::string src_bytes = Bytes(kHeader + len + 77, 9);
  std::string src_path = dir.path() + "/src";
  int src = open(src_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(src, 0);
  ASSERT_EQ(pwrite(src, src_bytes.data(), src_bytes.size(), 0),
            static_cast<ssize_t>(src_bytes.size()));
  for (uint64_t backed : {uint64_t{0}, 3 * kMiB, 33 * kMiB, len}) {
    std::string dst_path = dir.path() + "/dst" + std::to_string(backed);
    int dst = open(dst_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(dst, 0);
    // As CreateFill leaves it: `backed` bytes of zeros already written.
    std::string zeros(backed, '\0');
    ASSERT_EQ(pwrite(dst, zeros.data(), zeros.size(), 0), static_cast<ssize_t>(backed));
    Status s = CopyIntoFill(src, kHeader, dst, len, backed);
    ASSERT_TRUE(s.ok()) << "backed " << backed << ": " << s.ToString();
    struct stat st;
    ASSERT_EQ(fstat(dst, &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), len) << "backed " << backed;
    std::string got(len, '\0');
    ASSERT_EQ(pread(dst, got.data(), len, 0), static_cast<ssize_t>(len));
    EXPECT_TRUE(got == src_bytes.substr(kHeader, len)) << "backed " << backed;
    close(dst);
  }
  close(src);
}

TEST_F(StoreTest, ReserveGoesBeforeAnyPayloadWhenRoomIsNeeded) {
  opts_.reserve = 8 * kMiB;
  Open(Durability::kSync, 16 * kMiB);
  store_->Recover({});
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 8 * kMiB; }));
  ObjectID a = NextId(), b = NextId();
  ASSERT_TRUE(Upload(a, Bytes(6 * kMiB, 1)).ok());  // fits beside the reserve
  ASSERT_TRUE(Upload(b, Bytes(6 * kMiB, 2)).ok());  // does not: the reserve goes
  auto st = store_->stats();
  EXPECT_EQ(st.evictions, 0u) << "no payload was evicted for room the reserve held";
  EXPECT_TRUE(store_->IsResident(a));
  EXPECT_TRUE(store_->IsResident(b));
  EXPECT_EQ(st.reserve_ready, 0u);
  EXPECT_FALSE(FileExists(opts_.arena + "/reserve"));
  // And no new reserve evicts them: there is no room for one.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  st = store_->stats();
  EXPECT_EQ(st.reserve_ready, 0u);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_LE(st.used, st.capacity);
}

TEST_F(StoreTest, ReserveOfMoreThanHalfTheArenaIsRefused) {
  opts_.reserve = 9 * kMiB;
  opts_.size = 16 * kMiB;
  InstanceId instance = 1;
  auto s = Store::Open(opts_, &instance);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument) << s.status().ToString();
  EXPECT_NE(s.status().message().find("half of size"), std::string::npos);
}

TEST_F(StoreTest, ReloadFromRocksDbGoesOverTheReserve) {
  opts_.reserve = 4 * kMiB;
  Open(Durability::kSync, 16 * kMiB);
  store_->Recover({});
  ObjectID a = NextId(), b = NextId();
  std::string bytes_a = Bytes(6 * kMiB, 7);
  ASSERT_TRUE(Upload(a, bytes_a).ok());
  ASSERT_TRUE(Upload(b, Bytes(6 * kMiB, 8)).ok());  // the reserve makes room
  ASSERT_TRUE(Upload(NextId(), Bytes(6 * kMiB, 9)).ok());  // evicts a (durable)
  ASSERT_FALSE(store_->IsResident(a));
  // Room for a reserve again once b is gone.
  store_->DeleteBlob(b);
  ASSERT_TRUE(Eventually([&] { return store_->stats().reserve_ready == 4 * kMiB; }));
  auto got = ReadBlob(a);  // reloads a
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes_a);
  EXPECT_EQ(store_->stats().reserve_takes, 1u);
  EXPECT_GE(store_->stats().reloads, 1u);
}

}  // namespace
}  // namespace vineyard
