// Tests store/blob_pool.cc and its use by Store::CreateBlobs: the empty payload files made
// ahead of a batch seal, on a real arena (a tmpfs as root) and a real RocksDB state.
#include "store/blob_pool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "store_fixture.h"

namespace vineyard {
namespace {

constexpr uint64_t kArena = 64ull << 20;  // the smallest arena with a pool: 64 files
constexpr uint64_t kPage = 4096;

class BlobPoolTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    opts_.size = kArena;
    opts_.durability = Durability::kAsync;
    src_path_ = root_ + "/upload";
    int fd = open(src_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 200; ++i) payload_ += std::string(100, static_cast<char>('A' + i % 26));
    ASSERT_EQ(write(fd, payload_.data(), payload_.size()), static_cast<ssize_t>(payload_.size()));
    close(fd);
  }
  void Open() { StoreTest::Open(Durability::kAsync, kArena); }
  static ObjectID Id(uint64_t n) { return ObjectID::Make(true, 1, n); }
  // Blob i of `n` from `first`: 100 bytes at 100 * i of the upload.
  std::vector<Store::BlobRange> Ranges(uint64_t first, uint64_t n) {
    std::vector<Store::BlobRange> out;
    for (uint64_t i = 0; i < n; ++i) out.push_back({Id(first + i), 100 * i, 100});
    return out;
  }
  Status Batch(const std::vector<Store::BlobRange>& ranges, std::vector<ObjectID>* made) {
    int src = open(src_path_.c_str(), O_RDONLY | O_CLOEXEC);
    Status s = store_->CreateBlobs(src, ranges, made, nullptr);
    close(src);
    store_->WakeWriter();
    return s;
  }
  // Waits (no deadline: ctest's timeout ends a hang) until the pool holds `n` files.
  void WaitForPool(uint64_t n) {
    while (store_->stats().pool_files < n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  std::set<std::string> ArenaFiles() {
    std::set<std::string> out;
    for (auto& e : std::filesystem::directory_iterator(opts_.arena + "/blobs")) {
      out.insert(e.path().filename().string());
    }
    return out;
  }
  // Bytes the arena tmpfs holds in pages, as statfs counts them.
  uint64_t TmpfsUsed() {
    struct statvfs st;
    EXPECT_EQ(statvfs(opts_.arena.c_str(), &st), 0);
    return (static_cast<uint64_t>(st.f_blocks) - st.f_bfree) * st.f_frsize;
  }

  std::string src_path_;
  std::string payload_;
};

TEST(BlobPoolSize, BoundedByArenaAndDescriptors) {
  EXPECT_EQ(BlobPool::SizeFor(4ull << 30, 1 << 20), 2048u);
  EXPECT_EQ(BlobPool::SizeFor(256ull << 20, 1 << 20), 256u) << "1/256 of the arena in pages";
  EXPECT_EQ(BlobPool::SizeFor(4ull << 30, 1024), 128u) << "1/8 of the descriptor limit";
  EXPECT_EQ(BlobPool::SizeFor(16ull << 20, 1 << 20), 0u) << "a small arena has no pool";
  EXPECT_EQ(BlobPool::SizeFor(4ull << 30, 256), 0u);
}

TEST_F(BlobPoolTest, FillsAfterTheFirstBatchAndServesTheNextWithTheSameResult) {
  Open();
  const uint64_t before = store_->stats().used;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(store_->stats().pool_files, 0u) << "no batch yet: the pool holds nothing";
  std::vector<ObjectID> made;
  ASSERT_TRUE(Batch(Ranges(1, 3), &made).ok());
  WaitForPool(64);
  EXPECT_EQ(store_->stats().used, before + 3 * kPage + 64 * kPage) << "a page per pool file";
  const std::set<std::string> files = ArenaFiles();
  EXPECT_EQ(files.size(), 3u) << "pool files have no name in blobs/";
  // The next batch takes 40 pool files (and one empty blob, made without one).
  std::vector<Store::BlobRange> ranges = Ranges(10, 40);
  ranges.push_back({Id(100), 0, 0});
  made.clear();
  ASSERT_TRUE(Batch(ranges, &made).ok());
  ASSERT_EQ(made.size(), 41u);
  for (const auto& r : ranges) {
    EXPECT_EQ(ReadOrError(r.id), payload_.substr(r.offset, r.size));
    struct stat st;
    ASSERT_EQ(stat(store_->BlobPath(r.id).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0400u) << "payloads are immutable from their creation";
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), r.size);
    EXPECT_EQ(st.st_nlink, 1u);
    EXPECT_TRUE(store_->SyncBlob(r.id).ok()) << "the writer read it through the kept fd";
  }
  WaitForPool(64);  // refilled after the batch
  EXPECT_EQ(store_->stats().used, before + 43 * kPage + 64 * kPage)
      << "the taken files' pages went to their blobs, the empty blob has none";
  EXPECT_EQ(TmpfsUsed(), store_->stats().used - before) << "the charge is what tmpfs holds";
  for (const auto& r : ranges) store_->DeleteBlob(r.id);
  for (ObjectID id : {Id(1), Id(2), Id(3)}) store_->DeleteBlob(id);
  EXPECT_EQ(store_->stats().used, before + 64 * kPage);
  store_.reset();
  EXPECT_EQ(TmpfsUsed(), 0u) << "closing the store frees every pool file";
}

TEST_F(BlobPoolTest, GivesWayToAChargeThatNeedsTheRoom) {
  Open();
  std::vector<ObjectID> made;
  ASSERT_TRUE(Batch(Ranges(1, 1), &made).ok());
  WaitForPool(64);
  // Everything the arena has left, pool included: the pool is dropped, nothing evicted.
  auto up = store_->CreateUpload();
  ASSERT_TRUE(up.ok());
  const uint64_t all = kArena - kPage;
  Status s = store_->ReserveUpload(up->key, all);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store_->stats().pool_files, 0u);
  EXPECT_EQ(store_->stats().evictions, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(store_->stats().pool_files, 0u) << "no refill before the next batch";
  close(up->fd);
  store_->DropUpload(up->key);
  made.clear();
  ASSERT_TRUE(Batch(Ranges(2, 1), &made).ok());
  WaitForPool(64);  // the next batch fills it again
}

TEST_F(BlobPoolTest, AKillNineLeavesNoPoolFileBehind) {
  // The child fills the pool, makes a batch from it and dies with SIGKILL mid-stream.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    InstanceId instance = 1;
    auto s = Store::Open(opts_, &instance);
    if (!s.ok()) _exit(2);
    std::unique_ptr<Store> store = std::move(*s);
    std::vector<ObjectID> made;
    int src = open(src_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (!store->CreateBlobs(src, Ranges(1, 2), &made, nullptr).ok()) _exit(3);
    while (store->stats().pool_files < 64) usleep(2000);
    made.clear();
    if (!store->CreateBlobs(src, Ranges(10, 20), &made, nullptr).ok()) _exit(4);
    while (store->stats().pool_files < 64) usleep(2000);  // refilled: 64 files open
    kill(getpid(), SIGKILL);
    _exit(5);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_EQ(ArenaFiles().size(), 22u) << "the batches' files, and no pool file";
  EXPECT_EQ(TmpfsUsed(), 22 * kPage) << "the pool's pages went with the process";
  // Remount: the blobs of the first batch are kept, the rest are orphans and go.
  Open();
  std::vector<std::pair<ObjectID, uint64_t>> table = {{Id(1), 100}, {Id(2), 100}};
  EXPECT_TRUE(store_->Recover(table).empty());
  EXPECT_EQ(ArenaFiles().size(), 2u);
  EXPECT_EQ(ReadOrError(Id(2)), payload_.substr(100, 100));
  EXPECT_EQ(store_->stats().pool_files, 0u) << "a new daemon's pool waits for a batch";
  EXPECT_EQ(TmpfsUsed(), 2 * kPage);
}

}  // namespace
}  // namespace vineyard
