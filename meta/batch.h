// The batch create form: many objects in one upload, created all or nothing
// (README "Many objects in one upload"). An upload new/<x>.batch holds
//
//   manifest   JSON, up to the first NUL byte (or the end of the file if it has none)
//   NUL        one 0x00 byte
//   payload    raw bytes; blob entries are byte ranges of it
//
// The manifest:
//   {"entries": [ENTRY, ...], "root": K}          ("root" optional: the last entry)
//   ENTRY = {"blob": [OFFSET, SIZE]}              a vineyard::Blob of payload bytes
//                                                 [OFFSET, OFFSET+SIZE)
//         | {"meta": CREATE-FORM}                 a metadata object (object_meta.h);
//                                                 a member {"id": "#J"} is entry J
//                                                 of this batch, J < this entry's
//                                                 index; {"id": "o..."} an existing
//                                                 object
//
// Rules, each refused with a precise message (InvalidArgument unless said):
// the manifest over kMaxBatchManifestBytes (TooLarge) or nested deeper than
// kMaxBatchDepth; no entries, or more than kMaxBatchEntries (TooLarge); an entry
// that is not exactly one of the two forms; a range outside the payload (ranges may
// overlap and need not cover it); a reference that is not "#" and a decimal index
// of an earlier entry (so there are no cycles); a root that is not an entry; an
// entry the root does not reach through members (nothing would name it); and every
// rule of the create form for each "meta".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "meta/object_meta.h"

namespace vineyard {

constexpr size_t kMaxBatchManifestBytes = 16u << 20;
constexpr size_t kMaxBatchEntries = 100000;
// The manifest's own levels (top object, entries array, entry) above a create form.
constexpr int kMaxBatchDepth = kMaxMetaDepth + 3;

struct BatchEntry {
  bool blob = false;
  uint64_t offset = 0, size = 0;  // blob: the range of the payload
  CreateSpec spec;                // meta: members hold the ids of referenced entries
  std::vector<uint32_t> refs;     // meta: the entries its members reference (ascending use order)
};

struct BatchSpec {
  std::vector<BatchEntry> entries;
  std::vector<ObjectID> ids;  // the id of each entry
  uint32_t root = 0;
};

// Hands out the ids of a batch, one per entry (`blob[i]`: entry i is a blob), once the
// manifest is known to be well formed. Without one, ParseBatch uses stand-in ids (for
// checking a manifest before its objects are made).
using BatchIds = std::function<Result<std::vector<ObjectID>>(const std::vector<bool>& blob)>;

// Parses and validates `manifest` for a payload of `payload_size` bytes. Does not
// look up existing members (ObjectTable::CreateBatch does). The manifest as the
// Python client writes it takes ParseBatchPlain's one pass; everything else, and every
// refusal, ParseBatchGeneral's, which parses it into a JSON tree first.
Result<BatchSpec> ParseBatch(std::string_view manifest, uint64_t payload_size,
                             const BatchIds& ids = nullptr);
// The two ways, exposed so that tests and fuzz/batch_fuzzer.cc can compare them.
// ParseBatchPlain (meta/batch_plain.cc) gives the same spec as ParseBatchGeneral for
// every manifest it takes, and nullopt without calling `ids` for any other (the
// general way then decides, with its precise errors); `ids` failing is its error.
Result<BatchSpec> ParseBatchGeneral(std::string_view manifest, uint64_t payload_size,
                                    const BatchIds& ids = nullptr);
std::optional<Result<BatchSpec>> ParseBatchPlain(std::string_view manifest, uint64_t payload_size,
                                                 const BatchIds& ids = nullptr);

}  // namespace vineyard
