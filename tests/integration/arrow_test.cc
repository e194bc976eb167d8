// Mount-level tests of the arrow plugin (plugins/arrow.cc, arrow_build.cc) against a
// real Arrow implementation nobody here wrote: Arrow JS (arrow_fixture.h). Node reads
// the views the daemon stitches; the files the builder takes are in
// arrow_input_test.cc.
#include "arrow_fixture.h"

namespace vyit {
namespace {

TEST_F(Arrow, PluginIsLoadedBesideTheOthers) {
  EXPECT_EQ(ListDir(Path("resolvers")),
            (std::vector<std::string>{"arrow.so", "csv.so", "json.so", "numpy.so"}));
}

// (a) A DataFrame made by the csv plugin, read by Arrow JS: every value and type.
TEST_F(Arrow, ArrowJsReadsTheDataFrameOfACsvFile) {
  std::string id = WriteNew("t.csv",
                            "id,score,name,ok\n1,2.5,\"Smith, J\",True\n2,,héllo,False\n"
                            "-3,1e+20,z,True\n");
  ASSERT_FALSE(id.empty());
  json t = ReadWithArrowJs(View(id, "dataframe.arrow"));
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(t["rows"], 3);
  EXPECT_EQ(t["fields"], json::parse(R"([
    {"name": "id", "type": "Int64", "nullable": false},
    {"name": "score", "type": "Float64", "nullable": false},
    {"name": "name", "type": "Utf8", "nullable": false},
    {"name": "ok", "type": "Bool", "nullable": false}])"));
  EXPECT_EQ(t["columns"]["id"], json::parse(R"(["1", "2", "-3"])"));
  EXPECT_EQ(t["columns"]["score"], json::parse(R"([2.5, "NaN", 1e20])"));
  EXPECT_EQ(t["columns"]["name"], json::parse(R"(["Smith, J", "héllo", "z"])"));
  EXPECT_EQ(t["columns"]["ok"], json::parse("[true, false, true]"));
}

// (a) A DataFrame written as meta.json in Vineyard's layout, one Tensor per dtype.
TEST_F(Arrow, ArrowJsReadsEveryColumnTypeOfAVineyardDataFrame) {
  struct Col {
    std::string label, descr, name, bytes, arrow_type;
    json values;
  };
  const std::vector<Col> cols = {
      {"i8", "|i1", "int8", Bytes<int8_t>({-128, 0, 127}), "Int8", {-128, 0, 127}},
      {"i16", "<i2", "int16", Bytes<int16_t>({-32768, 5, 32767}), "Int16", {-32768, 5, 32767}},
      {"i32",
       "<i4",
       "int",
       Bytes<int32_t>({INT32_MIN, 6, INT32_MAX}),
       "Int32",
       {INT32_MIN, 6, INT32_MAX}},
      {"i64",
       "<i8",
       "int64",
       Bytes<int64_t>({INT64_MIN, 7, INT64_MAX}),
       "Int64",
       {"-9223372036854775808", "7", "9223372036854775807"}},
      {"u8", "|u1", "uint8", Bytes<uint8_t>({0, 8, 255}), "Uint8", {0, 8, 255}},
      {"u16", "<u2", "uint16", Bytes<uint16_t>({0, 9, 65535}), "Uint16", {0, 9, 65535}},
      {"u32",
       "<u4",
       "uint32",
       Bytes<uint32_t>({0, 10, UINT32_MAX}),
       "Uint32",
       {0, 10, 4294967295u}},
      {"u64",
       "<u8",
       "uint64",
       Bytes<uint64_t>({0, 11, UINT64_MAX}),
       "Uint64",
       {"0", "11", "18446744073709551615"}},
      {"f16",
       "<f2",
       "float16",
       Bytes<uint16_t>({0x3c00, 0xc000, 0x7bff}),
       "Float16",
       {1.0, -2.0, 65504.0}},
      {"f32",
       "<f4",
       "float",
       Bytes<float>({0.5f, -1.25f, INFINITY}),
       "Float32",
       {0.5, -1.25, "Infinity"}},
      {"f64",
       "<f8",
       "double",
       Bytes<double>({M_PI, NAN, -1e300}),
       "Float64",
       {M_PI, "NaN", -1e300}},
      {"b", "|b1", "bool", std::string("\x01\x00\x01\x01", 3), "Bool", {true, false, true}},
      {"u",
       "<U2",
       "str64",
       Bytes<uint32_t>({'a', 0, 0x1F600, 'z', 0, 0}),
       "Utf8",
       {"a", "\xF0\x9F\x98\x80z", ""}},
      {"s", "|S3", "bytes24", std::string("ab\0xyzq\0\0", 9), "Binary", {"6162", "78797a", "71"}},
      {"ts",
       "<M8[ns]",
       "datetime64[ns]",
       Bytes<int64_t>({0, 1700000000123456789, -1}),
       "Timestamp<NANOSECOND>",
       {"0", "1700000000123456789", "-1"}},
      {"tms",
       "<M8[ms]",
       "datetime64[ms]",
       Bytes<int64_t>({1, 2, 3}),
       "Timestamp<MILLISECOND>",
       {"1", "2", "3"}},
      {"dur",
       "<m8[us]",
       "timedelta64[us]",
       Bytes<int64_t>({-5, 0, 5}),
       "Duration<MICROSECOND>",
       {"-5", "0", "5"}},
      // The Python client's layout of pandas datetimes: int64 counts and pandas_dtype_.
      {"pd",
       "<i8",
       "int64",
       Bytes<int64_t>({7, 8, 9}),
       "Timestamp<NANOSECOND, UTC>",
       {"7", "8", "9"}},
  };
  json df = {{"typename", "vineyard::DataFrame"}};
  json labels = json::array();
  for (size_t i = 0; i < cols.size(); ++i) {
    const Col& c = cols[i];
    std::string blob = Blob(c.label, c.bytes);
    ASSERT_FALSE(blob.empty());
    json tm = TensorMeta(c.descr, c.name, 3, blob);
    if (c.label == "pd") tm["pandas_dtype_"] = "datetime64[ns, UTC]";
    std::string tensor = WriteMeta("t" + c.label, tm.dump());
    ASSERT_FALSE(tensor.empty()) << c.label;
    labels.push_back(c.label);
    df["__values_-key-" + std::to_string(i)] = json(c.label).dump();
    df["__values_-value-" + std::to_string(i)] = {{"id", tensor}};
  }
  df["columns_"] = labels.dump();
  df["__values_-size"] = cols.size();
  df["partition_index_row_"] = 0;
  df["partition_index_column_"] = 0;
  df["row_batch_index_"] = 0;
  std::string id = WriteMeta("df", df.dump());
  ASSERT_FALSE(id.empty());
  json t = ReadWithArrowJs(View(id, "dataframe.arrow"));
  ASSERT_TRUE(t.is_object());
  ASSERT_EQ(t["fields"].size(), cols.size()) << t.dump();
  for (size_t i = 0; i < cols.size(); ++i) {
    SCOPED_TRACE(cols[i].label);
    EXPECT_EQ(t["fields"][i]["name"], cols[i].label);
    EXPECT_EQ(t["fields"][i]["type"], cols[i].arrow_type);
    EXPECT_EQ(t["columns"][cols[i].label], cols[i].values);
  }
}

// Zero-copy: every fixed-width column body of the view is a blob range. The plugin's
// accounting (one log line per resolve) shows that the bytes it generated are the
// metadata only, and that the view's size is those plus the column blobs' bytes.
TEST_F(Arrow, ViewCopiesNoColumnBytes) {
  const uint64_t n = 1 << 20;  // 8 MiB + 4 MiB of columns
  std::string f64 = RandomBytes(n * 8, 1), i32 = RandomBytes(n * 4, 2);
  for (size_t i = 0; i < f64.size(); i += 8) f64[i + 7] = 0x3f;  // no NaN payload surprises
  std::string b0 = Blob("f64", f64), b1 = Blob("i32", i32);
  std::string t0 = WriteMeta("t0", TensorMeta("<f8", "double", n, b0).dump());
  std::string t1 = WriteMeta("t1", TensorMeta("<i4", "int", n, b1).dump());
  json df = {{"typename", "vineyard::DataFrame"},
             {"columns_", "[\"x\", \"y\"]"},
             {"__values_-key-0", "\"x\""},
             {"__values_-value-0", {{"id", t0}}},
             {"__values_-key-1", "\"y\""},
             {"__values_-value-1", {{"id", t1}}},
             {"__values_-size", 2}};
  std::string id = WriteMeta("big", df.dump());
  ASSERT_FALSE(id.empty());
  struct stat st;
  ASSERT_EQ(stat(View(id, "dataframe.arrow").c_str(), &st), 0);
  auto acc = Accounting("dataframe.arrow", id);
  ASSERT_GE(acc[0], 0) << "no accounting line in the daemon log";
  EXPECT_EQ(acc[1], static_cast<long long>(n * 12));  // both columns, as blob ranges
  EXPECT_EQ(acc[2], 2);                               // one range per column
  EXPECT_LT(acc[0], 4096);                            // magic, flatbuffers, padding, footer
  EXPECT_EQ(st.st_size, acc[0] + acc[1]);
  // And the file is the columns: Arrow JS reads them back.
  json t = ReadWithArrowJs(View(id, "dataframe.arrow"));
  ASSERT_TRUE(t.is_object());
  int32_t y;
  std::memcpy(&y, i32.data() + 4 * (n - 1), 4);
  EXPECT_EQ(t["columns"]["y"][n - 1], y);
  double x;
  std::memcpy(&x, f64.data() + 8 * 12345, 8);
  EXPECT_EQ(t["columns"]["x"][12345], x);
}

// Vineyard's own Arrow layout (python/vineyard/data/arrow.py): NumericArray with a
// null bitmap and an offset, BooleanArray, StringArray, as array.arrow and as a
// RecordBatch whose SchemaProxy names the columns.
TEST_F(Arrow, ArrowJsReadsVineyardArrowArraysWithNulls) {
  std::string values = Blob("v", Bytes<int64_t>({100, 1, 2, 3, 4}));
  std::string bitmap = Blob("m", std::string("\x1a", 1));  // rows 1, 3, 4 valid -> offset 1: 1,3
  json num = {{"typename", "vineyard::NumericArray<int64>"},
              {"length_", 4},
              {"offset_", 1},
              {"null_count_", 1},
              {"buffer_", {{"id", values}}},
              {"null_bitmap_", {{"id", bitmap}}}};
  std::string a = WriteMeta("num", num.dump());
  ASSERT_FALSE(a.empty());
  json t = ReadWithArrowJs(View(a, "array.arrow"));
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(t["fields"][0]["type"], "Int64");
  // bitmap 0b00011010 from bit 1: rows 0..3 valid = 1,0,1,1
  EXPECT_EQ(t["columns"]["values"], json::parse(R"(["1", null, "3", "4"])"));

  std::string offs = Blob("o", Bytes<int32_t>({0, 2, 2, 7}));
  std::string data = Blob("d", "hiworld");
  std::string empty = Blob("e", "");
  json str = {{"typename", "vineyard::StringArray"},
              {"length_", 3},
              {"offset_", 0},
              {"null_count_", 0},
              {"buffer_offsets_", {{"id", offs}}},
              {"buffer_data_", {{"id", data}}},
              {"null_bitmap_", {{"id", empty}}}};
  std::string s = WriteMeta("str", str.dump());
  std::string bits = Blob("bits", std::string("\x05", 1));
  json boo = {{"typename", "vineyard::BooleanArray"},
              {"length_", 3},
              {"offset_", 0},
              {"null_count_", 0},
              {"buffer_", {{"id", bits}}},
              {"null_bitmap_", {{"id", empty}}}};
  std::string b = WriteMeta("bool", boo.dump());
  ASSERT_FALSE(s.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(ReadWithArrowJs(View(s, "array.arrow"))["columns"]["values"],
            json::parse(R"(["hi", "", "world"])"));
  EXPECT_EQ(ReadWithArrowJs(View(b, "array.arrow"))["columns"]["values"],
            json::parse("[true, false, true]"));
}

}  // namespace
}  // namespace vyit
