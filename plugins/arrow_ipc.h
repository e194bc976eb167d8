// arrow_ipc.h: the Arrow IPC file and stream formats, written and read, for arrow.so.
//
// Nothing here knows the plugin host: the encoders return bytes, the parser takes a
// buffer and returns ranges of it, so a fuzz target or a unit test links arrow_ipc.cc
// alone (the parser's entry point is ParseArrow).
//
// The formats (Arrow columnar format specification, "Serialization and Interprocess
// Communication"; metadata version V5, little-endian):
//
//   encapsulated message := 0xFFFFFFFF (continuation) | int32 metadata size M
//                           | M bytes: a flatbuffer Message, zero-padded to a multiple of 8
//                           | body: the message's bodyLength bytes
//   stream := schema message | (record batch message)* | [0xFFFFFFFF 0x00000000 (end)]
//   file   := "ARROW1" 0 0 | stream (with its end marker) | Footer flatbuffer
//             | int32 footer size | "ARROW1"
//
// A record batch's body holds, for each column in schema order, its buffers in the
// type's order (validity bitmap, then offsets for variable-width types, then values),
// each at an offset that is a multiple of 8 from the body's start; the message's
// `buffers` give (offset, length) of each, its `nodes` (length, null_count) of each
// column. The file's footer repeats the schema and lists each record batch as a Block
// (file offset of its message, metadata size including the prefix, body length).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vy_arrow {

// ---- Limits on untrusted input (an upload, or a SchemaProxy's bytes) ----
// A larger value is refused with a reason naming the limit; every one is far above
// what a real table needs.
constexpr uint64_t kMaxFields = 4096;                // columns of a schema
constexpr uint64_t kMaxBatches = 1 << 16;            // record batches in one file or stream
constexpr uint64_t kMaxMetadataBytes = 16 << 20;     // one message's or the footer's flatbuffer
constexpr uint64_t kMaxNameBytes = 1 << 16;          // a field name
constexpr uint64_t kMaxRows = uint64_t{1} << 40;     // rows of one record batch
constexpr unsigned kMaxFlatbufferDepth = 64;         // nesting, for the verifier
constexpr unsigned kMaxFlatbufferTables = 1u << 20;  // tables, for the verifier

// The column types the plugin maps (everything else is refused by name).
enum class Kind {
  kBool,             // bit-packed values
  kInt,              // bit_width 8/16/32/64, is_signed
  kFloat,            // bit_width 16/32/64
  kUtf8,             // int32 offsets + bytes
  kLargeUtf8,        // int64 offsets + bytes
  kBinary,           // int32 offsets + bytes
  kLargeBinary,      // int64 offsets + bytes
  kFixedSizeBinary,  // byte_width bytes per value
  kTimestamp,        // int64, unit, timezone
  kDuration,         // int64, unit
};

// TimeUnit of Timestamp and Duration, as the format numbers them.
enum TimeUnit { kSecond = 0, kMilli = 1, kMicro = 2, kNano = 3 };

struct Type {
  Kind kind = Kind::kInt;
  int bit_width = 0;      // kInt, kFloat: of a value; kTimestamp, kDuration: 64
  bool is_signed = true;  // kInt
  int unit = kNano;       // kTimestamp, kDuration
  std::string timezone;   // kTimestamp ("" for none)
  int byte_width = 0;     // kFixedSizeBinary
};

struct Field {
  std::string name;
  bool nullable = true;
  Type type;  // of the values (a dictionary's values when dictionary-encoded)
  // Dictionary-encoded: the column holds `index` integers into the dictionary batch
  // `dictionary_id`, whose one column has `type`.
  bool dictionary = false;
  int64_t dictionary_id = 0;
  Type index;
};

// What a column of `f` holds in a record batch: its index type when dictionary-encoded.
inline const Type& StorageType(const Field& f) { return f.dictionary ? f.index : f.type; }

// Buffers of a column of `type`: 2 (validity, values) or 3 (validity, offsets, bytes).
int BufferCount(const Type& type);
// Bytes per value of a fixed-width type (0 for bool and variable-width types).
uint64_t ValueBytes(const Type& type);
// "int32", "float64", "utf8", "timestamp[ns, tz=UTC]"... for messages.
std::string TypeName(const Type& type);

// ---- Writing ----

struct BufferRef {
  uint64_t offset = 0;  // from the start of the body (a multiple of 8)
  uint64_t length = 0;
};
struct NodeRef {
  uint64_t length = 0;
  uint64_t null_count = 0;
};
struct BlockRef {
  uint64_t offset = 0;       // of the message in the file
  uint32_t meta_length = 0;  // prefix + metadata + padding
  uint64_t body_length = 0;
};

// The file's leading magic: "ARROW1" and two bytes of padding.
std::string FileMagic();
// An encapsulated schema message (no body).
std::string SchemaMessage(const std::vector<Field>& fields);
// An encapsulated record batch message's metadata part; its body follows it.
std::string RecordBatchMessage(uint64_t rows, const std::vector<NodeRef>& nodes,
                               const std::vector<BufferRef>& buffers, uint64_t body_length);
// The end-of-stream marker.
std::string EndOfStream();
// The footer flatbuffer, its int32 size and the trailing "ARROW1".
std::string FileFooter(const std::vector<Field>& fields, const std::vector<BlockRef>& batches);

// ---- Reading ----

struct Range {
  uint64_t offset = 0;  // in the input
  uint64_t length = 0;
};
struct Column {
  uint64_t length = 0, null_count = 0;
  std::vector<Range> buffers;  // BufferCount(type) of them, validated against the input
};
struct Batch {
  uint64_t rows = 0;
  std::vector<Column> columns;  // one per field
};
struct Parsed {
  bool file = false;  // the file format (else a stream)
  std::vector<Field> fields;
  std::vector<Batch> batches;
  // Dictionary id -> its values (one column of the field's `type`), validated like a
  // batch's; every index of a dictionary-encoded column is checked to lie inside it.
  std::map<int64_t, Column> dictionaries;
};

// Parses an Arrow IPC file (leading "ARROW1") or stream held in data[0, size). On
// success every buffer range lies inside the input and is long enough for its column
// (values, bitmaps, offsets; offsets are monotonic and inside their bytes; dictionary
// indices inside their dictionary). Delta and replacement dictionaries are refused. On failure
// returns false with one line in *why: what is wrong and where. Never reads outside
// the input; bounded by the limits above.
bool ParseArrow(const uint8_t* data, uint64_t size, Parsed* out, std::string* why);

// Parses the fields of one encapsulated schema message (as Vineyard's SchemaProxy
// stores it: pyarrow's Schema.serialize()).
bool ParseSchemaMessage(const uint8_t* data, uint64_t size, std::vector<Field>* fields,
                        std::string* why);

}  // namespace vy_arrow
