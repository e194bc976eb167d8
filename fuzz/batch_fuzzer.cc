// ParseBatch on any bytes (the manifest of new/<x>.batch; the first input byte picks
// the payload size): never crashes, never throws, and whatever it accepts keeps its
// promises — every range inside the payload, every reference to an earlier entry,
// every entry reached from the root.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "meta/batch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vineyard;
  if (size == 0) return 0;
  const uint64_t payload = uint64_t{data[0]} * 37;
  auto b = ParseBatch(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), payload);
  if (!b.ok()) return 0;
  const size_t n = b->entries.size();
  if (n == 0 || n > kMaxBatchEntries || b->ids.size() != n || b->root >= n) abort();
  std::vector<bool> reached(n, false);
  reached[b->root] = true;
  for (size_t i = n; i-- > 0;) {
    const BatchEntry& e = b->entries[i];
    if (e.blob && (e.offset > payload || e.size > payload - e.offset)) abort();
    if (e.blob != b->ids[i].is_blob()) abort();
    for (uint32_t j : e.refs) {
      if (j >= i) abort();
      if (reached[i]) reached[j] = true;
    }
  }
  for (bool r : reached) {
    if (!r) abort();
  }
  return 0;
}
