// Mount-level tests of the arrow plugin's builder (plugins/arrow_build.cc): files
// written by Arrow JS become DataFrames and Tables; malformed, dictionary-encoded,
// compressed and unsupported input.
#include "arrow_fixture.h"

namespace vyit {
namespace {

// (b) Arrow JS writes tables (file and stream) into new/; the builder makes a
// DataFrame of Tensors whose blobs hold the column bytes, and the views give the same
// table back.
TEST_F(Arrow, TablesWrittenByArrowJsBecomeDataFramesAndTables) {
  auto r = RunCommand({"/usr/bin/node", kJs + "/write.mjs", Path("new")}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"frame.arrow", "frame.arrows"}) {
    SCOPED_TRACE(name);
    std::string id = LinkedId(std::string("new/") + name);
    ASSERT_FALSE(id.empty()) << Error(Path(std::string("new/") + name));
    json m = ReadMeta(id);
    EXPECT_EQ(m["typename"], "vineyard::DataFrame");
    EXPECT_EQ(m["__values_-size"], 13);
    EXPECT_EQ(
        m["columns_"],
        R"(["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "b", "s", "t"])");
    const std::vector<std::pair<std::string, std::string>> types = {
        {"vineyard::Tensor<int8>", "|i1"},   {"vineyard::Tensor<int16>", "<i2"},
        {"vineyard::Tensor<int>", "<i4"},    {"vineyard::Tensor<int64>", "<i8"},
        {"vineyard::Tensor<uint8>", "|u1"},  {"vineyard::Tensor<uint16>", "<u2"},
        {"vineyard::Tensor<uint32>", "<u4"}, {"vineyard::Tensor<uint64>", "<u8"},
        {"vineyard::Tensor<float>", "<f4"},  {"vineyard::Tensor<double>", "<f8"},
        {"vineyard::Tensor<bool>", "|b1"},   {"vineyard::Tensor<str160>", "<U5"},
        {"vineyard::Tensor<int64>", "<i8"}};
    for (size_t i = 0; i < types.size(); ++i) {
      const json& col = m["__values_-value-" + std::to_string(i)];
      EXPECT_EQ(col["typename"], types[i].first) << i;
      EXPECT_EQ(col["value_type_meta_"], types[i].second) << i;
      EXPECT_EQ(col["shape_"], "[3]") << i;
    }
    // A timestamp column is int64 counts with its pandas dtype (the Python client's layout).
    EXPECT_EQ(m["__values_-value-12"]["pandas_dtype_"], "datetime64[ms]");
    const std::string i32 = m["__values_-value-2"]["id"];
    EXPECT_EQ(ChildRead(ObjPath(i32, "members/buffer_/data")),
              Bytes<int32_t>({INT32_MIN, 2, INT32_MAX}));
    EXPECT_EQ(
        ChildRead(ObjPath(std::string(m["__values_-value-10"]["id"]), "members/buffer_/data")),
        std::string("\x01\x00\x01", 3));
    EXPECT_EQ(
        ChildRead(ObjPath(std::string(m["__values_-value-12"]["id"]), "members/buffer_/data")),
        Bytes<int64_t>({0, 1700000000123, -1000}));
    // The column is a Tensor: numpy's view shows it.
    const std::string npy = ChildRead(View(i32, "tensor.npy"));
    EXPECT_EQ(npy.substr(npy.size() - 12), Bytes<int32_t>({INT32_MIN, 2, INT32_MAX}));
    // And Arrow JS reads the same table back from the DataFrame's view.
    json t = ReadWithArrowJs(View(id, "dataframe.arrow"));
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t["columns"]["u64"], json::parse(R"(["0", "4", "18446744073709551615"])"));
    EXPECT_EQ(t["columns"]["s"], json::parse(R"(["", "héllo", "x😀"])"));
    EXPECT_EQ(t["columns"]["t"], json::parse(R"(["0", "1700000000123", "-1000"])"));
    EXPECT_EQ(t["fields"][12]["type"], "Timestamp<MILLISECOND>");
  }
  // Nulls and two batches: a vineyard::Table of RecordBatches in Vineyard's layout.
  std::string id = LinkedId("new/nulls.arrows");
  ASSERT_FALSE(id.empty()) << Error(Path("new/nulls.arrows"));
  json m = ReadMeta(id);
  EXPECT_EQ(m["typename"], "vineyard::Table");
  EXPECT_EQ(m["__batches_-size"], 2);
  EXPECT_EQ(m["num_rows_"], 5);
  const json& rb = m["__batches_-0"];
  EXPECT_EQ(rb["typename"], "vineyard::RecordBatch");
  EXPECT_EQ(rb["schema_"]["typename"], "vineyard::SchemaProxy");
  EXPECT_EQ(rb["__columns_-0"]["typename"], "vineyard::NumericArray<double>");
  EXPECT_EQ(rb["__columns_-0"]["null_count_"], 1);
  EXPECT_EQ(rb["__columns_-2"]["typename"], "vineyard::StringArray");
  json t = ReadWithArrowJs(View(id, "table.arrow"));
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(t["columns"]["x"], json::parse("[1.5, null, 3.5, null, 5.5]"));
  EXPECT_EQ(t["columns"]["n"], json::parse(R"(["1", "2", null, "7", "8"])"));
  EXPECT_EQ(t["columns"]["s"], json::parse(R"(["p", null, "q", "r", "ß"])"));
  // The timestamp is an int64 NumericArray; its unit comes back from the SchemaProxy.
  EXPECT_EQ(rb["__columns_-3"]["typename"], "vineyard::NumericArray<int64>");
  EXPECT_EQ(t["fields"][3]["type"], "Timestamp<MILLISECOND>");
  EXPECT_EQ(t["columns"]["t"], json::parse(R"(["1000", "2000", null, "-1", null])"));
  std::string batch = rb["id"];
  EXPECT_EQ(ReadWithArrowJs(View(batch, "batch.arrow"))["columns"]["s"],
            json::parse(R"(["p", null, "q"])"));
}

// Bad input: refused at close() with the reason, the file kept as written, nothing
// created.
TEST_F(Arrow, MalformedArrowFilesAreRefusedWithTheReasonAndLeaveNothing) {
  auto r = RunCommand({"/usr/bin/node", kJs + "/write.mjs", tmp()}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string good = ReadAll(tmp() + "/frame.arrow");
  const std::string stream = ReadAll(tmp() + "/frame.arrows");
  ASSERT_GT(good.size(), 100u);
  Snapshot before = TakeSnapshot();
  struct Case {
    std::string name, bytes, reason;
  };
  // The footer's root offset pointing far outside it.
  std::string bad_footer = good;
  uint32_t flen;
  std::memcpy(&flen, &good[good.size() - 10], 4);
  std::memcpy(&bad_footer[good.size() - 10 - flen], "\x00\x00\x00\x40", 4);
  std::string huge_footer = good;
  std::memcpy(&huge_footer[huge_footer.size() - 10], "\xff\xff\xff\x7f", 4);
  const std::vector<Case> cases = {
      {"empty.arrow", "", "empty file"},
      {"text.arrow", "col\n1\n", "not Arrow IPC data"},
      {"cut.arrow", good.substr(0, good.size() / 2), "does not end with ARROW1"},
      {"footer.arrow", bad_footer, "the footer is not a valid flatbuffer"},
      {"huge.arrow", huge_footer, "footer size"},
      {"cut.arrows", stream.substr(0, stream.size() - 40), "truncated message"},
      {"magic.bin", std::string("ARROW1\0\0", 8) + "garbage", "ARROW1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(TryWriteNew(c.name, c.bytes), EIO);
    EXPECT_EQ(ReadLink(Path("new/" + c.name)), "");
    const std::string why = Error(Path("new/" + c.name));
    EXPECT_NE(why.find(c.reason), std::string::npos) << why;
  }
  ExpectUntouched(before);
}

// Dictionary-encoded columns (Arrow JS's default for strings) are decoded: into a
// '<U n' Tensor, or into a StringArray when there are nulls.
TEST_F(Arrow, DictionaryEncodedColumnsAreDecoded) {
  const std::string script =
      "import {tableFromArrays, tableToIPC, vectorFromArray, Dictionary, Utf8, Int8, Float64}"
      " from 'apache-arrow';\n"
      "import {writeFileSync} from 'node:fs';\n"
      "const d = process.argv[2];\n"
      "writeFileSync(d + '/d.arrow', tableToIPC(tableFromArrays({s: ['a', 'bé', 'a', '']}), "
      "'file'));\n"
      "writeFileSync(d + '/d.arrows', tableToIPC(tableFromArrays({s: ['a', 'bé', 'a', '']}), "
      "'stream'));\n"
      "const f = vectorFromArray([2.5, null, 2.5, 7], new Dictionary(new Float64(), new Int8()));\n"
      "writeFileSync(d + '/n.arrow', tableToIPC(tableFromArrays({f, s: vectorFromArray(['x', "
      "null, 'y', 'x'])}), 'file'));\n";
  std::ofstream(tmp() + "/dict.mjs") << script;
  ASSERT_EQ(system(("ln -sf " + kJs + "/node_modules " + tmp() + "/node_modules").c_str()), 0);
  auto r = RunCommand({"/usr/bin/node", tmp() + "/dict.mjs", Path("new")}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"d.arrow", "d.arrows"}) {
    SCOPED_TRACE(name);
    std::string id = LinkedId(std::string("new/") + name);
    ASSERT_FALSE(id.empty()) << Error(Path(std::string("new/") + name));
    json m = ReadMeta(id);
    EXPECT_EQ(m["typename"], "vineyard::DataFrame");
    EXPECT_EQ(m["__values_-value-0"]["value_type_meta_"], "<U2");
    json t = ReadWithArrowJs(View(id, "dataframe.arrow"));
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t["fields"][0]["type"], "Utf8");
    EXPECT_EQ(t["columns"]["s"], json::parse(R"(["a", "bé", "a", ""])"));
  }
  std::string id = LinkedId("new/n.arrow");
  ASSERT_FALSE(id.empty()) << Error(Path("new/n.arrow"));
  json m = ReadMeta(id);
  EXPECT_EQ(m["typename"], "vineyard::Table");
  EXPECT_EQ(m["__batches_-0"]["__columns_-0"]["typename"], "vineyard::NumericArray<double>");
  EXPECT_EQ(m["__batches_-0"]["__columns_-1"]["typename"], "vineyard::StringArray");
  json t = ReadWithArrowJs(View(id, "table.arrow"));
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(t["columns"]["f"], json::parse("[2.5, null, 2.5, 7]"));
  EXPECT_EQ(t["columns"]["s"], json::parse(R"(["x", null, "y", "x"])"));
}

// Input Arrow allows but the plugin does not take: refused at close() naming the
// codec or the column and its type; nothing is created.
TEST_F(Arrow, CompressedAndUnsupportedInputIsRefusedAtCloseNamingWhat) {
  namespace fb = org::apache::arrow::flatbuf;
  std::vector<vy_arrow::Field> fields(1);
  fields[0].name = "x";
  fields[0].type.kind = vy_arrow::Kind::kInt;
  fields[0].type.bit_width = 64;
  flatbuffers::FlatBufferBuilder b;
  std::vector<fb::FieldNode> nodes = {fb::FieldNode(1, 0)};
  std::vector<fb::Buffer> bufs = {fb::Buffer(0, 0), fb::Buffer(0, 8)};
  auto rb =
      fb::CreateRecordBatch(b, 1, b.CreateVectorOfStructs(nodes), b.CreateVectorOfStructs(bufs),
                            fb::CreateBodyCompression(b, fb::CompressionType_LZ4_FRAME));
  b.Finish(
      fb::CreateMessage(b, fb::MetadataVersion_V5, fb::MessageHeader_RecordBatch, rb.Union(), 8));
  std::string meta(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  meta.append((8 - meta.size() % 8) % 8, '\0');
  const uint32_t len = static_cast<uint32_t>(meta.size());
  const std::string compressed = vy_arrow::SchemaMessage(fields) + "\xff\xff\xff\xff" +
                                 std::string(reinterpret_cast<const char*>(&len), 4) + meta +
                                 std::string(8, '\0') + vy_arrow::EndOfStream();

  const std::string script =
      "import {tableFromArrays, tableToIPC, vectorFromArray, DateDay} from 'apache-arrow';"
      "process.stdout.write(tableToIPC(tableFromArrays({d: vectorFromArray([new Date(0)], "
      "new DateDay())}), 'file'));";
  std::ofstream(tmp() + "/date.mjs") << script;
  ASSERT_EQ(system(("ln -sf " + kJs + "/node_modules " + tmp() + "/node_modules").c_str()), 0);
  auto d = RunCommand({"/usr/bin/node", tmp() + "/date.mjs"}, 60);
  ASSERT_EQ(d.exit_code, 0) << d.output;

  Snapshot before = TakeSnapshot();
  EXPECT_EQ(TryWriteNew("z.arrows", compressed), EIO);
  EXPECT_NE(Error(Path("new/z.arrows")).find("compressed body (LZ4_FRAME), which is not supported"),
            std::string::npos)
      << Error(Path("new/z.arrows"));
  EXPECT_EQ(TryWriteNew("date.feather", d.output), EIO);
  EXPECT_NE(Error(Path("new/date.feather")).find("column 'd' has Arrow type Date"),
            std::string::npos)
      << Error(Path("new/date.feather"));
  ExpectUntouched(before);
}

}  // namespace
}  // namespace vyit
