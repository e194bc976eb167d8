// Tests store/store_batch.cc: Store::CreateBlobs, the payload files of a batch upload,
// on a real arena (a tmpfs as root) and a real RocksDB state.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store/arena.h"
#include "store/store.h"
#include "store_fixture.h"

namespace vineyard {
namespace {

class StoreBatchTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Open(Durability::kAsync, 1 << 20);
    // The upload: 3 payload ranges in one file, as a batch's payload is.
    src_path_ = root_ + "/upload";
    src_ = open(src_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(src_, 0);
    ASSERT_EQ(write(src_, payload_.data(), payload_.size()),
              static_cast<ssize_t>(payload_.size()));
  }
  void TearDown() override {
    close(src_);
    StoreTest::TearDown();
  }
  static ObjectID Id(uint64_t n) { return ObjectID::Make(true, 1, n); }

  std::string src_path_;
  int src_ = -1;
  const std::string payload_ = "HEADER\n" + std::string(5000, 'a') + "bcdefg";
};

TEST_F(StoreBatchTest, EachBlobIsItsOwnReadOnlyFileWithItsBytesAndCharge) {
  std::vector<Store::BlobRange> ranges = {
      {Id(1), 7, 5000}, {Id(2), 5007, 6}, {Id(3), 0, 0}, {Id(4), 5005, 4}};  // overlapping
  const uint64_t before = store_->stats().used;  // the tmpfs's own pages (directories)
  std::vector<ObjectID> made;
  int calls = 0;
  ASSERT_TRUE(store_->CreateBlobs(src_, ranges, &made, [&] { ++calls; }).ok());
  EXPECT_EQ(made.size(), 4u);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(ReadOrError(Id(1)), std::string(5000, 'a'));
  EXPECT_EQ(ReadOrError(Id(2)), "bcdefg");
  EXPECT_EQ(ReadOrError(Id(3)), "");
  EXPECT_EQ(ReadOrError(Id(4)), "aabc");
  for (auto& r : ranges) {
    struct stat st;
    ASSERT_EQ(stat(store_->BlobPath(r.id).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0400u) << "payloads are immutable from their creation";
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), r.size);
    EXPECT_TRUE(store_->IsResident(r.id));
  }
  // 5000 bytes take two pages, the others one each except the empty blob.
  EXPECT_EQ(store_->stats().used, before + 4u * 4096);
  store_->WakeWriter();  // CreateBlobs leaves that to its caller (one wake-up per batch)
  EXPECT_TRUE(store_->SyncBlob(Id(2)).ok()) << "queued for the durable writer";
  for (ObjectID id : made) store_->DeleteBlob(id);
  EXPECT_EQ(store_->stats().used, before) << "each blob's charge is its own";
}

TEST_F(StoreBatchTest, AFailureReportsWhatWasMadeAndLeavesNoChargeBehind) {
  // Id(2)'s file exists already: the batch stops there.
  std::vector<ObjectID> first;
  ASSERT_TRUE(store_->CreateBlobs(src_, {{Id(2), 0, 6}}, &first, nullptr).ok());
  const uint64_t used = store_->stats().used;
  std::vector<ObjectID> made;
  Status s = store_->CreateBlobs(src_, {{Id(1), 7, 100}, {Id(2), 0, 6}, {Id(3), 0, 6}}, &made,
                                 nullptr);
  EXPECT_FALSE(s.ok());
  ASSERT_EQ(made, std::vector<ObjectID>{Id(1)}) << s.ToString();
  EXPECT_EQ(store_->stats().used, used + 4096) << "only the made blob is charged";
  EXPECT_EQ(ReadOrError(Id(2)), "HEADER") << "the existing blob is untouched";
  struct stat st;
  EXPECT_NE(stat(store_->BlobPath(Id(3)).c_str(), &st), 0);
  store_->DeleteBlob(Id(1));
  EXPECT_EQ(store_->stats().used, used);
}

TEST_F(StoreBatchTest, MoreThanTheArenaIsNoSpaceAndMakesNothing) {
  std::vector<Store::BlobRange> ranges;
  for (uint64_t i = 1; i <= 300; ++i) ranges.push_back({Id(i), 0, 5});  // 300 pages > 1 MiB
  const uint64_t before = store_->stats().used;
  std::vector<ObjectID> made;
  Status s = store_->CreateBlobs(src_, ranges, &made, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kNoSpace) << s.ToString();
  EXPECT_TRUE(made.empty());
  EXPECT_EQ(store_->stats().used, before);
}

// A batch of more small blobs than the process may have open files: the files are
// not all held open until the end (for the durable writer), so it does not fail with
// EMFILE. Before: every blob file stayed open until the batch ended.
class StoreBatchFdsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0);
    rlimit low = saved_;
    low.rlim_cur = std::min<rlim_t>(saved_.rlim_cur, 512);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    Open(Durability::kAsync, 64 << 20);  // the writer's and the pool's caps from this limit
  }
  void TearDown() override {
    StoreTest::TearDown();
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  rlimit saved_{};
};

TEST_F(StoreBatchFdsTest, MoreSmallBlobsThanOpenFilesAreAllMade) {
  constexpr uint64_t kBlobs = 2000;  // ~4x the limit of 512 open files
  const std::string path = root_ + "/upload";
  int src = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(src, 0);
  std::string payload(kBlobs, 'x');
  for (uint64_t i = 0; i < kBlobs; ++i) payload[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(write(src, payload.data(), payload.size()), static_cast<ssize_t>(kBlobs));
  std::vector<Store::BlobRange> ranges;
  for (uint64_t i = 0; i < kBlobs; ++i) ranges.push_back({ObjectID::Make(true, 1, i + 1), i, 1});
  std::vector<ObjectID> made;
  Status s = store_->CreateBlobs(src, ranges, &made, nullptr);
  close(src);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(made.size(), kBlobs);
  for (uint64_t i = 0; i < kBlobs; i += 97) {
    EXPECT_EQ(ReadOrError(ranges[i].id), payload.substr(i, 1)) << i;
  }
  EXPECT_EQ(ReadOrError(ranges.back().id), payload.substr(kBlobs - 1, 1));
}

}  // namespace
}  // namespace vineyard
