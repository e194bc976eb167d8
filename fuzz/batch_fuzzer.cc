// ParseBatch on any bytes (the manifest of new/<x>.batch; the first input byte picks
// the payload size): never crashes, never throws, and whatever it accepts keeps its
// promises — every range inside the payload, every reference to an earlier entry,
// every entry reached from the root.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "meta/batch.h"

namespace {

using namespace vineyard;

bool SameEntry(const BatchEntry& x, const BatchEntry& y) {
  return x.blob == y.blob && x.offset == y.offset && x.size == y.size && x.refs == y.refs &&
         x.spec.type_name == y.spec.type_name && x.spec.global == y.spec.global &&
         x.spec.persist == y.spec.persist && x.spec.members == y.spec.members &&
         x.spec.fields == y.spec.fields;
}

// The same spec, or the same refusal.
bool Same(const Result<BatchSpec>& a, const Result<BatchSpec>& b) {
  if (a.ok() != b.ok()) return false;
  if (!a.ok()) {
    return a.status().code() == b.status().code() && a.status().message() == b.status().message();
  }
  if (a->root != b->root || a->ids != b->ids || a->entries.size() != b->entries.size()) {
    return false;
  }
  for (size_t i = 0; i < a->entries.size(); ++i) {
    if (!SameEntry(a->entries[i], b->entries[i])) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint64_t payload = uint64_t{data[0]} * 37;
  const std::string_view manifest(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto b = ParseBatch(manifest, payload);
  auto general = ParseBatchGeneral(manifest, payload);
  if (!Same(b, general)) abort();
  if (auto plain = ParseBatchPlain(manifest, payload)) {
    if (!plain->ok() || !Same(*plain, general)) abort();
  }
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
