// Mount-level tests of the arrow plugin (plugins/arrow.cc, arrow_build.cc) against a
// real Arrow implementation nobody here wrote: Arrow JS (the npm package apache-arrow,
// pinned in tests/arrow_js/package-lock.json and installed into tests/arrow_js/ by
// tools/setup.sh or, if missing, by these tests with `npm ci`). Node reads the views
// the daemon stitches and writes the files the builder takes.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>

#include "arrow_format_generated.h"
#include "arrow_ipc.h"
#include "mount_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

const std::string kJs = std::string(TESTS_SOURCE_DIR) + "/arrow_js";

template <typename T>
std::string Bytes(std::initializer_list<T> v) {
  std::string s;
  for (T x : v) s.append(reinterpret_cast<const char*>(&x), sizeof x);
  return s;
}

class Arrow : public MountTest {
 protected:
  // Installs Arrow JS from the lockfile once; ctest runs each test in its own process,
  // two at a time, so the install is serialised by a lock file next to package.json.
  // The marker is written once `npm ci` has finished (a package's own files appear while
  // it is still unpacking), and only looked at under the lock.
  static void SetUpTestSuite() {
    const std::string marker = kJs + "/node_modules/.vineyardfs-installed";
    int lock = open((kJs + "/.install.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    ASSERT_GE(lock, 0) << strerror(errno);
    flock(lock, LOCK_EX);
    CommandResult r{0, ""};
    if (access(marker.c_str(), R_OK) != 0) {
      r = RunCommand({"/usr/bin/npm", "ci", "--prefix", kJs, "--no-audit", "--no-fund"}, 280);
      if (r.exit_code == 0) close(open(marker.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    }
    close(lock);  // releases the lock
    ASSERT_EQ(r.exit_code, 0) << "npm ci in tests/arrow_js failed:\n" << r.output;
  }
  // The Arrow file at `path` as Arrow JS reads it (tests/arrow_js/read.mjs).
  json ReadWithArrowJs(const std::string& path) {
    auto r = RunCommand({"/usr/bin/node", kJs + "/read.mjs", path}, 120);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    json j = json::parse(r.output, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.output;
    return j;
  }
  static std::string Error(const std::string& path) {
    char buf[4096];
    ssize_t n = getxattr(path.c_str(), "user.vineyard.error", buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
  }
  std::string Blob(const std::string& name, const std::string& bytes) {
    return WriteNew(name + ".blob", bytes);
  }
  // A 1-D Tensor in Vineyard's layout (what Vineyard's and our Python clients write).
  json TensorMeta(const std::string& descr, const std::string& name, uint64_t n,
                  const std::string& blob) {
    return {{"typename", "vineyard::Tensor<" + name + ">"},
            {"value_type_", name},
            {"value_type_meta_", descr},
            {"shape_", "[" + std::to_string(n) + "]"},
            {"partition_index_", "[]"},
            {"order_", "\"C\""},
            {"buffer_", {{"id", blob}}}};
  }
  // The plugin's accounting of the last resolve of `view` of `id` in the daemon log:
  // {generated, ranged, ranges}; all -1 if there is none.
  std::vector<long long> Accounting(const std::string& view, const std::string& id) {
    std::ifstream in(tmp() + "/daemon.log");
    std::string line;
    std::vector<long long> out{-1, -1, -1};
    const std::regex re("arrow: " + view + " of " + id +
                        ": ([0-9]+) bytes generated, ([0-9]+) bytes in ([0-9]+) blob ranges");
    std::smatch m;
    while (std::getline(in, line)) {
      if (std::regex_search(line, m, re))
        out = {std::stoll(m[1]), std::stoll(m[2]), std::stoll(m[3])};
    }
    return out;
  }
  std::string View(const std::string& id, const std::string& file) {
    return ObjPath(id, "views/" + file);
  }
};

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
