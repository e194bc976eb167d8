// ShardedMap: a std::unordered_map split into 2^kBits maps by a mix of the key's hash,
// with the subset of its interface that the store's tables use.
//
// Why: a std::unordered_map grows by rehashing every node into a bucket array twice
// the size in one call. The store's blob map and the arena's charge map are sized to
// the recovered count at mount, so the first doubling after a mount of 1.9M blobs
// rehashed 1.9M nodes in one insert, under the store's lock (1.99 s in a standalone
// test at load 18; README, Millions of objects). Split 64 ways, each part grows on its
// own, and a growth rehashes 1/64 of the entries: the pause is 64 times shorter (the
// parts grow at about the same count, so the same total work comes in 64 small steps
// rather than one). Lookups cost one multiply more; nodes stay where they are (as in
// std::unordered_map, references and iterators survive inserts into any part).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <utility>

namespace vineyard {

template <class K, class V, class Hash = std::hash<K>, unsigned kBits = 6>
class ShardedMap {
 public:
  using Inner = std::unordered_map<K, V, Hash>;
  using iterator = typename Inner::iterator;
  using const_iterator = typename Inner::const_iterator;
  static constexpr size_t kShards = size_t{1} << kBits;

  // One iterator stands for "not found" in every part: compare find's result with it.
  iterator end() { return shards_[0].end(); }
  const_iterator end() const { return shards_[0].end(); }

  iterator find(const K& k) {
    Inner& s = Shard(k);
    auto it = s.find(k);
    return it == s.end() ? end() : it;
  }
  const_iterator find(const K& k) const {
    const Inner& s = Shard(k);
    auto it = s.find(k);
    return it == s.end() ? end() : it;
  }
  size_t count(const K& k) const { return Shard(k).count(k); }
  V& operator[](const K& k) { return Shard(k)[k]; }
  V& at(const K& k) { return Shard(k).at(k); }
  const V& at(const K& k) const { return Shard(k).at(k); }
  template <class... A>
  std::pair<iterator, bool> emplace(const K& k, A&&... a) {
    return Shard(k).emplace(k, std::forward<A>(a)...);
  }
  // `it` must be a found entry (not end()).
  void erase(iterator it) { Shard(it->first).erase(it); }
  size_t erase(const K& k) { return Shard(k).erase(k); }

  size_t size() const {
    size_t n = 0;
    for (const Inner& s : shards_) n += s.size();
    return n;
  }
  bool empty() const { return size() == 0; }
  // Room for `n` entries in all, spread over the parts (with an eighth more each: the
  // parts are not exactly even). Never shrinks a part (std::unordered_map::reserve
  // of fewer than it holds room for would rehash it smaller).
  void reserve(size_t n) {
    const size_t each = n / kShards;
    for (Inner& s : shards_) {
      const size_t want = each + each / 8 + 1;
      if (static_cast<double>(want) > s.bucket_count() * static_cast<double>(s.max_load_factor()))
        s.reserve(want);
    }
  }
  // The largest part's bucket count: what one growth rehashes at most (tests).
  size_t max_shard_buckets() const {
    size_t m = 0;
    for (const Inner& s : shards_) m = std::max(m, s.bucket_count());
    return m;
  }
  size_t bucket_count() const {
    size_t n = 0;
    for (const Inner& s : shards_) n += s.bucket_count();
    return n;
  }

 private:
  static size_t Index(const K& k) {
    // Runs of 1,024 consecutive hashes (ids are counters, std::hash of an integer is
    // the integer) go to one part, the runs spread over the parts by Fibonacci hashing:
    // sequential inserts (a mount's, a batch's) stay in one part's memory at a time
    // instead of touching 64 bucket arrays in turn, and the parts stay even.
    const uint64_t run = static_cast<uint64_t>(Hash()(k)) >> 10;
    return static_cast<size_t>((run * 0x9E3779B97F4A7C15ull) >> (64 - kBits));
  }
  Inner& Shard(const K& k) { return shards_[Index(k)]; }
  const Inner& Shard(const K& k) const { return shards_[Index(k)]; }

  std::array<Inner, kShards> shards_;
};

}  // namespace vineyard
