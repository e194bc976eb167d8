// arrow_ipc.cc: see arrow_ipc.h; this file writes, arrow_ipc_read.cc reads. The flatbuffer tables come from arrow_format.fbs,
// compiled by flatc (Debian's flatbuffers-compiler) into arrow_format_generated.h.
#include "arrow_ipc.h"

#include <flatbuffers/flatbuffers.h>

#include <cstring>

#include "arrow_format_generated.h"
#include "arrow_ipc_format.h"

namespace vy_arrow {

namespace fb = org::apache::arrow::flatbuf;
using namespace format;

namespace {

void Append32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

// ---- writing ----

flatbuffers::Offset<fb::Field> WriteField(flatbuffers::FlatBufferBuilder& b, const Field& f) {
  auto name = b.CreateString(f.name);
  fb::Type tt = fb::Type_NONE;
  flatbuffers::Offset<void> type;
  const Type& t = f.type;
  switch (t.kind) {
    case Kind::kBool:
      tt = fb::Type_Bool;
      type = fb::CreateBool(b).Union();
      break;
    case Kind::kInt:
      tt = fb::Type_Int;
      type = fb::CreateInt(b, t.bit_width, t.is_signed).Union();
      break;
    case Kind::kFloat:
      tt = fb::Type_FloatingPoint;
      type = fb::CreateFloatingPoint(b, t.bit_width == 16   ? fb::Precision_HALF
                                        : t.bit_width == 32 ? fb::Precision_SINGLE
                                                            : fb::Precision_DOUBLE)
                 .Union();
      break;
    case Kind::kUtf8:
      tt = fb::Type_Utf8;
      type = fb::CreateUtf8(b).Union();
      break;
    case Kind::kLargeUtf8:
      tt = fb::Type_LargeUtf8;
      type = fb::CreateLargeUtf8(b).Union();
      break;
    case Kind::kBinary:
      tt = fb::Type_Binary;
      type = fb::CreateBinary(b).Union();
      break;
    case Kind::kLargeBinary:
      tt = fb::Type_LargeBinary;
      type = fb::CreateLargeBinary(b).Union();
      break;
    case Kind::kFixedSizeBinary:
      tt = fb::Type_FixedSizeBinary;
      type = fb::CreateFixedSizeBinary(b, t.byte_width).Union();
      break;
    case Kind::kTimestamp: {
      auto tz = t.timezone.empty() ? 0 : b.CreateString(t.timezone);
      tt = fb::Type_Timestamp;
      type = fb::CreateTimestamp(b, static_cast<fb::TimeUnit>(t.unit), tz).Union();
      break;
    }
    case Kind::kDuration:
      tt = fb::Type_Duration;
      type = fb::CreateDuration(b, static_cast<fb::TimeUnit>(t.unit)).Union();
      break;
  }
  std::vector<flatbuffers::Offset<fb::Field>> no_children;
  return fb::CreateField(b, name, f.nullable, tt, type, 0, b.CreateVector(no_children));
}

flatbuffers::Offset<fb::Schema> WriteSchema(flatbuffers::FlatBufferBuilder& b,
                                            const std::vector<Field>& fields) {
  std::vector<flatbuffers::Offset<fb::Field>> offs;
  for (const Field& f : fields) offs.push_back(WriteField(b, f));
  return fb::CreateSchema(b, fb::Endianness_Little, b.CreateVector(offs));
}

// Continuation, size, the finished flatbuffer and padding to a multiple of 8.
std::string Encapsulate(const flatbuffers::FlatBufferBuilder& b) {
  const uint64_t padded = Pad8(b.GetSize());
  std::string out;
  Append32(&out, kContinuation);
  Append32(&out, static_cast<uint32_t>(padded));
  out.append(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  out.append(padded - b.GetSize(), '\0');
  return out;
}

}  // namespace

int BufferCount(const Type& t) {
  switch (t.kind) {
    case Kind::kUtf8:
    case Kind::kLargeUtf8:
    case Kind::kBinary:
    case Kind::kLargeBinary:
      return 3;
    default:
      return 2;
  }
}

uint64_t ValueBytes(const Type& t) {
  switch (t.kind) {
    case Kind::kInt:
    case Kind::kFloat:
      return static_cast<uint64_t>(t.bit_width / 8);
    case Kind::kTimestamp:
    case Kind::kDuration:
      return 8;
    case Kind::kFixedSizeBinary:
      return static_cast<uint64_t>(t.byte_width);
    default:
      return 0;
  }
}

std::string TypeName(const Type& t) {
  static const char* const kUnits[] = {"s", "ms", "us", "ns"};
  switch (t.kind) {
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return std::string(t.is_signed ? "int" : "uint") + std::to_string(t.bit_width);
    case Kind::kFloat:
      return "float" + std::to_string(t.bit_width);
    case Kind::kUtf8:
      return "utf8";
    case Kind::kLargeUtf8:
      return "large_utf8";
    case Kind::kBinary:
      return "binary";
    case Kind::kLargeBinary:
      return "large_binary";
    case Kind::kFixedSizeBinary:
      return "fixed_size_binary[" + std::to_string(t.byte_width) + "]";
    case Kind::kTimestamp:
      return std::string("timestamp[") + kUnits[t.unit & 3] +
             (t.timezone.empty() ? "" : ", tz=" + t.timezone) + "]";
    case Kind::kDuration:
      return std::string("duration[") + kUnits[t.unit & 3] + "]";
  }
  return "?";
}

std::string FileMagic() { return std::string(kMagic, kMagicLen) + std::string(2, '\0'); }

std::string SchemaMessage(const std::vector<Field>& fields) {
  flatbuffers::FlatBufferBuilder b;
  auto schema = WriteSchema(b, fields);
  b.Finish(
      fb::CreateMessage(b, fb::MetadataVersion_V5, fb::MessageHeader_Schema, schema.Union(), 0));
  return Encapsulate(b);
}

std::string RecordBatchMessage(uint64_t rows, const std::vector<NodeRef>& nodes,
                               const std::vector<BufferRef>& buffers, uint64_t body_length) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<fb::FieldNode> fn;
  for (auto& n : nodes)
    fn.emplace_back(static_cast<int64_t>(n.length), static_cast<int64_t>(n.null_count));
  std::vector<fb::Buffer> bufs;
  for (auto& r : buffers)
    bufs.emplace_back(static_cast<int64_t>(r.offset), static_cast<int64_t>(r.length));
  auto rb = fb::CreateRecordBatch(b, static_cast<int64_t>(rows), b.CreateVectorOfStructs(fn),
                                  b.CreateVectorOfStructs(bufs));
  b.Finish(fb::CreateMessage(b, fb::MetadataVersion_V5, fb::MessageHeader_RecordBatch, rb.Union(),
                             static_cast<int64_t>(body_length)));
  return Encapsulate(b);
}

std::string EndOfStream() {
  std::string out;
  Append32(&out, kContinuation);
  Append32(&out, 0);
  return out;
}

std::string FileFooter(const std::vector<Field>& fields, const std::vector<BlockRef>& batches) {
  flatbuffers::FlatBufferBuilder b;
  auto schema = WriteSchema(b, fields);
  std::vector<fb::Block> blocks;
  for (auto& k : batches)
    blocks.emplace_back(static_cast<int64_t>(k.offset), static_cast<int32_t>(k.meta_length),
                        static_cast<int64_t>(k.body_length));
  std::vector<fb::Block> none;
  b.Finish(fb::CreateFooter(b, fb::MetadataVersion_V5, schema, b.CreateVectorOfStructs(none),
                            b.CreateVectorOfStructs(blocks)));
  std::string out(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  Append32(&out, static_cast<uint32_t>(b.GetSize()));
  out.append(kMagic, kMagicLen);
  return out;
}

}  // namespace vy_arrow
