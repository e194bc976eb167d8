// DecodeRecord and DecodeName on any bytes (records come from the journal and from
// peers): never crash, never throw; an accepted record encodes and decodes again to
// the same record.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "meta/object_meta.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vineyard;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)DecodeName(bytes);
  (void)DecodeRecord(bytes);  // as the journal is read
  auto r = DecodeRecord(bytes, /*peer=*/true);
  if (!r.ok()) return 0;
  auto again = DecodeRecord(EncodeRecord(*r), /*peer=*/true);
  if (!again.ok() || again->id != r->id || again->fields != r->fields ||
      again->members != r->members || again->nbytes != r->nbytes) {
    abort();
  }
  return 0;
}
