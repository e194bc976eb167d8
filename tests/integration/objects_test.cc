// Mount-level tests of the object tree (DESIGN.md §3-§5): creating blobs and
// metadata objects through new/, reading them back from another process, xattrs,
// persist, names, delete, and the status files.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <tuple>

#include "mount_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

class Objects : public MountTest {
 protected:
  // getxattr; *err gets errno (0 on success).
  static std::string GetXattr(const std::string& path, const std::string& key, int* err) {
    char buf[4096];
    ssize_t n = getxattr(path.c_str(), key.c_str(), buf, sizeof buf);
    *err = n < 0 ? errno : 0;
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
  }
  std::string PairJson(const std::string& a, const std::string& b, const std::string& extra = "") {
    return R"({"typename":"vineyard::Pair","first_":{"id":")" + a + R"("},"second_":{"id":")" + b +
           "\"}" + extra + "}";
  }
  void ExpectChildReadsBack(const std::string& id, const std::string& bytes) {
    struct stat sb;
    ASSERT_EQ(stat(ObjPath(id, "data").c_str(), &sb), 0) << strerror(errno);
    EXPECT_EQ(static_cast<size_t>(sb.st_size), bytes.size());
    std::string r = ChildRead(ObjPath(id, "data"));
    EXPECT_TRUE(r == bytes) << "read() of " << bytes.size() << " bytes differs (got " << r.size()
                            << ")";
    std::string m = ChildMmap(ObjPath(id, "data"));
    EXPECT_TRUE(m == bytes) << "mmap of " << bytes.size() << " bytes differs (got " << m.size()
                            << ")";
  }
};

const size_t kSizes[] = {1, (1u << 20) + 3, 16u << 20};

TEST_F(Objects, WrittenPayloadsReadBackIdenticalInAnotherProcess) {
  for (size_t n : kSizes) {
    SCOPED_TRACE(n);
    std::string bytes = RandomBytes(n, n);
    std::string id = WriteNew("w" + std::to_string(n), bytes);
    ASSERT_TRUE(IsBlobId(id)) << id;
    ExpectChildReadsBack(id, bytes);
  }
}

TEST_F(Objects, MmapWrittenPayloadsReadBackIdenticalInAnotherProcess) {
  for (size_t n : kSizes) {
    SCOPED_TRACE(n);
    std::string bytes = RandomBytes(n, n + 7);
    std::string id = WriteNewMmap("m" + std::to_string(n), bytes);
    ASSERT_TRUE(IsBlobId(id)) << id;
    ExpectChildReadsBack(id, bytes);
  }
}

TEST_F(Objects, EmptyFileBecomesEmptyBlob) {
  std::string id = WriteNew("empty", "");
  ASSERT_TRUE(IsBlobId(id)) << id;
  struct stat sb;
  ASSERT_EQ(stat(ObjPath(id, "data").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_size, 0);
  EXPECT_EQ(ChildRead(ObjPath(id, "data")), "");
  json m = ReadMeta(id);
  EXPECT_EQ(m["typename"], "vineyard::Blob");
  EXPECT_EQ(m["nbytes"], 0);
}

TEST_F(Objects, PairMetaShowsMembersExpandedAndMemberLinks) {
  std::string a = WriteNew("a", "alpha"), b = WriteNew("b", "beta!!");
  ASSERT_TRUE(IsBlobId(a) && IsBlobId(b));
  std::string p = WriteMeta("p", PairJson(a, b, R"(,"note":{"k":[1,2]})"));
  ASSERT_TRUE(IsObjectId(p)) << p;
  EXPECT_FALSE(IsBlobId(p)) << "a metadata object must not have the blob bit: " << p;
  EXPECT_EQ(ListDir(ObjPath(p)), (std::vector<std::string>{"members", "meta.json", "views"}));

  std::string text = ChildRead(ObjPath(p, "meta.json"));
  json m = json::parse(text, nullptr, false);
  ASSERT_FALSE(m.is_discarded()) << text;
  EXPECT_EQ(m["id"], p);
  EXPECT_EQ(m["typename"], "vineyard::Pair");
  EXPECT_EQ(m["nbytes"], 11);
  EXPECT_EQ(m["instance_id"], 1);
  EXPECT_EQ(m["global"], false);
  EXPECT_EQ(m["transient"], true);
  EXPECT_TRUE(m.contains("signature"));
  EXPECT_TRUE(m.contains("__timestamp"));
  EXPECT_EQ(m["note"], json::parse(R"({"k":[1,2]})")) << "plain fields are kept as given";
  for (auto& [field, id, size] : {std::tuple{"first_", a, 5}, std::tuple{"second_", b, 6}}) {
    SCOPED_TRACE(field);
    const json& mem = m[field];
    EXPECT_EQ(mem["id"], id);
    EXPECT_EQ(mem["typename"], "vineyard::Blob");
    EXPECT_EQ(mem["nbytes"], size);
    for (const char* k : {"instance_id", "global", "transient", "signature", "__timestamp"}) {
      EXPECT_TRUE(mem.contains(k)) << "member lacks " << k;
    }
  }
  EXPECT_EQ(ListDir(ObjPath(p, "members")), (std::vector<std::string>{"first_", "second_"}));
  EXPECT_EQ(ReadLink(ObjPath(p, "members/first_")), "../../" + a);
  EXPECT_EQ(ReadLink(ObjPath(p, "members/second_")), "../../" + b);
  EXPECT_EQ(ChildRead(ObjPath(p, "members/second_/data")), "beta!!");
}

TEST_F(Objects, NestedPairExpandsRecursively) {
  std::string a = WriteNew("a", "A"), b = WriteNew("b", "BB"), c = WriteNew("c", "CCC");
  std::string inner = WriteMeta("inner", PairJson(a, b));
  ASSERT_TRUE(IsObjectId(inner));
  std::string outer = WriteMeta("outer", PairJson(inner, c));
  ASSERT_TRUE(IsObjectId(outer));
  json m = json::parse(ChildRead(ObjPath(outer, "meta.json")), nullptr, false);
  ASSERT_FALSE(m.is_discarded());
  EXPECT_EQ(m["nbytes"], 6);
  EXPECT_EQ(m["first_"]["id"], inner);
  EXPECT_EQ(m["first_"]["typename"], "vineyard::Pair");
  EXPECT_EQ(m["first_"]["first_"]["id"], a);
  EXPECT_EQ(m["first_"]["second_"]["nbytes"], 2);
  EXPECT_EQ(m["second_"]["id"], c);
  EXPECT_EQ(ChildRead(ObjPath(outer, "members/first_/members/second_/data")), "BB");
}

TEST_F(Objects, XattrsDescribeTheObject) {
  std::string a = WriteNew("a", "12345"), b = WriteNew("b", "678");
  std::string p = WriteMeta("p", PairJson(a, b));
  ASSERT_TRUE(IsObjectId(p));
  const std::map<std::string, std::string> blob_want = {
      {"user.vineyard.id", a},        {"user.vineyard.typename", "vineyard::Blob"},
      {"user.vineyard.nbytes", "5"},  {"user.vineyard.instance_id", "1"},
      {"user.vineyard.persist", "0"}, {"user.vineyard.global", "0"},
      {"user.vineyard.local", "1"}};
  for (const std::string& path : {ObjPath(a), ObjPath(a, "data"), ObjPath(a, "meta.json")}) {
    SCOPED_TRACE(path);
    for (auto& [k, v] : blob_want) {
      int e;
      EXPECT_EQ(GetXattr(path, k, &e), v) << k;
      EXPECT_EQ(e, 0) << k << ": " << strerror(e);
    }
    char list[4096];
    ssize_t n = listxattr(path.c_str(), list, sizeof list);
    ASSERT_GT(n, 0) << strerror(errno);
    std::set<std::string> names;
    for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(list + i)) + 1)
      names.insert(list + i);
    for (auto& [k, v] : blob_want) EXPECT_TRUE(names.count(k)) << "listxattr lacks " << k;
    int e;
    GetXattr(path, "user.vineyard.nope", &e);
    EXPECT_EQ(e, ENODATA);
  }
  int e;
  EXPECT_EQ(GetXattr(ObjPath(p), "user.vineyard.typename", &e), "vineyard::Pair");
  EXPECT_EQ(GetXattr(ObjPath(p), "user.vineyard.nbytes", &e), "8");
  EXPECT_EQ(GetXattr(ObjPath(p), "user.vineyard.id", &e), p);
}

TEST_F(Objects, PersistViaSetxattrPersistsObjectAndMembers) {
  std::string a = WriteNew("a", "x"), b = WriteNew("b", "y"), other = WriteNew("o", "z");
  std::string p = WriteMeta("p", PairJson(a, b));
  ASSERT_TRUE(IsObjectId(p) && IsObjectId(other));
  EXPECT_EQ(ReadMeta(p)["transient"], true);
  ASSERT_EQ(setxattr(ObjPath(p).c_str(), "user.vineyard.persist", "1", 1, 0), 0) << strerror(errno);
  for (auto& id : {p, a, b}) {
    json m = json::parse(ChildRead(ObjPath(id, "meta.json")), nullptr, false);
    EXPECT_EQ(m["transient"], false) << id;
    int e;
    EXPECT_EQ(GetXattr(ObjPath(id), "user.vineyard.persist", &e), "1") << id;
  }
  json m = ReadMeta(p);
  EXPECT_EQ(m["first_"]["transient"], false) << "expanded member shows its persisted state";
  EXPECT_EQ(ReadMeta(other)["transient"], true) << "an unrelated object stays transient";
  EXPECT_EQ(ReadStatus()["objects"]["persisted"], 3);
}

TEST_F(Objects, NamesPutDropRenameAndMoveFromNew) {
  std::string a = WriteNew("a", "named bytes");
  ASSERT_TRUE(IsBlobId(a));
  ASSERT_EQ(symlink(("../objects/" + a).c_str(), Path("names/foo").c_str()), 0) << strerror(errno);
  EXPECT_EQ(LinkedId("names/foo"), a);
  EXPECT_EQ(ChildRead(Path("names/foo/data")), "named bytes");
  EXPECT_EQ(ListDir(Path("names")), std::vector<std::string>{"foo"});

  // A bare id is accepted as the target too.
  ASSERT_EQ(symlink(a.c_str(), Path("names/bare").c_str()), 0) << strerror(errno);
  EXPECT_EQ(ChildRead(Path("names/bare/data")), "named bytes");
  ASSERT_EQ(unlink(Path("names/bare").c_str()), 0) << strerror(errno);

  // An existing name is EEXIST and keeps its target.
  std::string b = WriteNew("b", "other");
  EXPECT_EQ(symlink(("../objects/" + b).c_str(), Path("names/foo").c_str()), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(LinkedId("names/foo"), a);

  ASSERT_EQ(rename(Path("names/foo").c_str(), Path("names/bar").c_str()), 0) << strerror(errno);
  struct stat sb;
  EXPECT_EQ(lstat(Path("names/foo").c_str(), &sb), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(LinkedId("names/bar"), a);
  EXPECT_EQ(InChild([&] { return access(Path("names/bar/data").c_str(), R_OK) == 0 ? 0 : errno; }),
            0);

  // A second hop, with the renamed link already looked up and read.
  ASSERT_EQ(rename(Path("names/bar").c_str(), Path("names/baz").c_str()), 0) << strerror(errno);
  EXPECT_EQ(LinkedId("names/baz"), a) << "readlink after a second rename";
  EXPECT_EQ(ChildRead(Path("names/baz/data")), "named bytes");
  ASSERT_EQ(rename(Path("names/baz").c_str(), Path("names/bar").c_str()), 0) << strerror(errno);
  EXPECT_EQ(LinkedId("names/bar"), a);

  ASSERT_EQ(unlink(Path("names/bar").c_str()), 0) << strerror(errno);
  EXPECT_EQ(lstat(Path("names/bar").c_str(), &sb), -1);
  EXPECT_EQ(ChildRead(ObjPath(a, "data")), "named bytes") << "dropping a name keeps the object";
  EXPECT_TRUE(ListDir(Path("names")).empty());

  // mv new/x names/x names the sealed object.
  std::string x = WriteNew("x", "via mv");
  ASSERT_TRUE(IsBlobId(x));
  ASSERT_EQ(rename(Path("new/x").c_str(), Path("names/x").c_str()), 0) << strerror(errno);
  EXPECT_EQ(LinkedId("names/x"), x);
  EXPECT_EQ(lstat(Path("new/x").c_str(), &sb), -1) << "new/x should have moved";
  EXPECT_EQ(ChildRead(Path("names/x/data")), "via mv");
  ASSERT_EQ(rename(Path("names/x").c_str(), Path("names/y").c_str()), 0) << strerror(errno);
  EXPECT_EQ(LinkedId("names/y"), x) << "renaming a name made by mv new/x names/x";
  EXPECT_EQ(ChildRead(Path("names/y/data")), "via mv");
  EXPECT_EQ(ReadStatus()["objects"]["names"], 1);
}

TEST_F(Objects, DeleteCascadesToUnreferencedMembersAndRefusesMembers) {
  std::string a = WriteNew("a", "a"), b = WriteNew("b", "b");
  std::string p = WriteMeta("p", PairJson(a, b));
  ASSERT_TRUE(IsObjectId(p));
  ASSERT_EQ(symlink(p.c_str(), Path("names/pn").c_str()), 0) << strerror(errno);

  EXPECT_EQ(rmdir(ObjPath(a).c_str()), -1);
  EXPECT_EQ(errno, EBUSY) << "a member of a live object";
  EXPECT_EQ(ChildRead(ObjPath(a, "data")), "a");

  ASSERT_EQ(rmdir(ObjPath(p).c_str()), 0) << strerror(errno);
  struct stat sb;
  for (auto& id : {p, a, b}) {
    EXPECT_EQ(InChild([&] { return stat(ObjPath(id).c_str(), &sb) == 0 ? 0 : errno; }), ENOENT)
        << id;
  }
  EXPECT_EQ(lstat(Path("names/pn").c_str(), &sb), -1) << "a name of a deleted object vanishes";

  // A named member and a shared member survive; the others go.
  std::string c = WriteNew("c", "c"), d = WriteNew("d", "d"), e = WriteNew("e", "e");
  std::string f = WriteNew("f", "f");
  ASSERT_EQ(symlink(c.c_str(), Path("names/c").c_str()), 0);
  std::string q = WriteMeta("q", PairJson(c, d));
  std::string r1 = WriteMeta("r1", PairJson(e, f));
  std::string r2 = WriteMeta("r2", PairJson(e, c));
  ASSERT_TRUE(IsObjectId(q) && IsObjectId(r1) && IsObjectId(r2));
  ASSERT_EQ(rmdir(ObjPath(q).c_str()), 0) << strerror(errno);
  ASSERT_EQ(rmdir(ObjPath(r1).c_str()), 0) << strerror(errno);
  EXPECT_EQ(stat(ObjPath(d).c_str(), &sb), -1);
  EXPECT_EQ(stat(ObjPath(f).c_str(), &sb), -1);
  std::vector<std::string> left{c, e, r2};
  std::sort(left.begin(), left.end());
  EXPECT_EQ(ListDir(Path("objects")), left);
  EXPECT_EQ(ChildRead(ObjPath(c, "data")), "c");
  EXPECT_EQ(ChildRead(ObjPath(e, "data")), "e");
  EXPECT_EQ(ReadStatus()["objects"]["total"], 3);
}

TEST_F(Objects, StatfsReportsArena) {
  struct statvfs before;
  ASSERT_EQ(statvfs(mnt().c_str(), &before), 0) << strerror(errno);
  EXPECT_EQ(static_cast<uint64_t>(before.f_blocks) * before.f_frsize, 256ull << 20);
  EXPECT_EQ(before.f_bfree, before.f_blocks);
  std::string id = WriteNew("one", RandomBytes(1 << 20, 1));
  ASSERT_TRUE(IsBlobId(id));
  std::string id2 = WriteNew("two", "2");
  struct statvfs after;
  ASSERT_EQ(statvfs(mnt().c_str(), &after), 0);
  json st = ReadStatus();
  uint64_t used = (static_cast<uint64_t>(after.f_blocks) - after.f_bfree) * after.f_frsize;
  EXPECT_GE(used, 1u << 20);
  EXPECT_EQ(used, st["arena"]["used"].get<uint64_t>());
  EXPECT_EQ(static_cast<uint64_t>(after.f_bavail) * after.f_frsize,
            (256ull << 20) - st["arena"]["used"].get<uint64_t>());
  EXPECT_EQ(after.f_files - after.f_ffree, 2u) << "used inodes (df -i IUsed) = object count";
}

TEST_F(Objects, StatusMetricsAndInstanceFiles) {
  json st = ReadStatus();
  EXPECT_EQ(st["instance"], 1);
  EXPECT_EQ(st["arena"]["size"], 256ull << 20);
  EXPECT_EQ(st["objects"]["total"], 0);
  std::string a = WriteNew("a", "aaaa"), b = WriteNew("b", "bb");
  std::string p = WriteMeta("p", PairJson(a, b));
  ASSERT_TRUE(IsObjectId(p));
  ASSERT_EQ(symlink(p.c_str(), Path("names/p").c_str()), 0);
  st = ReadStatus();
  EXPECT_EQ(st["objects"]["total"], 3);
  EXPECT_EQ(st["objects"]["blobs"], 2);
  EXPECT_EQ(st["objects"]["names"], 1);
  EXPECT_EQ(st["objects"]["persisted"], 0);
  EXPECT_EQ(st["objects"]["blob_bytes"], 6);
  EXPECT_GE(st["requests"]["seal"].get<int>(), 3);

  std::string metrics = ChildRead(Path("metrics"));
  EXPECT_NE(metrics.find("\nvineyardfs_objects 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nvineyardfs_names 1\n"), std::string::npos) << metrics;

  EXPECT_EQ(ListDir(Path("instances")), std::vector<std::string>{"1.json"});
  json inst = json::parse(ChildRead(Path("instances/1.json")), nullptr, false);
  ASSERT_FALSE(inst.is_discarded());
  EXPECT_EQ(inst["instance"], 1);
  EXPECT_EQ(inst["status"], "up");
  EXPECT_EQ(ListDir(Path("resolvers")),
            (std::vector<std::string>{"arrow.so", "csv.so", "json.so", "numpy.so"}));
}

TEST_F(Objects, AppendAndSealOnLastClose) {
  const std::string path = Path("new/app");
  int fd1 = open(path.c_str(), O_CREAT | O_WRONLY | O_APPEND, 0644);
  ASSERT_GE(fd1, 0) << strerror(errno);
  ASSERT_EQ(write(fd1, "hello", 5), 5);
  ASSERT_EQ(lseek(fd1, 0, SEEK_SET), 0);
  ASSERT_EQ(write(fd1, ",", 1), 1) << "O_APPEND writes at the end whatever the offset";
  int fd2 = open(path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd2, 0) << strerror(errno);
  ASSERT_EQ(write(fd2, " world", 6), 6);
  ASSERT_EQ(close(fd1), 0) << strerror(errno);
  EXPECT_EQ(ReadLink(path), "") << "sealed before the last descriptor was closed";
  ASSERT_EQ(close(fd2), 0) << strerror(errno);
  std::string id = LinkedId("new/app");
  ASSERT_TRUE(IsBlobId(id)) << ReadLink(path);
  EXPECT_EQ(ChildRead(ObjPath(id, "data")), "hello, world");
}

TEST_F(Objects, RewriteBeforeSealKeepsFinalBytes) {
  const std::string path = Path("new/rw");
  int fd = open(path.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(write(fd, "aaaaaaaaaa", 10), 10);
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  ASSERT_EQ(write(fd, "BBB", 3), 3);
  ASSERT_EQ(pwrite(fd, "C", 1, 8), 1);
  char back[16] = {};
  ASSERT_EQ(pread(fd, back, sizeof back, 0), 10) << "reading the unsealed file";
  EXPECT_EQ(std::string(back, 10), "BBBaaaaaCa");
  ASSERT_EQ(ftruncate(fd, 9), 0) << strerror(errno);
  ASSERT_EQ(close(fd), 0) << strerror(errno);
  std::string id = LinkedId("new/rw");
  ASSERT_TRUE(IsBlobId(id));
  EXPECT_EQ(ChildRead(ObjPath(id, "data")), "BBBaaaaaC");
  EXPECT_EQ(ChildMmap(ObjPath(id, "data")), "BBBaaaaaC");
}

TEST_F(Objects, RemovingNewLinkKeepsObject) {
  std::string id = WriteNew("x", "keep me");
  ASSERT_TRUE(IsBlobId(id));
  ASSERT_EQ(unlink(Path("new/x").c_str()), 0) << strerror(errno);
  struct stat sb;
  EXPECT_EQ(lstat(Path("new/x").c_str(), &sb), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_TRUE(ListDir(Path("new")).empty());
  EXPECT_EQ(ChildRead(ObjPath(id, "data")), "keep me");
  EXPECT_EQ(ListDir(Path("objects")), std::vector<std::string>{id});
  // The name can be reused for a new object with a new id.
  std::string id2 = WriteNew("x", "again");
  EXPECT_TRUE(IsBlobId(id2));
  EXPECT_NE(id2, id);
}

// Listing objects/ without stat (os.listdir, ls) is plain READDIR: the kernel asks for
// READDIRPLUS (FUSE_CAP_READDIRPLUS_AUTO) only where the reader looks the entries up,
// so listing a big store makes no inode per object, here or in the kernel (README
// "Millions of objects"); `ls -l` still sees every entry's attributes.
TEST_F(Objects, ListingObjectsMakesNoInodePerEntryAndLsLSeesEveryAttribute) {
  constexpr size_t kObjects = 3000;
  for (size_t i = 0; i < kObjects; ++i) {
    ASSERT_EQ(TryWriteNew("b" + std::to_string(i), "x"), 0) << i;
    ASSERT_EQ(unlink(Path("new/b" + std::to_string(i)).c_str()), 0);
  }
  Unmount();
  ASSERT_TRUE(Remount());  // nothing cached in the kernel
  const uint64_t before = ReadStatus()["inodes"].get<uint64_t>();
  auto listed = ListDir(Path("objects"));
  ASSERT_EQ(listed.size(), kObjects);
  auto st = ReadStatus();
  const uint64_t made = st["inodes"].get<uint64_t>() - before;
  EXPECT_LT(made, kObjects / 2) << "the listing made an inode per object";
  EXPECT_GT(st["requests"]["readdir"].get<uint64_t>(), 0u) << st["requests"];
  // `ls -l`: every entry a directory, as READDIRPLUS or LOOKUP answers.
  CommandResult ls = RunCommand({"/bin/ls", "-l", Path("objects")});
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  size_t dirs = 0;
  for (size_t p = 0; (p = ls.output.find("\nd", p)) != std::string::npos; ++p) ++dirs;
  EXPECT_EQ(dirs, kObjects) << ls.output.substr(0, 400);
}

}  // namespace
}  // namespace vyit
