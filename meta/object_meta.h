// ObjectMeta: the metadata half of an object (the seed page: "shared across the
// cluster"). Three forms exist:
//
//  * the create form, written by users into new/<file>.meta.json (DESIGN.md §4):
//      {"typename": "vineyard::Pair", "first_": {"id": "o0001000000000003"}, "note": 1}
//    A top-level field whose value is a JSON object holding "id" is a member; every
//    other field is a plain value kept as written.
//  * the record (ObjectRecord), what the table keeps in memory and journals: fixed
//    fields as C++ members, the user's fields as one compact JSON string.
//  * the stored form shown as meta.json: the record's fields plus `id`, `typename`,
//    `nbytes`, `instance_id`, `global`, `transient`, `signature`, `__timestamp`, with
//    each member expanded in place (rendered by ObjectTable::RenderMeta).
//
// Limits, each refused with a precise message, the same for a local create and for
// a record from a peer or the journal (DecodeRecord): create JSON or a record's
// fields over 16 MiB (TooLarge), nesting deeper than 64 (InvalidArgument), a field
// name that is not a usable file name under members/ (empty, '.', '..', '/', NUL,
// over 255 bytes: InvalidArgument), a number JSON cannot hold in a double (1e400),
// a NUL byte or anything after the JSON value (InvalidArgument). The JSON library's
// exceptions never leave this file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meta/object_id.h"
#include "meta/status.h"

namespace vineyard {

constexpr size_t kMaxMetaBytes = 16u << 20;  // create form, and a record's fields
constexpr int kMaxMetaDepth = 64;            // levels of objects/arrays, the top one included
constexpr size_t kMaxFieldName = 255;        // bytes of a field name (a file name under members/)
// A whole record: its fields plus the fixed fields EncodeRecord adds around them.
constexpr size_t kMaxRecordBytes = kMaxMetaBytes + 4096;
constexpr const char* kBlobTypename = "vineyard::Blob";

// Who created an object or a name: the uid/gid of the creating process.
struct Owner {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

using Members = std::vector<std::pair<std::string, ObjectID>>;

// What a create-form JSON asks for, validated but not yet checked against the table.
struct CreateSpec {
  std::string type_name;
  bool global = false;   // "global": true
  bool persist = false;  // "transient": false asks for a persisted object
  Members members;       // in the order written
  std::string fields;    // compact JSON object: plain fields, members as {"id": ...}
};

// Parses and validates create-form bytes. Does not look members up.
Result<CreateSpec> ParseCreateMeta(std::string_view bytes);

// A top-level field name is a file name under members/: 1..kMaxFieldName bytes, no
// '/' or NUL, not "." or "..".
Status ValidateFieldName(std::string_view key);

// One object as the table holds it. Copyable value; no locking of its own.
struct ObjectRecord {
  ObjectID id;
  std::string type_name;
  uint64_t nbytes = 0;      // blob: its size; otherwise the sum over distinct member blobs
  uint64_t size = 0;        // blobs only: payload length in bytes
  InstanceId instance = 0;  // the creating instance (id.instance())
  bool transient = true;    // false once persisted
  bool global = false;
  uint64_t signature = 0;
  int64_t timestamp_ms = 0;  // creation time, ms since the epoch
  Owner owner;
  Members members;
  std::string fields;  // compact JSON object of user fields ("" for none)
  // Not journaled: the number of objects holding this one as a member, and how many
  // of them each owner (uid) holds. Only those of this object's own owner pin it
  // (ObjectTable::Delete); the others are weak references.
  uint32_t referrers = 0;
  std::vector<std::pair<uint32_t, uint32_t>> referrer_uids;  // (uid, count > 0)
  // How many of the referrers belong to `uid`.
  uint32_t ReferrersOf(uint32_t uid) const {
    for (auto& [u, n] : referrer_uids) {
      if (u == uid) return n;
    }
    return 0;
  }

  bool is_blob() const { return id.is_blob(); }
};

// Record <-> bytes, the journal's value format: one compact JSON object
//   {"v":1,"id":"o..","typename":..,"nbytes":..,"size":..,"transient":..,"global":..,
//    "signature":..,"ts":..,"uid":..,"gid":..,"fields":{...}}
// (members are recovered from "fields"). Decode validates every field.
// A record from a peer (`peer`) gets every rule of a local create; one from this
// node's journal was checked when it was made, so field names that older versions
// accepted (over 255 bytes, ".", "..", a NUL) still load rather than lose the object.
std::string EncodeRecord(const ObjectRecord& r);
// EncodeRecord appended to `out` (a buffer reused across records: no allocation per
// record) for a record with a plain ASCII typename, as every real one has; false,
// and `out` unchanged, for any other (EncodeRecord takes it through a JSON tree).
bool AppendRecord(const ObjectRecord& r, std::string* out);
Result<ObjectRecord> DecodeRecord(std::string_view bytes, bool peer = false);
// The same decode through a JSON tree, for every layout. DecodeRecord reads records
// without fields as EncodeRecord writes them in one pass (mount time at millions of
// blobs) and hands everything else to this; exposed so tests can compare the two.
Result<ObjectRecord> DecodeRecordGeneral(std::string_view bytes, bool peer = false);

// A name in names/: which object it points to, who put it, when.
// Names are cluster-wide when their object is persisted: the last writer wins by
// (timestamp_ms, writer), the instance that put it.
struct NameRecord {
  ObjectID id;
  Owner owner;
  int64_t timestamp_ms = 0;
  InstanceId writer = 0;  // the instance that put it (0 in records of older versions: this one)
};
std::string EncodeName(const NameRecord& n);
Result<NameRecord> DecodeName(std::string_view bytes);

// A name must be a usable file name: non-empty, no '/', not "." or "..", no NUL, at
// most 255 bytes.
Status ValidateName(std::string_view name);

// A deterministic per-object signature (Vineyard stores one per object).
uint64_t MakeSignature(ObjectID id, int64_t timestamp_ms);

}  // namespace vineyard
