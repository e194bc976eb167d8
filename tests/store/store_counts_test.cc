// Tests the counts Store::stats() reports (resident, durable) through every change of a
// blob's state: seal, durable copy, eviction, reload, delete, restart and recovery. The
// store keeps them as the flags change rather than walking its blobs per status.json.
#include "store/store.h"

#include "store_fixture.h"

namespace vineyard {
namespace {

struct Counts {
  uint64_t resident, durable;
  bool operator==(const Counts& o) const { return resident == o.resident && durable == o.durable; }
};

std::ostream& operator<<(std::ostream& os, const Counts& c) {
  return os << "{resident " << c.resident << ", durable " << c.durable << "}";
}

class StoreCounts : public StoreTest {
 protected:
  Counts Now() {
    auto st = store_->stats();
    return {st.resident, st.durable};
  }
};

TEST_F(StoreCounts, FollowSealsDurableCopiesEvictionsReloadsDeletesAndRecovery) {
  Open(Durability::kAsync, 100 * kKiB);
  ObjectID a = NextId(), b = NextId(), c = NextId();
  ASSERT_TRUE(Upload(a, Bytes(40 * kKiB, 1)).ok());
  ASSERT_TRUE(Upload(b, Bytes(40 * kKiB, 2)).ok());
  EXPECT_EQ(Now().resident, 2u);
  ASSERT_TRUE(store_->SyncBlob(a).ok());
  ASSERT_TRUE(store_->SyncBlob(b).ok());
  EXPECT_EQ(Now(), (Counts{2, 2}));

  ASSERT_TRUE(Upload(c, Bytes(40 * kKiB, 3)).ok());  // evicts a, the least recent
  ASSERT_EQ(store_->stats().evictions, 1u);
  ASSERT_TRUE(store_->SyncBlob(c).ok());
  EXPECT_EQ(Now(), (Counts{2, 3}));

  ASSERT_TRUE(ReadBlob(a).ok());  // reloads a, evicting b
  ASSERT_EQ(store_->stats().reloads, 1u);
  EXPECT_EQ(Now(), (Counts{2, 3}));

  store_->DeleteBlob(c);
  EXPECT_EQ(Now(), (Counts{1, 2}));
  store_->DeleteBlob(b);  // not resident
  EXPECT_EQ(Now(), (Counts{1, 1}));
  store_->DeleteBlob(b);  // twice: nothing left to count
  EXPECT_EQ(Now(), (Counts{1, 1}));

  Open(Durability::kAsync, 100 * kKiB);  // a restart with the arena kept
  EXPECT_EQ(Now(), (Counts{0, 0}));
  ASSERT_TRUE(store_->Recover({{a, 40 * kKiB}}).empty());
  EXPECT_EQ(Now(), (Counts{1, 1}));
}

}  // namespace
}  // namespace vineyard
