// Mount-level tests of builder/resolver plugins (DESIGN.md §8): the builtin numpy,
// json and csv plugins, plugins compiled here at test time against the installed
// header (tests/integration/plugins/*.c) and copied into resolvers/, every way a
// plugin can be refused, hot unload under open views, and the permission rule.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "mount_fixture.h"
#include "tests/npy_bytes.h"

namespace vyit {
namespace {

using vytest::Doubles;
using vytest::Int64s;
using vytest::Npy;

using nlohmann::json;

const std::string kSources = std::string(TESTS_SOURCE_DIR) + "/integration/plugins/";

class Plugins : public MountTest {
 protected:
  // Installs the plugin header as a user would (`cmake --install`), once per test,
  // and compiles tests/integration/plugins/<src> with the README's one command.
  std::string Compile(const std::string& src) {
    const std::string prefix = tmp() + "/prefix";
    if (access((prefix + "/include/vineyardfs/plugin.h").c_str(), R_OK) != 0) {
      auto r = RunCommand({"/usr/bin/cmake", "--install", VINEYARDFS_BUILD_DIR, "--component",
                           "plugin-dev", "--prefix", prefix});
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
    const std::string out = tmp() + "/" + src.substr(0, src.rfind('.')) + ".so";
    auto r = RunCommand({"/usr/bin/cc", "-shared", "-fPIC", "-O2", "-I" + prefix + "/include",
                         kSources + src, "-o", out});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return out;
  }
  // cp <so> resolvers/<name>; returns cp's exit code.
  int Install(const std::string& so, const std::string& name) {
    auto r = RunCommand({"/bin/cp", so, Path("resolvers/" + name)});
    return r.exit_code;
  }
  std::string View(const std::string& id, const std::string& file) {
    return ObjPath(id, "views/" + file);
  }
  static std::string Error(const std::string& path) {
    char buf[4096];
    ssize_t n = getxattr(path.c_str(), "user.vineyard.error", buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
  }
  static bool Exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
  }
  std::string Tensor(const std::string& name, const std::string& descr, const std::string& data) {
    return WriteNew(name, Npy(descr, "(" + std::to_string(data.size() / 8) + ",)", data));
  }
};

TEST_F(Plugins, BuiltinPluginsAreLoadedAndListed) {
  EXPECT_EQ(ListDir(Path("resolvers")),
            (std::vector<std::string>{"arrow.so", "csv.so", "json.so", "numpy.so"}));
  json st = ReadStatus();
  EXPECT_EQ(st["plugins"]["loaded"].size(), 4u) << st.dump();
  struct stat sb;
  ASSERT_EQ(stat(Path("resolvers/numpy.so").c_str(), &sb), 0);
  EXPECT_GT(sb.st_size, 1000);
  EXPECT_EQ(ReadAll(Path("resolvers/numpy.so")).substr(0, 4),
            "\x7f"
            "ELF");
}

TEST_F(Plugins, NumpyViewsEqualTheArrayForEveryDtypeAndOrder) {
  auto r = RunCommand({"/usr/bin/python3", kSources + "numpy_views.py", mnt(), tmp()}, 240);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("all numpy checks passed"), std::string::npos) << r.output;
}

TEST_F(Plugins, NpyBuildsATensorWhoseBufferHoldsTheArrayBytes) {
  const std::string data = Doubles({1.5, -2, 3.25, 1e300});
  std::string id = Tensor("x.npy", "<f8", data);
  ASSERT_FALSE(id.empty());
  json m = ReadMeta(id);
  EXPECT_EQ(m["typename"], "vineyard::Tensor<double>");
  EXPECT_EQ(m["value_type_"], "float64");
  EXPECT_EQ(m["shape_"], "[4]");
  EXPECT_EQ(m["nbytes"], 32);
  EXPECT_EQ(ChildRead(ObjPath(id, "members/buffer_/data")), data);
  // The view is the same .npy again, and it maps.
  EXPECT_EQ(ChildMmap(View(id, "tensor.npy")), Npy("<f8", "(4,)", data));
  // Claimed by its magic bytes too, whatever the name.
  std::string by_magic = WriteNew("raw.bin", Npy("<i8", "(2,)", Int64s({7, 8})));
  ASSERT_FALSE(by_magic.empty());
  EXPECT_EQ(ReadMeta(by_magic)["typename"], "vineyard::Tensor<int64>");
  // A *.blob name keeps the bytes as they are: no builder is asked.
  const std::string npy = Npy("<i8", "(2,)", Int64s({7, 8}));
  std::string raw = WriteNew("x.npy.blob", npy);
  ASSERT_TRUE(IsBlobId(raw));
  EXPECT_EQ(ChildRead(ObjPath(raw, "data")), npy);
}

class PluginsReserve : public Plugins {
 protected:
  std::string DefaultOptions() const override { return "reserve=64M"; }
};

// With reserve= the builder's copy of the array goes over the memory written ahead
// (store/arena.h CopyIntoFill): on two threads from 32 MiB, and past the reserve's end
// with copy_file_range. The Tensor's buffer holds exactly the array bytes each time.
TEST_F(PluginsReserve, NpyBuildsOverTheReserveHoldExactlyTheArrayBytes) {
  auto arena = [&](const char* key) { return ReadStatus()["arena"][key].get<uint64_t>(); };
  auto ready = [&] {
    for (int i = 0; i < 1000 && arena("reserve_ready") != (64u << 20); ++i) usleep(10000);
    return arena("reserve_ready") == (64u << 20);
  };
  uint64_t takes = 0;
  for (size_t mib : {40, 3, 70}) {
    SCOPED_TRACE(std::to_string(mib) + " MiB");
    ASSERT_TRUE(ready()) << ReadStatus()["arena"].dump();
    const std::string data = RandomBytes((mib << 20) + 8, static_cast<uint32_t>(mib));
    std::string id = Tensor("r" + std::to_string(mib) + ".npy", "<f8", data);
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(arena("reserve_takes"), ++takes);
    const std::string buffer = ObjPath(id, "members/buffer_/data");
    struct stat sb;
    ASSERT_EQ(stat(buffer.c_str(), &sb), 0);
    EXPECT_EQ(static_cast<size_t>(sb.st_size), data.size());
    EXPECT_TRUE(ChildRead(buffer) == data);
  }
}

TEST_F(Plugins, TruncatedNpyFailsCloseWithEioAndKeepsTheFile) {
  std::string keep = WriteNew("keep", "unrelated");
  Snapshot before = TakeSnapshot();
  const std::string bad = Npy("<f8", "(1000,)", Doubles({1, 2}));
  EXPECT_EQ(TryWriteNew("t.npy", bad), EIO);
  EXPECT_EQ(ReadLink(Path("new/t.npy")), "");
  EXPECT_EQ(ReadAll(Path("new/t.npy")), bad);
  const std::string why = Error(Path("new/t.npy"));
  EXPECT_NE(why.find("truncated .npy"), std::string::npos) << why;
  EXPECT_NE(why.find("8000 bytes"), std::string::npos) << why;
  EXPECT_EQ(TryWriteNew("s.npy", Npy("|O", "(1,)", "12345678")), EIO);
  EXPECT_NE(Error(Path("new/s.npy")).find("dtype '|O'"), std::string::npos);
  ExpectUntouched(before);  // no half-built tensor or blob is left behind
}

TEST_F(Plugins, CsvRoundTripsThroughADataFrame) {
  const std::string csv =
      "id,score,name,ok\n1,2.5,\"Smith, J\",True\n2,,\"say \"\"hi\"\"\",False\n-3,1e+20,z,True\n";
  std::string id = WriteNew("t.csv", csv);
  ASSERT_FALSE(id.empty());
  json m = ReadMeta(id);
  EXPECT_EQ(m["typename"], "vineyard::DataFrame");
  EXPECT_EQ(m["__values_-size"], 4);
  EXPECT_EQ(m["columns_"], R"(["id", "score", "name", "ok"])");
  EXPECT_EQ(m["__values_-value-0"]["typename"], "vineyard::Tensor<int64>");
  EXPECT_EQ(m["__values_-value-1"]["typename"], "vineyard::Tensor<double>");
  EXPECT_EQ(m["__values_-value-3"]["typename"], "vineyard::Tensor<bool>");
  std::string col0 = m["__values_-value-0"]["id"];
  EXPECT_EQ(ChildRead(ObjPath(col0, "members/buffer_/data")), Int64s({1, 2, -3}));
  EXPECT_EQ(ChildRead(View(id, "dataframe.csv")), csv);
  // Each column is a Tensor: the numpy plugin shows it too.
  EXPECT_EQ(ChildRead(View(col0, "tensor.npy")), Npy("<i8", "(3,)", Int64s({1, 2, -3})));

  Snapshot before = TakeSnapshot();
  EXPECT_EQ(TryWriteNew("ragged.csv", "a,b\n1,2\n3\n"), EIO);
  EXPECT_NE(Error(Path("new/ragged.csv")).find("record 3 has 1 fields"), std::string::npos);
  EXPECT_EQ(TryWriteNew("quote.csv", "a\n\"open\n"), EIO);
  EXPECT_NE(Error(Path("new/quote.csv")).find("unterminated"), std::string::npos);
  EXPECT_EQ(TryWriteNew("empty.csv", ""), EIO);
  // Bytes that are not UTF-8 in a column name: refused (the JSON library throws inside
  // the plugin; the call fails, the daemon stays up).
  EXPECT_EQ(TryWriteNew("bytes.csv", "a\xff\xfe,b\n1,2\n"), EIO);
  EXPECT_NE(Error(Path("new/bytes.csv")).find("UTF-8"), std::string::npos)
      << Error(Path("new/bytes.csv"));
  ExpectUntouched(before);
}

TEST_F(Plugins, JsonViewsShowScalarsInlineAndMembersById) {
  std::string n = WriteMeta("n", R"({"typename":"vineyard::Scalar<int>","value_":"42"})");
  std::string s = WriteMeta("s", R"({"typename":"vineyard::Scalar<std::string>","value_":"hi"})");
  std::string b = WriteNew("b", "payload");
  ASSERT_FALSE(n.empty() || s.empty() || b.empty());
  EXPECT_EQ(json::parse(ReadAll(View(n, "value.json"))), 42);
  EXPECT_EQ(json::parse(ReadAll(View(s, "value.json"))), "hi");
  std::string p = WriteMeta("p", R"({"typename":"vineyard::Pair","first_":{"id":")" + n +
                                     R"("},"second_":{"id":")" + b + "\"}}");
  EXPECT_EQ(json::parse(ReadAll(View(p, "value.json"))),
            json::parse(R"([42, {"id":")" + b + R"(","typename":"vineyard::Blob"}])"));
  std::string t = WriteMeta("t", R"({"typename":"vineyard::Tuple","__elements_-size":2,)"
                                 R"("__elements_-0":{"id":")" +
                                     s + R"("},"__elements_-1":{"id":")" + n + "\"}}");
  EXPECT_EQ(json::parse(ReadAll(View(t, "value.json"))), json::parse(R"(["hi", 42])"));
  // A view whose resolver cannot make sense of the object is not shown.
  std::string broken = WriteMeta("x", R"({"typename":"vineyard::List","__elements_-size":"x"})");
  EXPECT_EQ(ListDir(ObjPath(broken, "views")), std::vector<std::string>{});
  EXPECT_FALSE(Exists(View(broken, "value.json")));
}

TEST_F(Plugins, TheAuthorExampleBuildsWithOneCommandAndServesItsView) {
  std::string so = Compile("hello.c");
  ASSERT_EQ(Install(so, "hello.so"), 0);
  EXPECT_EQ(ListDir(Path("resolvers")),
            (std::vector<std::string>{"arrow.so", "csv.so", "hello.so", "json.so", "numpy.so"}));
  std::string id = WriteNew("greet", "world");
  struct stat sb;
  ASSERT_EQ(stat(View(id, "hello.txt").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_size, 12);  // exact: "hello, " + 5 bytes
  EXPECT_EQ(ChildRead(View(id, "hello.txt")), "hello, world");
  EXPECT_EQ(ChildMmap(View(id, "hello.txt")), "hello, world");
  // A large blob: the view stitches the generated head and the blob's bytes.
  const std::string big = RandomBytes(3 << 20, 5);
  std::string large = WriteNew("big", big);
  EXPECT_EQ(ChildRead(View(large, "hello.txt")), "hello, " + big);
}

TEST_F(Plugins, BadPluginsAreRefusedWithTheReasonAndTheDaemonKeepsServing) {
  std::string tensor = Tensor("keep.npy", "<f8", Doubles({1, 2}));
  ASSERT_FALSE(tensor.empty());
  const std::string junk = tmp() + "/junk.so";
  RunCommand({"/bin/sh", "-c", "echo 'not a plugin' > " + junk});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {junk, "not an ELF shared object"},
      {Compile("undefined_symbol.c"), "vy_no_such_function"},
      {Compile("wrong_abi.c"), "ABI version 99"},
      {Compile("no_entry.c"), "missing symbol vy_plugin_register"},
      {Compile("conflict.c"), "vineyard::Tensor -> tensor.npy is already registered by numpy.so"},
      {Compile("register_fails.c"), "vy_plugin_register returned -71"},
  };
  for (auto& [so, reason] : cases) {
    const std::string file = so.substr(so.rfind('/') + 1);
    const std::string stem = file.substr(0, file.size() - 3);
    EXPECT_EQ(Install(so, file), 0) << file;
    EXPECT_NE(ReadAll(Path("resolvers/" + stem + ".error")).find(reason), std::string::npos)
        << file << ": " << ReadAll(Path("resolvers/" + stem + ".error"));
    EXPECT_EQ(ReadStatus()["plugins"]["refused"].count(file), 1u) << file;
    // Still serving: the builtin view of the tensor is intact.
    EXPECT_EQ(ChildRead(View(tensor, "tensor.npy")), Npy("<f8", "(2,)", Doubles({1, 2}))) << file;
  }
  EXPECT_EQ(ReadStatus()["plugins"]["loaded"].size(), 4u);
  // Removing a refused plugin removes its error too.
  ASSERT_EQ(unlink(Path("resolvers/wrong_abi.so").c_str()), 0);
  EXPECT_FALSE(Exists(Path("resolvers/wrong_abi.error")));
  EXPECT_FALSE(Exists(Path("resolvers/wrong_abi.so")));
}

TEST_F(Plugins, OnlyRootOrTheMountOwnerMayWriteResolvers) {
  std::string so = Compile("hello.c");
  ASSERT_EQ(Install(so, "hello.so"), 0);
  const std::string path = Path("resolvers/evil.so");
  EXPECT_EQ(RunAs(65534,
                  [&] {
                    int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
                    return fd < 0 ? errno : 0;
                  }),
            EACCES);
  const std::string hello = Path("resolvers/hello.so");
  EXPECT_EQ(RunAs(65534, [&] { return unlink(hello.c_str()) == 0 ? 0 : errno; }), EACCES);
  EXPECT_TRUE(Exists(hello));
  // Builtins and error files cannot be removed; a name must end in .so.
  EXPECT_NE(unlink(Path("resolvers/numpy.so").c_str()), 0);
  EXPECT_EQ(errno, EPERM);
  int fd = open(Path("resolvers/notes.txt").c_str(), O_CREAT | O_WRONLY, 0644);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(Plugins, UnloadingHidesViewsWhileOpenViewsKeepWorking) {
  std::string so = Compile("hello.c");
  ASSERT_EQ(Install(so, "hello.so"), 0);
  const std::string bytes = RandomBytes(1 << 20, 9);
  std::string id = WriteNew("b", bytes);
  const std::string want = "hello, " + bytes;
  int fd = open(View(id, "hello.txt").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  void* map = mmap(nullptr, want.size(), PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);

  ASSERT_EQ(unlink(Path("resolvers/hello.so").c_str()), 0);
  EXPECT_EQ(ListDir(ObjPath(id, "views")), std::vector<std::string>{});
  EXPECT_FALSE(Exists(View(id, "hello.txt")));
  EXPECT_FALSE(Exists(Path("resolvers/hello.so")));
  std::string got(want.size(), '\0');
  EXPECT_EQ(pread(fd, got.data(), got.size(), 0), static_cast<ssize_t>(want.size()));
  EXPECT_EQ(got, want);
  EXPECT_EQ(std::memcmp(map, want.data(), want.size()), 0);
  munmap(map, want.size());
  close(fd);

  ASSERT_EQ(Install(so, "hello.so"), 0);  // and back
  EXPECT_EQ(ChildRead(View(id, "hello.txt")), want);
}

TEST_F(Plugins, TwoResolversForOneTypeAndTheLongestPrefixWins) {
  std::string d = Tensor("d.npy", "<f8", Doubles({1, 2, 3}));
  std::string i = Tensor("i.npy", "<i8", Int64s({4, 5}));
  // (array.arrow is the arrow plugin's view of a 1-D tensor.)
  EXPECT_EQ(ListDir(ObjPath(d, "views")), (std::vector<std::string>{"array.arrow", "tensor.npy"}));
  ASSERT_EQ(Install(Compile("tensor_extra.c"), "tensor_extra.so"), 0);
  EXPECT_EQ(ListDir(ObjPath(d, "views")),
            (std::vector<std::string>{"array.arrow", "shape.txt", "tensor.npy"}));
  EXPECT_EQ(ReadAll(View(d, "shape.txt")), "[3]\n");
  EXPECT_EQ(ChildRead(View(d, "tensor.npy")), Npy("<f8", "(3,)", Doubles({1, 2, 3})));
  EXPECT_EQ(ChildRead(View(i, "tensor.npy")), "int64 tensors are special\n");
  ASSERT_EQ(unlink(Path("resolvers/tensor_extra.so").c_str()), 0);
  EXPECT_EQ(ChildRead(View(i, "tensor.npy")), Npy("<i8", "(2,)", Int64s({4, 5})));
}

TEST_F(Plugins, UserBuildersRunAtSealAndAFailedBuildLeavesNothing) {
  ASSERT_EQ(Install(Compile("builders.c"), "builders.so"), 0);
  std::string up = WriteNew("a.upper", "shout");
  ASSERT_FALSE(up.empty());
  json m = ReadMeta(up);
  EXPECT_EQ(m["typename"], "test::Upper");
  EXPECT_EQ(ChildRead(ObjPath(up, "members/text_/data")), "SHOUT");

  Snapshot before = TakeSnapshot();
  EXPECT_EQ(TryWriteNew("b.half", "abc"), EIO);
  EXPECT_NE(Error(Path("new/b.half")).find("gave up after making blob"), std::string::npos);
  EXPECT_EQ(ReadAll(Path("new/b.half")), "abc");
  ExpectUntouched(before);  // the blob the builder made is gone again
}

TEST_F(Plugins, PluginsDroppedIntoThePluginDirLoadThroughInotify) {
  std::string so = Compile("hello.c");
  const std::string dir = ReadStatus()["plugins"]["dir"];
  RunCommand({"/bin/cp", so, dir + "/.tmp"});
  ASSERT_EQ(rename((dir + "/.tmp").c_str(), (dir + "/hello.so").c_str()), 0);
  EXPECT_TRUE(PollUntil([&] { return Exists(Path("resolvers/hello.so")); }));
  std::string id = WriteNew("x", "there");
  EXPECT_EQ(ReadAll(View(id, "hello.txt")), "hello, there");
  ASSERT_EQ(unlink((dir + "/hello.so").c_str()), 0);
  EXPECT_TRUE(PollUntil([&] { return !Exists(Path("resolvers/hello.so")); }));
}

TEST_F(Plugins, InstalledPluginsComeBackAfterARemount) {
  ASSERT_EQ(Install(Compile("hello.c"), "hello.so"), 0);
  std::string id = WriteNew("x", "again");
  Unmount();
  ASSERT_TRUE(Remount());
  EXPECT_EQ(ReadAll(View(id, "hello.txt")), "hello, again");
}

}  // namespace
}  // namespace vyit
