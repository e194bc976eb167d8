// wire::Decode on any frames: never crashes; an accepted message encodes to frames
// that decode to the same kind. Frames come from the input: each is a length byte
// followed by that many bytes (the last one takes the rest).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "meta/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vineyard;
  wire::Frames frames;
  size_t at = 0;
  while (at < size && frames.size() < 8) {
    size_t len = data[at++];
    if (frames.size() == 7 || len > size - at) len = size - at;
    frames.emplace_back(reinterpret_cast<const char*>(data + at), len);
    at += len;
  }
  auto m = wire::Decode(frames);
  if (!m.ok()) return 0;
  auto again = wire::Decode(wire::Encode(m->kind, m->body));
  if (!again.ok() || again->kind != m->kind) abort();
  return 0;
}
