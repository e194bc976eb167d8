// The Arrow IPC parser of the arrow builder (plugins/arrow_ipc.h) on any bytes: never
// crashes or reads outside the input, always says why it refuses, and what it accepts
// keeps its promise: every buffer range lies inside the input, every column is as
// long as its batch, every dictionary index lies inside its dictionary (checked by the
// parser; the sanitizers catch a read past the end).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "arrow_ipc.h"

namespace {

void CheckColumn(const vy_arrow::Column& c, uint64_t rows, size_t size) {
  if (c.length != rows || c.null_count > c.length) abort();
  for (const vy_arrow::Range& r : c.buffers) {
    if (r.offset > size || r.length > size - r.offset) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vy_arrow::Parsed parsed;
  std::string why;
  if (!vy_arrow::ParseArrow(data, size, &parsed, &why)) {
    if (why.empty()) abort();  // a refusal always says why
    return 0;
  }
  for (const vy_arrow::Batch& b : parsed.batches) {
    if (b.columns.size() != parsed.fields.size()) abort();
    for (const vy_arrow::Column& c : b.columns) CheckColumn(c, b.rows, size);
  }
  for (const auto& [id, c] : parsed.dictionaries) CheckColumn(c, c.length, size);
  return 0;
}
