// Tests store/arena.cc: page accounting, eviction on a full arena, staging files and
// the recovery listing of blob files. The arena is a plain temp directory here.
#include "store/arena.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/store/temp_dir.h"

namespace vineyard {
namespace {

constexpr uint64_t kPage = 4096;

class ArenaTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(16 * kPage); }
  void TearDown() override { arena_.reset(); }
  void Open(uint64_t capacity) {
    auto a = Arena::Open(dir_, capacity);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    arena_ = std::move(*a);
  }
  static void WriteFile(const std::string& path, size_t size) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0) << path;
    std::string bytes(size, 'x');
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(size));
    close(fd);
  }
  static bool FileExists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
  }

  TempDir tmp_{"vy-arena-test"};
  const std::string dir_ = tmp_.path();
  std::unique_ptr<Arena> arena_;
};

TEST(PageRound, RoundsUpToWholeFourKiBPages) {
  EXPECT_EQ(PageRound(0), 0u);
  EXPECT_EQ(PageRound(1), kPage);
  EXPECT_EQ(PageRound(kPage - 1), kPage);
  EXPECT_EQ(PageRound(kPage), kPage);
  EXPECT_EQ(PageRound(kPage + 1), 2 * kPage);
  EXPECT_EQ(PageRound(uint64_t{1} << 40), uint64_t{1} << 40);
}

TEST_F(ArenaTest, OpenPreparesTheLayout) {
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/blobs").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(stat((dir_ + "/staging").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(arena_->capacity(), 16 * kPage);
  EXPECT_EQ(arena_->used(), 0u);
  // Reopening an existing layout is fine.
  Open(8 * kPage);
  EXPECT_EQ(arena_->capacity(), 8 * kPage);
}

TEST_F(ArenaTest, OpenFailsWhenTheDirectoryIsMissing) {
  auto a = Arena::Open(dir_ + "/does/not/exist", kPage);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Status::Code::kIOError);
}

TEST_F(ArenaTest, PathsAreUnderBlobsAndStaging) {
  ObjectID id = ObjectID::Make(true, 1, 2);
  EXPECT_EQ(arena_->BlobPath(id), dir_ + "/blobs/o8001000000000002");
  EXPECT_EQ(arena_->StagingPath(7), dir_ + "/staging/7");
}

TEST_F(ArenaTest, ChargeWithinCapacityIsPageRounded) {
  ASSERT_TRUE(arena_->Charge(1, 1).ok());
  EXPECT_EQ(arena_->used(), kPage);
  ASSERT_TRUE(arena_->Charge(2, 3 * kPage + 5).ok());
  EXPECT_EQ(arena_->used(), 5 * kPage);
  ASSERT_TRUE(arena_->Charge(3, 0).ok());
  EXPECT_EQ(arena_->used(), 5 * kPage);
}

TEST_F(ArenaTest, ChargeGrowsAndShrinksAKeysCharge) {
  ASSERT_TRUE(arena_->Charge(1, 2 * kPage).ok());
  ASSERT_TRUE(arena_->Charge(1, 5 * kPage).ok());
  EXPECT_EQ(arena_->used(), 5 * kPage);
  ASSERT_TRUE(arena_->Charge(1, 100).ok());
  EXPECT_EQ(arena_->used(), kPage);
  arena_->Uncharge(1);
  EXPECT_EQ(arena_->used(), 0u);
  arena_->Uncharge(1);  // twice is harmless
  arena_->Uncharge(99);
  EXPECT_EQ(arena_->used(), 0u);
}

TEST_F(ArenaTest, FillsExactlyToCapacity) {
  ASSERT_TRUE(arena_->Charge(1, 10 * kPage).ok());
  ASSERT_TRUE(arena_->Charge(2, 6 * kPage).ok());
  EXPECT_EQ(arena_->used(), arena_->capacity());
  EXPECT_EQ(arena_->Charge(3, 1).code(), Status::Code::kNoSpace);
}

TEST_F(ArenaTest, RefusesBlobLargerThanCapacity) {
  int calls = 0;
  arena_->SetEvictor([&](uint64_t) {
    ++calls;
    return uint64_t{0};
  });
  ASSERT_TRUE(arena_->Charge(1, kPage).ok());
  Status s = arena_->Charge(2, 16 * kPage + 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_EQ(calls, 0) << "nothing could make room for it: no need to evict";
  EXPECT_EQ(arena_->used(), kPage);
}

TEST_F(ArenaTest, EvictorIsAskedForTheShortfallAndARetrySucceeds) {
  ASSERT_TRUE(arena_->Charge(1, 8 * kPage).ok());
  ASSERT_TRUE(arena_->Charge(2, 6 * kPage).ok());
  std::vector<uint64_t> asked;
  arena_->SetEvictor([&](uint64_t bytes) {
    asked.push_back(bytes);
    arena_->Uncharge(1);  // as the store does: unlink the file, then uncharge it
    return 8 * kPage;
  });
  ASSERT_TRUE(arena_->Charge(3, 5 * kPage - 10).ok());
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], 3 * kPage);  // 8 + 6 + 5 pages wanted, 16 available
  EXPECT_EQ(arena_->used(), 11 * kPage);
}

TEST_F(ArenaTest, GrowingAKeyAsksOnlyForTheDifference) {
  ASSERT_TRUE(arena_->Charge(1, 10 * kPage).ok());
  ASSERT_TRUE(arena_->Charge(2, 4 * kPage).ok());
  std::vector<uint64_t> asked;
  arena_->SetEvictor([&](uint64_t bytes) {
    asked.push_back(bytes);
    arena_->Uncharge(2);
    return 4 * kPage;
  });
  ASSERT_TRUE(arena_->Charge(1, 13 * kPage).ok());
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], kPage);
  EXPECT_EQ(arena_->used(), 13 * kPage);
}

TEST_F(ArenaTest, NoSpaceWhenTheEvictorFreesNothingAndNothingChanges) {
  ASSERT_TRUE(arena_->Charge(1, 10 * kPage).ok());
  ASSERT_TRUE(arena_->Charge(2, 4 * kPage).ok());
  int calls = 0;
  arena_->SetEvictor([&](uint64_t) {
    ++calls;
    return uint64_t{0};
  });
  Status s = arena_->Charge(3, 4 * kPage);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(arena_->used(), 14 * kPage);
  // A failed grow keeps the old charge: uncharging key 2 frees exactly its 4 pages.
  EXPECT_EQ(arena_->Charge(2, 8 * kPage).code(), Status::Code::kNoSpace);
  EXPECT_EQ(arena_->used(), 14 * kPage);
  arena_->Uncharge(2);
  EXPECT_EQ(arena_->used(), 10 * kPage);
  // The failed key 3 holds no charge.
  arena_->Uncharge(3);
  EXPECT_EQ(arena_->used(), 10 * kPage);
}

TEST_F(ArenaTest, WhenAnotherChargeTakesWhatAnEvictionFreedTheEvictorIsAskedAgain) {
  ASSERT_TRUE(arena_->Charge(1, 8 * kPage).ok());
  ASSERT_TRUE(arena_->Charge(2, 8 * kPage).ok());
  int calls = 0;
  arena_->SetEvictor([&](uint64_t) {
    if (++calls == 1) {
      arena_->Uncharge(1);
      // Another thread's charge, between the eviction and the check, takes the room.
      EXPECT_TRUE(arena_->Charge(9, 8 * kPage, false).ok());
      return 8 * kPage;
    }
    arena_->Uncharge(2);
    return 8 * kPage;
  });
  ASSERT_TRUE(arena_->Charge(3, 4 * kPage).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(arena_->used(), 12 * kPage);
}

TEST_F(ArenaTest, NoSpaceWithoutAnEvictor) {
  ASSERT_TRUE(arena_->Charge(1, 16 * kPage).ok());
  EXPECT_EQ(arena_->Charge(2, 1).code(), Status::Code::kNoSpace);
  EXPECT_EQ(arena_->used(), 16 * kPage);
}

TEST_F(ArenaTest, NoSpaceWhenTheEvictorFreesTooLittle) {
  ASSERT_TRUE(arena_->Charge(1, 2 * kPage).ok());
  ASSERT_TRUE(arena_->Charge(2, 12 * kPage).ok());
  arena_->SetEvictor([&](uint64_t) {
    arena_->Uncharge(1);
    return 2 * kPage;
  });
  EXPECT_EQ(arena_->Charge(3, 6 * kPage).code(), Status::Code::kNoSpace);
  EXPECT_EQ(arena_->used(), 12 * kPage);
}

TEST_F(ArenaTest, ChargeExistingNeverEvictsEvenOverCapacity) {
  int calls = 0;
  arena_->SetEvictor([&](uint64_t) {
    ++calls;
    return uint64_t{0};
  });
  arena_->ChargeExisting(1, 10 * kPage);
  arena_->ChargeExisting(2, 10 * kPage - 1);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(arena_->used(), 20 * kPage);
  // Re-charging a key replaces its charge rather than adding to it.
  arena_->ChargeExisting(2, 4 * kPage);
  EXPECT_EQ(arena_->used(), 14 * kPage);
}

TEST_F(ArenaTest, ChargeAfterChargeExistingEvictsBackUnderCapacity) {
  arena_->ChargeExisting(1, 12 * kPage);
  arena_->ChargeExisting(2, 8 * kPage);
  std::vector<uint64_t> asked;
  arena_->SetEvictor([&](uint64_t bytes) {
    asked.push_back(bytes);
    arena_->Uncharge(1);
    return 12 * kPage;
  });
  ASSERT_TRUE(arena_->Charge(3, kPage).ok());
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], 5 * kPage);  // 21 pages wanted, 16 available
  EXPECT_EQ(arena_->used(), 9 * kPage);
}

TEST_F(ArenaTest, MoveChargeTransfersWithoutChangingUsage) {
  ObjectID id = ObjectID::Make(true, 1, 9);
  ASSERT_TRUE(arena_->Charge(5, 3 * kPage).ok());
  arena_->MoveCharge(5, id.raw());
  EXPECT_EQ(arena_->used(), 3 * kPage);
  arena_->Uncharge(5);  // the staging key holds nothing any more
  EXPECT_EQ(arena_->used(), 3 * kPage);
  arena_->Uncharge(id.raw());
  EXPECT_EQ(arena_->used(), 0u);
}

TEST_F(ArenaTest, MoveChargeOntoAChargedKeyReplacesItsCharge) {
  ASSERT_TRUE(arena_->Charge(1, 2 * kPage).ok());
  ASSERT_TRUE(arena_->Charge(2, 5 * kPage).ok());
  arena_->MoveCharge(1, 2);
  EXPECT_EQ(arena_->used(), 2 * kPage);
  arena_->Uncharge(2);
  EXPECT_EQ(arena_->used(), 0u);
}

TEST_F(ArenaTest, CreateStagingMakesDistinctWritableFiles) {
  auto a = arena_->CreateStaging();
  auto b = arena_->CreateStaging();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->first, b->first);
  EXPECT_TRUE(FileExists(arena_->StagingPath(a->first)));
  EXPECT_TRUE(FileExists(arena_->StagingPath(b->first)));
  ASSERT_EQ(write(a->second, "hello", 5), 5);
  struct stat st;
  ASSERT_EQ(stat(arena_->StagingPath(a->first).c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 5);
  close(a->second);
  close(b->second);
  EXPECT_EQ(arena_->used(), 0u) << "creating a file charges nothing until Charge";
}

TEST_F(ArenaTest, ClearStagingRemovesEveryStagingFile) {
  std::vector<uint64_t> keys;
  for (int i = 0; i < 3; ++i) {
    auto s = arena_->CreateStaging();
    ASSERT_TRUE(s.ok());
    close(s->second);
    keys.push_back(s->first);
  }
  WriteFile(dir_ + "/staging/leftover-of-a-previous-run", 10);
  ObjectID id = ObjectID::Make(true, 1, 3);
  WriteFile(arena_->BlobPath(id), 10);
  arena_->ClearStaging();
  for (uint64_t k : keys) EXPECT_FALSE(FileExists(arena_->StagingPath(k)));
  EXPECT_FALSE(FileExists(dir_ + "/staging/leftover-of-a-previous-run"));
  EXPECT_TRUE(FileExists(arena_->BlobPath(id))) << "blobs are not staging files";
}

TEST_F(ArenaTest, ListBlobsReportsIdsAndSizesAndIgnoresStrays) {
  ObjectID a = ObjectID::Make(true, 1, 1), b = ObjectID::Make(true, 1, 2);
  WriteFile(arena_->BlobPath(a), 0);
  WriteFile(arena_->BlobPath(b), 5000);
  WriteFile(dir_ + "/blobs/not-an-id", 3);
  WriteFile(dir_ + "/blobs/" + b.ToString() + ".reload", 3);
  auto list = arena_->ListBlobs();
  std::map<ObjectID, uint64_t> got(list.begin(), list.end());
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(got, (std::map<ObjectID, uint64_t>{{a, 0}, {b, 5000}}));
}

TEST_F(ArenaTest, ListBlobsOfAnEmptyArenaIsEmpty) { EXPECT_TRUE(arena_->ListBlobs().empty()); }

}  // namespace
}  // namespace vineyard
