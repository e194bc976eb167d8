// Tests store/recovery_scan.cc through Store::Recover: with more arena files than one
// chunk of stats (RecoveryScan::kChunk), so that the scan's thread and Recover's
// caller share them, recovery still keeps every good file, removes orphans, drops
// files of the wrong size, and reports payloads that are gone; and the same without
// the thread (Recover alone).
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "store/arena.h"
#include "store/recovery_scan.h"
#include "store/store.h"
#include "store_fixture.h"

namespace vineyard {
namespace {

class RecoveryScanTest : public StoreTest {
 protected:
  static constexpr size_t kBlobs = 3 * RecoveryScan::kChunk + 17;
  static constexpr uint64_t kBytes = 100;

  // kBlobs blobs of kBytes under durability=none (no durable copy: a payload whose
  // arena file is gone or wrong is lost), then a restart.
  void Fill() {
    Open(Durability::kNone, 64 << 20);
    for (size_t i = 0; i < kBlobs; ++i) {
      ObjectID id = NextId();
      ASSERT_TRUE(Upload(id, std::string(kBytes, 'v')).ok());
      table_.emplace_back(id, kBytes);
    }
    store_.reset();
  }
  // Every 97th file deleted, every 89th cut short (lost either way), and orphans: files
  // of ids the table does not list, among and after the table's ids.
  void Damage() {
    for (size_t i = 0; i < table_.size(); ++i) {
      const std::string path = opts_.arena + "/blobs/" + table_[i].first.ToString();
      if (i % 97 == 3) {
        ASSERT_EQ(unlink(path.c_str()), 0);
        gone_.insert(table_[i].first);
      } else if (i % 89 == 5) {
        ASSERT_EQ(chmod(path.c_str(), 0600), 0);
        ASSERT_EQ(truncate(path.c_str(), kBytes / 2), 0);
        gone_.insert(table_[i].first);
      }
    }
    for (size_t i = 0; i < 40; ++i) {
      ObjectID id = i % 2 ? NextId() : ObjectID::Make(true, 1, 1000000 + i);
      orphans_.push_back(opts_.arena + "/blobs/" + id.ToString());
      FILE* f = fopen(orphans_.back().c_str(), "w");
      ASSERT_NE(f, nullptr);
      fclose(f);
    }
  }
  void Check(const std::vector<ObjectID>& lost) {
    EXPECT_EQ(std::set<ObjectID>(lost.begin(), lost.end()), gone_);
    EXPECT_EQ(lost.size(), gone_.size()) << "each lost payload reported once";
    for (const auto& path : orphans_) EXPECT_FALSE(FileExists(path)) << path;
    size_t resident = 0;
    for (const auto& [id, size] : table_) {
      const bool want = gone_.count(id) == 0;
      EXPECT_EQ(store_->IsResident(id), want) << id.ToString();
      resident += want;
    }
    EXPECT_EQ(store_->stats().used, resident * PageRound(kBytes));
    EXPECT_GT(resident, 2 * RecoveryScan::kChunk);
  }

  std::vector<std::pair<ObjectID, uint64_t>> table_;
  std::set<ObjectID> gone_;
  std::vector<std::string> orphans_;
};

TEST_F(RecoveryScanTest, SharedStatsKeepGoodFilesDropOrphansAndWrongSizesAndReportLost) {
  Fill();
  Damage();
  Open(Durability::kNone, 64 << 20);
  store_->StartRecoveryScan();  // as ObjectStore::Open: the thread starts on its own
  Check(store_->Recover(table_));
}

TEST_F(RecoveryScanTest, WithoutTheThreadRecoverDoesAllOfItAlone) {
  Fill();
  Damage();
  Open(Durability::kNone, 64 << 20);
  Check(store_->Recover(table_));
}

TEST_F(RecoveryScanTest, AStoreClosedBeforeRecoverWaitsForItsScan) {
  Fill();
  Open(Durability::kNone, 64 << 20);
  store_->StartRecoveryScan();
  store_.reset();  // a table load that failed: the scan's thread must end cleanly
  Open(Durability::kNone, 64 << 20);
  EXPECT_TRUE(store_->Recover(table_).empty());
}

TEST(ArenaListing, IdsThenSizesThroughAThreadsOwnDirectory) {
  TempDir dir("vy-recovery-scan-test");
  auto arena = Arena::Open(dir.path(), 1 << 20);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  ObjectID a = ObjectID::Make(true, 1, 1), b = ObjectID::Make(true, 1, 2);
  for (auto [id, n] : {std::pair{a, 0}, std::pair{b, 5000}}) {
    FILE* f = fopen((dir.path() + "/blobs/" + id.ToString()).c_str(), "w");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(ftruncate(fileno(f), n), 0);
    fclose(f);
  }
  FILE* f = fopen((dir.path() + "/blobs/not-an-id").c_str(), "w");
  fclose(f);
  auto ids = (*arena)->ListBlobIds();
  EXPECT_EQ(std::set<ObjectID>(ids.begin(), ids.end()), (std::set<ObjectID>{a, b}));
  int fd = (*arena)->OpenBlobsDir();
  ASSERT_GE(fd, 0);
  uint64_t size = 1;
  EXPECT_TRUE((*arena)->BlobFileSize(fd, a, &size));
  EXPECT_EQ(size, 0u);
  EXPECT_TRUE((*arena)->BlobFileSize(fd, b, &size));
  EXPECT_EQ(size, 5000u);
  ASSERT_EQ(unlink((dir.path() + "/blobs/" + b.ToString()).c_str()), 0);
  EXPECT_FALSE((*arena)->BlobFileSize(fd, b, &size)) << "gone since the listing";
  close(fd);
}

}  // namespace
}  // namespace vineyard
