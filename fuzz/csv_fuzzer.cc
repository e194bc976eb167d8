// The .csv builder's parser and column typing (plugins/csv_parse.h) on any bytes:
// never crashes, and each accepted column holds one value per record.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "csv_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vy_plugins::CsvRows rows;
  std::string why;
  if (!vy_plugins::ParseCsv(reinterpret_cast<const char*>(data), size, &rows, &why) ||
      !vy_plugins::CheckCsvShape(rows, &why)) {
    if (why.empty()) abort();
    return 0;
  }
  const size_t n = rows.size() - 1;
  for (size_t c = 0; c < rows[0].size(); ++c) {
    std::string descr, bytes;
    if (!vy_plugins::CsvColumn(rows, c, &descr, &bytes, &why)) continue;
    uint64_t itemsize = descr == "|b1" ? 1 : descr[1] == 'U' ? 4 * std::stoull(descr.substr(2)) : 8;
    if (bytes.size() != n * itemsize) abort();
  }
  return 0;
}
