// Tests store/sharded_map.h: the map behaves as the std::unordered_map it replaces
// (find/end, emplace, operator[], at, erase, count, size, stable references), and a
// growth rehashes one part at a time, never the whole map.
#include "store/sharded_map.h"

#include <gtest/gtest.h>

#include <unordered_map>
#include <vector>

namespace vineyard {
namespace {

TEST(ShardedMap, BehavesAsTheUnorderedMapItReplaces) {
  ShardedMap<uint64_t, uint64_t> m;
  std::unordered_map<uint64_t, uint64_t> want;
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(m.find(7) == m.end());
  for (uint64_t k = 0; k < 20000; k += 3) {
    auto [it, fresh] = m.emplace(k, k * 2);
    EXPECT_TRUE(fresh);
    EXPECT_EQ(it->second, k * 2);
    want[k] = k * 2;
  }
  EXPECT_FALSE(m.emplace(3, 1).second) << "emplace keeps what is there";
  m[4] = 44;  // operator[] inserts
  want[4] = 44;
  m.at(6) = 66;
  want[6] = 66;
  EXPECT_EQ(m.erase(9), 1u);
  EXPECT_EQ(m.erase(9), 0u);
  want.erase(9);
  auto it = m.find(12);
  ASSERT_TRUE(it != m.end());
  m.erase(it);
  want.erase(12);
  EXPECT_EQ(m.size(), want.size());
  for (uint64_t k = 0; k < 20000; ++k) {
    auto w = want.find(k);
    auto g = m.find(k);
    ASSERT_EQ(g == m.end(), w == want.end()) << k;
    EXPECT_EQ(m.count(k), want.count(k));
    if (w != want.end()) {
      EXPECT_EQ(g->second, w->second);
    }
  }
  const auto& c = m;
  EXPECT_TRUE(c.find(9) == c.end());
  EXPECT_EQ(c.at(6), 66u);
}

TEST(ShardedMap, ReferencesSurviveGrowth) {
  ShardedMap<uint64_t, uint64_t> m;
  std::vector<uint64_t*> refs;
  for (uint64_t k = 0; k < 1000; ++k) refs.push_back(&m[k]);
  for (uint64_t k = 1000; k < 100000; ++k) m[k] = k;
  for (uint64_t k = 0; k < 1000; ++k) EXPECT_EQ(refs[k], &m[k]);
}

// What a pause costs is the bucket count of the part that grows: with sequential keys
// (ids are), every part holds about 1/64 of the entries, and no growth ever rehashes
// more than a small share of the map.
TEST(ShardedMap, AGrowthRehashesOnePartNotTheWholeMap) {
  ShardedMap<uint64_t, uint64_t> m;
  const uint64_t n = 400000;
  m.reserve(n / 2);  // as at a mount: sized to what was recovered
  size_t largest_step = 0, before = m.bucket_count();
  for (uint64_t k = 1; k <= n; ++k) {
    m[(uint64_t{1} << 63) | k] = k;  // a blob id's layout: a high flag, a counter
    const size_t now = m.bucket_count();
    if (now != before) largest_step = std::max(largest_step, now - before);
    before = now;
  }
  EXPECT_EQ(m.size(), n);
  EXPECT_GT(largest_step, 0u) << "the map grew past its reserve";
  EXPECT_LT(largest_step, n / 16) << "one insert grew buckets for a large share of the map";
  EXPECT_LT(m.max_shard_buckets(), n / 16);
  m.reserve(10);  // a smaller reserve shrinks nothing
  EXPECT_EQ(m.bucket_count(), before);
}

}  // namespace
}  // namespace vineyard
