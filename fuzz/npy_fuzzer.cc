// The .npy builder's parser (plugins/npy_parse.h) on any bytes: never crashes, and
// what it accepts describes exactly the bytes after the header.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "npy_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vy_plugins::NpyLayout npy;
  std::string why;
  if (!vy_plugins::ParseNpy(data, size, &npy, &why)) {
    if (why.empty()) abort();  // a refusal always says why
    return 0;
  }
  if (npy.start > size || npy.start + npy.bytes != size || npy.itemsize == 0) abort();
  uint64_t count = 1;
  for (uint64_t d : npy.dims) count *= d;
  if (count * npy.itemsize != npy.bytes) abort();
  return 0;
}
