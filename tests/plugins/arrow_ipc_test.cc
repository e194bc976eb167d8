// The Arrow IPC parser and encoders of the arrow plugin (plugins/arrow_ipc.cc), alone:
// what it writes it reads back, and every kind of bad input is refused with a reason,
// including input no Arrow writer at hand produces (compressed bodies, nested types),
// crafted here with the same flatbuffer schema.
#include "arrow_ipc.h"

#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

#include "arrow_format_generated.h"

namespace vy_arrow {
namespace {

namespace fb = org::apache::arrow::flatbuf;

std::string Pad(std::string s) {
  s.append(((s.size() + 7) & ~size_t{7}) - s.size(), '\0');
  return s;
}

// A stream of one batch: an int32 column "a" and a utf8 column "s".
std::string Stream(const std::vector<int32_t>& a, const std::vector<int32_t>& offsets,
                   const std::string& bytes) {
  std::vector<Field> fields(2);
  fields[0].name = "a";
  fields[0].type.kind = Kind::kInt;
  fields[0].type.bit_width = 32;
  fields[1].name = "s";
  fields[1].type.kind = Kind::kUtf8;
  const std::string values(reinterpret_cast<const char*>(a.data()), a.size() * 4);
  const std::string offs(reinterpret_cast<const char*>(offsets.data()), offsets.size() * 4);
  std::string body;
  std::vector<BufferRef> refs;
  // Buffers: a's validity (none), a's values, s's validity (none), offsets, bytes.
  for (const std::string& piece : {std::string(), values, std::string(), offs, bytes}) {
    refs.push_back({body.size(), piece.size()});
    body += Pad(piece);
  }
  const std::vector<NodeRef> nodes = {{a.size(), 0}, {a.size(), 0}};
  return SchemaMessage(fields) + RecordBatchMessage(a.size(), nodes, refs, body.size()) + body +
         EndOfStream();
}

TEST(ArrowIpc, ReadsBackWhatItWrites) {
  const std::string s = Stream({1, -2, 3}, {0, 2, 2, 5}, "hiabc");
  Parsed p;
  std::string why;
  ASSERT_TRUE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why)) << why;
  EXPECT_FALSE(p.file);
  ASSERT_EQ(p.fields.size(), 2u);
  EXPECT_EQ(p.fields[0].name, "a");
  EXPECT_EQ(TypeName(p.fields[0].type), "int32");
  EXPECT_EQ(TypeName(p.fields[1].type), "utf8");
  ASSERT_EQ(p.batches.size(), 1u);
  EXPECT_EQ(p.batches[0].rows, 3u);
  const Range& v = p.batches[0].columns[0].buffers[1];
  int32_t second;
  std::memcpy(&second, s.data() + v.offset + 4, 4);
  EXPECT_EQ(second, -2);
  const Range& bytes = p.batches[0].columns[1].buffers[2];
  EXPECT_EQ(s.substr(bytes.offset, bytes.length), "hiabc");
}

TEST(ArrowIpc, RefusesOffsetsThatDecreaseOrPointPastTheBytes) {
  Parsed p;
  std::string why;
  std::string s = Stream({1, 2, 3}, {0, 3, 2, 5}, "hiabc");
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("offsets decrease at row 1"), std::string::npos) << why;
  s = Stream({1, 2, 3}, {0, 2, 2, 9}, "hiabc");
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("offsets point past"), std::string::npos) << why;
}

// A record batch message whose header is built by `make` (after the schema of `s`).
template <typename F>
std::string WithBatch(F make, uint64_t body_length) {
  std::vector<Field> fields(1);
  fields[0].name = "x";
  fields[0].type.kind = Kind::kInt;
  fields[0].type.bit_width = 64;
  flatbuffers::FlatBufferBuilder b;
  auto rb = make(b);
  b.Finish(fb::CreateMessage(b, fb::MetadataVersion_V5, fb::MessageHeader_RecordBatch, rb.Union(),
                             static_cast<int64_t>(body_length)));
  std::string meta(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  meta = Pad(meta);
  std::string msg = "\xff\xff\xff\xff";
  const uint32_t len = static_cast<uint32_t>(meta.size());
  msg.append(reinterpret_cast<const char*>(&len), 4);
  return SchemaMessage(fields) + msg + meta + std::string(body_length, '\0');
}

TEST(ArrowIpc, RefusesCompressedBodiesNamingTheCodec) {
  const std::string s = WithBatch(
      [](flatbuffers::FlatBufferBuilder& b) {
        std::vector<fb::FieldNode> nodes = {fb::FieldNode(1, 0)};
        std::vector<fb::Buffer> bufs = {fb::Buffer(0, 0), fb::Buffer(0, 8)};
        return fb::CreateRecordBatch(b, 1, b.CreateVectorOfStructs(nodes),
                                     b.CreateVectorOfStructs(bufs),
                                     fb::CreateBodyCompression(b, fb::CompressionType_ZSTD));
      },
      8);
  Parsed p;
  std::string why;
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("compressed body (ZSTD)"), std::string::npos) << why;
}

TEST(ArrowIpc, RefusesBuffersOutsideTheBodyAndValuesCutShort) {
  auto batch = [](int64_t offset, int64_t length) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      std::vector<fb::FieldNode> nodes = {fb::FieldNode(2, 0)};
      std::vector<fb::Buffer> bufs = {fb::Buffer(0, 0), fb::Buffer(offset, length)};
      return fb::CreateRecordBatch(b, 2, b.CreateVectorOfStructs(nodes),
                                   b.CreateVectorOfStructs(bufs));
    };
  };
  Parsed p;
  std::string why;
  std::string s = WithBatch(batch(8, 16), 16);
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("outside the body"), std::string::npos) << why;
  s = WithBatch(batch(0, 8), 16);
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("cut short"), std::string::npos) << why;
  s = WithBatch(batch(0, 16), 16);
  EXPECT_TRUE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why)) << why;
}

TEST(ArrowIpc, RefusesNestedTypesAndTooManyColumnsByName) {
  flatbuffers::FlatBufferBuilder b;
  auto name = b.CreateString("lst");
  auto field = fb::CreateField(b, name, true, fb::Type_List, fb::CreateList(b).Union());
  std::vector<flatbuffers::Offset<fb::Field>> fields = {field};
  auto schema = fb::CreateSchema(b, fb::Endianness_Little, b.CreateVector(fields));
  b.Finish(fb::CreateMessage(b, fb::MetadataVersion_V5, fb::MessageHeader_Schema, schema.Union()));
  std::string meta =
      Pad(std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()));
  const uint32_t len = static_cast<uint32_t>(meta.size());
  std::string s = "\xff\xff\xff\xff" + std::string(reinterpret_cast<const char*>(&len), 4) + meta;
  Parsed p;
  std::string why;
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("column 'lst' has Arrow type List, which is not supported"), std::string::npos)
      << why;

  std::vector<Field> many(kMaxFields + 1);
  for (auto& f : many) f.type.bit_width = 8;
  s = SchemaMessage(many);
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("over the limit of 4096"), std::string::npos) << why;
}

// Every prefix and a few thousand single-byte corruptions of a valid stream: the parser
// answers (true or false with a reason) and never reads outside the input, which
// ASan/valgrind runs of this test check; each refusal names something.
TEST(ArrowIpc, SurvivesEveryTruncationAndRandomCorruption) {
  const std::string s = Stream({1, -2, 3, 4}, {0, 2, 2, 5, 9}, "hiabcdefg");
  Parsed p;
  std::string why;
  for (size_t n = 0; n < s.size(); ++n) {
    std::vector<uint8_t> copy(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
    why.clear();
    if (!ParseArrow(copy.data(), copy.size(), &p, &why)) {
      EXPECT_FALSE(why.empty()) << n;
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> copy(s.begin(), s.end());
    copy[rng() % copy.size()] = static_cast<uint8_t>(rng());
    why.clear();
    if (!ParseArrow(copy.data(), copy.size(), &p, &why)) {
      EXPECT_FALSE(why.empty()) << i;
    }
  }
}

// A stream with one dictionary-encoded utf8 column "d" (int8 indices) over the
// dictionary ["a", "bc"], one batch holding `indices`.
std::string DictionaryStream(const std::vector<int8_t>& indices) {
  auto message = [](flatbuffers::FlatBufferBuilder& b, fb::MessageHeader type,
                    flatbuffers::Offset<void> header, uint64_t body) {
    b.Finish(
        fb::CreateMessage(b, fb::MetadataVersion_V5, type, header, static_cast<int64_t>(body)));
    std::string meta =
        Pad(std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()));
    const uint32_t len = static_cast<uint32_t>(meta.size());
    return "\xff\xff\xff\xff" + std::string(reinterpret_cast<const char*>(&len), 4) + meta;
  };
  std::string out;
  {
    flatbuffers::FlatBufferBuilder b;
    auto dict = fb::CreateDictionaryEncoding(b, 7, fb::CreateInt(b, 8, true));
    auto field = fb::CreateField(b, b.CreateString("d"), true, fb::Type_Utf8,
                                 fb::CreateUtf8(b).Union(), dict);
    std::vector<flatbuffers::Offset<fb::Field>> fields = {field};
    auto schema = fb::CreateSchema(b, fb::Endianness_Little, b.CreateVector(fields));
    out += message(b, fb::MessageHeader_Schema, schema.Union(), 0);
  }
  {
    const std::vector<int32_t> offs = {0, 1, 3};
    const std::string body =
        Pad(std::string(reinterpret_cast<const char*>(offs.data()), 12)) + Pad("abc");
    flatbuffers::FlatBufferBuilder b;
    std::vector<fb::FieldNode> nodes = {fb::FieldNode(2, 0)};
    std::vector<fb::Buffer> bufs = {fb::Buffer(0, 0), fb::Buffer(0, 12), fb::Buffer(16, 3)};
    auto rb =
        fb::CreateRecordBatch(b, 2, b.CreateVectorOfStructs(nodes), b.CreateVectorOfStructs(bufs));
    auto d = fb::CreateDictionaryBatch(b, 7, rb);
    out += message(b, fb::MessageHeader_DictionaryBatch, d.Union(), body.size()) + body;
  }
  {
    const std::string body =
        Pad(std::string(reinterpret_cast<const char*>(indices.data()), indices.size()));
    flatbuffers::FlatBufferBuilder b;
    std::vector<fb::FieldNode> nodes = {fb::FieldNode(static_cast<int64_t>(indices.size()), 0)};
    std::vector<fb::Buffer> bufs = {fb::Buffer(0, 0),
                                    fb::Buffer(0, static_cast<int64_t>(indices.size()))};
    auto rb = fb::CreateRecordBatch(b, static_cast<int64_t>(indices.size()),
                                    b.CreateVectorOfStructs(nodes), b.CreateVectorOfStructs(bufs));
    out += message(b, fb::MessageHeader_RecordBatch, rb.Union(), body.size()) + body;
  }
  return out + EndOfStream();
}

TEST(ArrowIpc, ChecksEveryDictionaryIndexAgainstItsDictionary) {
  Parsed p;
  std::string why;
  std::string s = DictionaryStream({1, 0, 1});
  ASSERT_TRUE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why)) << why;
  ASSERT_EQ(p.dictionaries.count(7), 1u);
  EXPECT_EQ(p.dictionaries[7].length, 2u);
  EXPECT_TRUE(p.fields[0].dictionary);
  EXPECT_EQ(TypeName(p.fields[0].type), "utf8");
  s = DictionaryStream({1, 2});
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("index 2 at row 1 is outside its dictionary of 2 values"), std::string::npos)
      << why;
  s = DictionaryStream({-1});
  EXPECT_FALSE(ParseArrow(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &p, &why));
  EXPECT_NE(why.find("index -1 at row 0"), std::string::npos) << why;
  // Every single-byte corruption of it: an answer, never a read outside the input.
  s = DictionaryStream({1, 0, 1});
  for (size_t i = 0; i < s.size(); ++i) {
    for (uint8_t v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::vector<uint8_t> copy(s.begin(), s.end());
      copy[i] = v;
      why.clear();
      if (!ParseArrow(copy.data(), copy.size(), &p, &why)) {
        EXPECT_FALSE(why.empty()) << i;
      }
    }
  }
}

}  // namespace
}  // namespace vy_arrow
