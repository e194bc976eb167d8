// ParseCreateMeta on any bytes: never crashes, never throws, and whatever it accepts
// makes a record that DecodeRecord accepts back with the same fields and members
// (what a peer receives is what a local create made).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "meta/object_meta.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vineyard;
  auto spec = ParseCreateMeta(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!spec.ok()) return 0;
  ObjectRecord r;
  r.id = ObjectID::Make(false, 1, 1);
  r.instance = 1;
  r.type_name = spec->type_name;
  r.transient = !spec->persist;
  r.global = spec->global;
  r.members = spec->members;
  r.fields = spec->fields;
  auto back = DecodeRecord(EncodeRecord(r), /*peer=*/true);
  if (!back.ok() || back->fields != r.fields || back->members != r.members ||
      back->type_name != r.type_name) {
    abort();
  }
  return 0;
}
