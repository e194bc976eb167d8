// Eviction and reload racing on the same blob. Store::Evict used to mark a victim not
// resident under the store's lock and unlink its payload file after letting the lock go:
// a reload of that blob on another thread in between put its file back in place, which
// the late unlink then removed (and its charge with it), so the reloaded blob's open
// failed or its bytes were gone. Evict (and DeleteBlob) now move the file out of blobs/
// under the lock. Two threads read four blobs of which three fit in the arena, so every
// read reloads one and evicts another; every read must return the blob's own bytes.
#include <atomic>

#include "store/store.h"
#include "store_fixture.h"

namespace vineyard {
namespace {

class StoreEvictRace : public StoreTest {};

TEST_F(StoreEvictRace, AReloadNeverLosesItsFileToAnEvictionOfTheSameBlob) {
  constexpr uint64_t kSize = 40 * kKiB;
  Open(Durability::kSync, 3 * kSize + 8 * kKiB);  // three fit, the fourth evicts
  std::vector<ObjectID> ids;
  std::vector<std::string> bytes;
  for (uint32_t i = 0; i < 4; ++i) {
    ids.push_back(NextId());
    bytes.push_back(Bytes(kSize, 100 + i));
    ASSERT_TRUE(Upload(ids.back(), bytes.back()).ok());
  }
  constexpr int kReads = 3000;
  std::atomic<int> wrong{0}, failed{0};
  std::string first_error;
  std::mutex error_mu;
  auto reader = [&](int start) {
    for (int n = 0; n < kReads; ++n) {
      size_t i = static_cast<size_t>(start + n) % ids.size();
      auto got = ReadBlob(ids[i]);
      if (!got.ok()) {
        ++failed;
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.empty()) first_error = got.status().ToString();
      } else if (*got != bytes[i]) {
        ++wrong;
      }
    }
  };
  std::thread a(reader, 0), b(reader, 2);
  a.join();
  b.join();
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_EQ(wrong.load(), 0);
  auto st = store_->stats();
  EXPECT_GT(st.reloads, 100u);  // the reads did reload and evict
  EXPECT_LE(st.used, st.capacity);
  // Every blob still reads back whole, and the arena holds exactly the resident ones.
  for (size_t i = 0; i < ids.size(); ++i) {
    auto got = ReadBlob(ids[i]);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, bytes[i]);
  }
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(opts_.arena + "/blobs")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, store_->stats().resident);
}

}  // namespace
}  // namespace vineyard
