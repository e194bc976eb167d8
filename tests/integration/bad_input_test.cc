// Bad input at the mount (DESIGN.md §3-§6): every refused operation returns the
// documented errno, keeps what the user wrote, and leaves every other object as it
// was (same ids, same meta.json, same bytes, same names).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "mount_fixture.h"

namespace vyit {
namespace {

class BadInput : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (HasFatalFailure()) return;
    base1_ = WriteNew("base1", RandomBytes(100 * 1024, 42));
    base2_ = WriteNew("base2", "two");
    ASSERT_TRUE(IsBlobId(base1_) && IsBlobId(base2_));
    pair_ = WriteMeta("basep", R"({"typename":"vineyard::Pair","first_":{"id":")" + base1_ +
                                   R"("},"second_":{"id":")" + base2_ + R"("}})");
    ASSERT_TRUE(IsObjectId(pair_));
    ASSERT_EQ(symlink(pair_.c_str(), Path("names/keep").c_str()), 0) << strerror(errno);
    snap_ = TakeSnapshot();
    ASSERT_EQ(snap_.size(), 3u);
  }

  // The baseline objects and the name are as they were; nothing but `extra` was added.
  void ExpectBaselineUntouched(const std::set<std::string>& extra = {}) {
    ExpectUntouched(snap_, extra);
    EXPECT_EQ(ListDir(Path("names")), std::vector<std::string>{"keep"});
    EXPECT_EQ(LinkedId("names/keep"), pair_);
  }

  // A failed seal: close() returned `want`, new/<name> is still a regular file with
  // the bytes written, and user.vineyard.error says why in one line.
  void ExpectKeptWithError(const std::string& name, const std::string& bytes) {
    const std::string path = Path("new/" + name);
    struct stat sb;
    ASSERT_EQ(lstat(path.c_str(), &sb), 0) << "the refused file must stay in new/";
    EXPECT_TRUE(S_ISREG(sb.st_mode)) << "a refused file must not become a link";
    EXPECT_EQ(static_cast<size_t>(sb.st_size), bytes.size());
    EXPECT_TRUE(ChildRead(path) == bytes) << "the refused file must keep its bytes";
    char buf[4096];
    ssize_t n = getxattr(path.c_str(), "user.vineyard.error", buf, sizeof buf);
    ASSERT_GT(n, 0) << "user.vineyard.error: " << strerror(errno);
    std::string reason(buf, static_cast<size_t>(n));
    if (!reason.empty() && reason.back() == '\n') reason.pop_back();
    EXPECT_FALSE(reason.empty());
    EXPECT_EQ(reason.find('\n'), std::string::npos) << "one line: " << reason;
  }

  static std::string Nested(int depth) {  // a document `depth` levels deep
    std::string v = "{}";
    for (int i = 2; i < depth; ++i) v = R"({"a":)" + v + "}";
    return R"({"typename":"vineyard::Deep","v":)" + v + "}";
  }

  std::string base1_, base2_, pair_;
  Snapshot snap_;
};

TEST_F(BadInput, InvalidJsonIsEinvalAndKeepsTheFile) {
  const std::string bad = "{\"typename\": \"vineyard::Pair\", \"first_\": ";
  EXPECT_EQ(TryWriteNew("bad.meta.json", bad), EINVAL);
  ExpectKeptWithError("bad.meta.json", bad);
  for (const std::string& doc : {std::string(R"({"typename": 42})"), std::string("[1, 2]")}) {
    SCOPED_TRACE(doc);
    EXPECT_EQ(TryWriteNew("field.meta.json", doc), EINVAL);
    ExpectKeptWithError("field.meta.json", doc);
    ASSERT_EQ(unlink(Path("new/field.meta.json").c_str()), 0) << strerror(errno);
  }
  ExpectBaselineUntouched();
}

TEST_F(BadInput, UnknownMemberIdIsEnoent) {
  const std::string doc = R"({"typename":"vineyard::Pair","first_":{"id":")" + base1_ +
                          R"("},"second_":{"id":"o0001000000fff999"}})";
  EXPECT_EQ(TryWriteNew("ghost.meta.json", doc), ENOENT);
  ExpectKeptWithError("ghost.meta.json", doc);
  ExpectBaselineUntouched();
}

TEST_F(BadInput, MetadataOver16MiBIsEfbig) {
  const std::string doc =
      R"({"typename":"vineyard::Big","pad":")" + std::string((16u << 20) + 10, 'x') + "\"}";
  EXPECT_EQ(TryWriteNew("big.meta.json", doc), EFBIG);
  ExpectKeptWithError("big.meta.json", doc);
  ExpectBaselineUntouched();
}

TEST_F(BadInput, NestingDeeperThan64IsEinval) {
  std::string ok = WriteMeta("deep64", Nested(64));
  EXPECT_TRUE(IsObjectId(ok)) << "64 levels are allowed";
  const std::string doc = Nested(65);
  EXPECT_EQ(TryWriteNew("deep65.meta.json", doc), EINVAL);
  ExpectKeptWithError("deep65.meta.json", doc);
  ExpectBaselineUntouched({ok});
}

TEST_F(BadInput, SealedPayloadRefusesWritesEvenForRoot) {
  const std::string data = ObjPath(base1_, "data");
  for (int flags : {O_WRONLY, O_RDWR, O_WRONLY | O_TRUNC, O_RDWR | O_APPEND}) {
    SCOPED_TRACE(flags);
    int fd = open(data.c_str(), flags);
    int e = errno;
    if (fd >= 0) close(fd);
    EXPECT_EQ(fd, -1);
    EXPECT_TRUE(e == EPERM || e == EACCES) << strerror(e);
  }
  EXPECT_EQ(truncate(data.c_str(), 0), -1);
  EXPECT_TRUE(errno == EPERM || errno == EACCES) << strerror(errno);
  int fd = open(ObjPath(pair_, "meta.json").c_str(), O_WRONLY);
  EXPECT_EQ(fd, -1) << "meta.json is read-only too";
  if (fd >= 0) close(fd);
  EXPECT_EQ(chmod(data.c_str(), 0666), -1) << "the payload's mode cannot be changed";
  ExpectBaselineUntouched();
}

class FullArena : public BadInput {
 protected:
  std::string DefaultOptions() const override { return "size=8M,durability=none"; }
};

TEST_F(FullArena, WritingPastSizeIsEnospcAndChangesNothingElse) {
  const std::string path = Path("new/big");
  int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  const std::string chunk = RandomBytes(1u << 20, 7);
  size_t written = 0;
  int write_errno = 0;
  while (written < (12u << 20)) {
    ssize_t n = write(fd, chunk.data(), chunk.size());
    if (n < 0) {
      write_errno = errno;
      break;
    }
    written += static_cast<size_t>(n);
  }
  EXPECT_EQ(write_errno, ENOSPC) << "wrote " << written << " bytes into an 8 MiB arena";
  // Uploads written through passthrough may overshoot size= by the tmpfs slack (1/8
  // of size) until their seal; through the daemon they stop at size= exactly.
  EXPECT_LE(written, (8u << 20) + (1u << 20));
  int rc = close(fd);
  int close_errno = errno;
  // The upload was cut short by ENOSPC: it must not be sealed as a truncated blob.
  EXPECT_EQ(rc, -1) << "close() after a write() failed with ENOSPC sealed " << ReadLink(path);
  if (rc == -1) {
    EXPECT_EQ(close_errno, ENOSPC) << strerror(close_errno);
  }
  struct stat sb;
  ASSERT_EQ(lstat(path.c_str(), &sb), 0);
  EXPECT_TRUE(S_ISREG(sb.st_mode)) << "new/big became a link to " << ReadLink(path);
  ExpectBaselineUntouched();
  // (If it was wrongly sealed, drop that object so that the check below stands alone.)
  if (std::string wrong = LinkedId("new/big"); !wrong.empty()) rmdir(ObjPath(wrong).c_str());
  // What the refused writer holds is given back when the file is removed.
  ASSERT_EQ(unlink(path.c_str()), 0) << strerror(errno);
  std::string id;
  EXPECT_TRUE(
      PollUntil([&] { return TryWriteNew("after", RandomBytes(4u << 20, 8), &id) == 0; }, 3000))
      << "4 MiB no longer fit after the refused upload was removed";
  EXPECT_TRUE(IsBlobId(id));
}

TEST_F(BadInput, RmdirOfAnotherUsersObjectIsEperm) {
  const uid_t nobody = 65534;
  EXPECT_EQ(RunAs(nobody, [&] { return rmdir(ObjPath(pair_).c_str()) == 0 ? 0 : errno; }), EPERM);
  EXPECT_EQ(RunAs(nobody, [&] { return unlink(Path("names/keep").c_str()) == 0 ? 0 : errno; }),
            EPERM);
  EXPECT_EQ(RunAs(nobody,
                  [&] {
                    return rename(Path("names/keep").c_str(), Path("names/mine").c_str()) == 0
                               ? 0
                               : errno;
                  }),
            EPERM);
  // It may still read them.
  EXPECT_EQ(
      RunAs(nobody, [&] { return access(ObjPath(base1_, "data").c_str(), R_OK) == 0 ? 0 : errno; }),
      0);
  ExpectBaselineUntouched();
}

TEST_F(BadInput, UnknownXattrIsEnodata) {
  char buf[256];
  for (const char* key : {"user.vineyard.bogus", "user.other", "user.vineyard.error"}) {
    SCOPED_TRACE(key);
    EXPECT_EQ(getxattr(ObjPath(base1_).c_str(), key, buf, sizeof buf), -1);
    EXPECT_EQ(errno, ENODATA);
    EXPECT_EQ(getxattr(ObjPath(base1_, "data").c_str(), key, buf, sizeof buf), -1);
    EXPECT_EQ(errno, ENODATA);
  }
  ExpectBaselineUntouched();
}

TEST_F(BadInput, MalformedIdInPathIsEnoent) {
  for (const std::string& bad :
       {std::string("oXYZ"), std::string("o123"), std::string("o8001000000000001x"),
        std::string("O8001000000000001"), std::string("o8001000000000FFF"),
        std::string("o80010000000fff99")}) {
    SCOPED_TRACE(bad);
    struct stat sb;
    EXPECT_EQ(stat(ObjPath(bad).c_str(), &sb), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(open(ObjPath(bad, "meta.json").c_str(), O_RDONLY), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(rmdir(ObjPath(bad).c_str()), -1);
    EXPECT_EQ(errno, ENOENT);
  }
  ExpectBaselineUntouched();
}

TEST_F(BadInput, NameForNonexistentIdIsEnoent) {
  EXPECT_EQ(symlink("../objects/o0001000000fff999", Path("names/ghost").c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(symlink("o8001000000fff999", Path("names/ghost").c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
  struct stat sb;
  EXPECT_EQ(lstat(Path("names/ghost").c_str(), &sb), -1);
  // An existing name stays as it was.
  EXPECT_EQ(symlink(base2_.c_str(), Path("names/keep").c_str()), -1);
  EXPECT_EQ(errno, EEXIST);
  ExpectBaselineUntouched();
}

TEST_F(BadInput, MkdirAnywhereIsEperm) {
  for (const std::string& rel :
       {std::string("d"), std::string("objects/d"), std::string("objects/o8001000000fff999"),
        std::string("names/d"), std::string("new/d"), std::string("objects/" + pair_ + "/d"),
        std::string("objects/" + pair_ + "/members/d")}) {
    SCOPED_TRACE(rel);
    EXPECT_EQ(mkdir(Path(rel).c_str(), 0755), -1);
    EXPECT_EQ(errno, EPERM) << strerror(errno);
  }
  ExpectBaselineUntouched();
}

// ---- Issue 14: findings 3, 6 and 7 ------------------------------------------------

// Finding 3: one line from any local user killed the daemon (an uncaught
// out_of_range from the JSON library) and with it every upload in flight.
TEST_F(BadInput, NumberOutOfRangeIsEinvalAtCloseAndTheDaemonStaysUp) {
  const int inflight = open(Path("new/inflight").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(inflight, 0) << strerror(errno);
  ASSERT_EQ(write(inflight, "first half, ", 12), 12);
  int k = 0;
  for (const char* n : {"1e400", "-1e400", "1e309", "[0,1e999]"}) {
    SCOPED_TRACE(n);
    const std::string name = "num" + std::to_string(k++) + ".meta.json";
    const std::string doc = std::string(R"({"typename":"t","n":)") + n + "}";
    EXPECT_EQ(TryWriteNew(name, doc), EINVAL);
    ExpectKeptWithError(name, doc);
    char buf[512];
    ssize_t len = getxattr(Path("new/" + name).c_str(), "user.vineyard.error", buf, sizeof buf);
    ASSERT_GT(len, 0);
    EXPECT_NE(std::string(buf, static_cast<size_t>(len)).find("number overflow"), std::string::npos)
        << std::string(buf, static_cast<size_t>(len));
  }
  ASSERT_EQ(waitpid(daemon_pid(), nullptr, WNOHANG), 0) << "the daemon died";
  EXPECT_TRUE(ReadStatus().is_object());
  // The upload that was open meanwhile seals with all its bytes.
  ASSERT_EQ(write(inflight, "second half", 11), 11);
  ASSERT_EQ(close(inflight), 0) << strerror(errno);
  const std::string id = LinkedId("new/inflight");
  ASSERT_TRUE(IsBlobId(id));
  EXPECT_EQ(ReadAll(ObjPath(id, "data")), "first half, second half");
  ExpectBaselineUntouched({id});
}

// Finding 7: the parser stopped at a NUL, so anything could follow the JSON.
TEST_F(BadInput, BytesAfterTheJsonAreEinval) {
  for (const std::string& doc :
       {std::string("{\"typename\":\"t\"}\0garbage", 24), std::string("{\"typename\":\"t\"}\0", 17),
        std::string(R"({"typename":"t"} {"typename":"u"})")}) {
    EXPECT_EQ(TryWriteNew("tail.meta.json", doc), EINVAL);
    ExpectKeptWithError("tail.meta.json", doc);
    ASSERT_EQ(unlink(Path("new/tail.meta.json").c_str()), 0) << strerror(errno);
  }
  ExpectBaselineUntouched();
}

// Finding 7: "." and ".." were accepted as member names (members/ listed them twice
// and the members could not be reached by path).
TEST_F(BadInput, MemberNamesThatAreNotFileNamesAreEinval) {
  for (const std::string& key :
       {std::string("."), std::string(".."), std::string(""), std::string(256, 'm')}) {
    SCOPED_TRACE(key.size() > 8 ? "256 bytes" : key);
    const std::string doc = R"({"typename":"t",")" + key + R"(":{"id":")" + base1_ + "\"}}";
    EXPECT_EQ(TryWriteNew("dots.meta.json", doc), EINVAL);
    ExpectKeptWithError("dots.meta.json", doc);
    ASSERT_EQ(unlink(Path("new/dots.meta.json").c_str()), 0) << strerror(errno);
  }
  ExpectBaselineUntouched();
}

// Finding 6: names of 256 bytes or more gave ENOENT or EINVAL; POSIX says
// ENAMETOOLONG, in every operation that takes a name.
TEST_F(BadInput, NamesOver255BytesAreEnametoolongEverywhere) {
  const std::string longest(255, 'n');
  for (size_t len : {size_t{256}, size_t{300}, size_t{1024}, size_t{1100}}) {
    SCOPED_TRACE(len);
    const std::string big(len, 'n');
    auto expect_too_long = [&](int rc, const char* op) {
      EXPECT_EQ(rc, -1) << op;
      EXPECT_EQ(errno, ENAMETOOLONG) << op << ": " << strerror(errno);
    };
    struct stat sb;
    for (const char* dir : {"", "objects/", "names/", "new/", "resolvers/", "instances/"}) {
      SCOPED_TRACE(dir);
      expect_too_long(lstat(Path(dir + big).c_str(), &sb), "lookup");
    }
    expect_too_long(lstat(ObjPath(pair_, big).c_str(), &sb), "lookup in an object");
    expect_too_long(lstat(ObjPath(pair_, "members/" + big).c_str(), &sb), "lookup in members/");
    expect_too_long(open(Path("new/" + big).c_str(), O_WRONLY | O_CREAT, 0644), "create");
    expect_too_long(symlink(pair_.c_str(), Path("names/" + big).c_str()), "symlink");
    expect_too_long(rename(Path("names/keep").c_str(), Path("names/" + big).c_str()), "rename");
    expect_too_long(mkdir(Path("new/" + big).c_str(), 0755), "mkdir");
    expect_too_long(unlink(Path("names/" + big).c_str()), "unlink");
    expect_too_long(rmdir(Path("objects/" + big).c_str()), "rmdir");
    expect_too_long(link(Path("names/keep").c_str(), Path("names/" + big).c_str()), "link");
  }
  // 255 bytes is a name like any other.
  ASSERT_EQ(symlink(pair_.c_str(), Path("names/" + longest).c_str()), 0) << strerror(errno);
  EXPECT_EQ(LinkedId("names/" + longest), pair_);
  const std::string id = WriteNew(longest, "x");
  EXPECT_TRUE(IsBlobId(id));
  ASSERT_EQ(unlink(Path("names/" + longest).c_str()), 0);
  ExpectBaselineUntouched({id});
}

// dump() throws on invalid UTF-8: status.json lists plugin files by name, and a file
// name may be any bytes.
TEST_F(BadInput, StatusJsonShowsAPluginFileNameThatIsNotUtf8) {
  const std::string path = Path("resolvers/bad\xff\xfe.so");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(write(fd, "not an ELF file", 15), 15);
  EXPECT_EQ(close(fd), 0) << "installed; its loading is refused: " << strerror(errno);
  nlohmann::json st = ReadStatus();
  ASSERT_TRUE(st.is_object()) << "status.json must stay readable";
  EXPECT_NE(st.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).find("bad"),
            std::string::npos);
  ASSERT_EQ(waitpid(daemon_pid(), nullptr, WNOHANG), 0) << "the daemon died";
}

// A CSV string column is padded to its widest cell: one 64 Ki-character cell over
// 1,100 records would take 288 MB; the builder refuses it instead.
TEST_F(BadInput, CsvWhoseStringColumnWouldExceed256MiBIsRefused) {
  std::string csv = "text\n" + std::string(65536, 'w') + "\n";
  for (int i = 0; i < 1100; ++i) csv += "\"\"\n";
  EXPECT_EQ(TryWriteNew("wide.csv", csv), EIO);
  ExpectKeptWithError("wide.csv", csv);
  char buf[512];
  ssize_t len = getxattr(Path("new/wide.csv").c_str(), "user.vineyard.error", buf, sizeof buf);
  ASSERT_GT(len, 0);
  EXPECT_NE(std::string(buf, static_cast<size_t>(len)).find("over 268435456"), std::string::npos)
      << std::string(buf, static_cast<size_t>(len));
  ExpectBaselineUntouched();
}

}  // namespace
}  // namespace vyit
