// Bad input at the mount (DESIGN.md §3-§6): every refused operation returns the
// documented errno, keeps what the user wrote, and leaves every other object as it
// was (same ids, same meta.json, same bytes, same names).
#include <fcntl.h>
#include <sys/stat.h>
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

}  // namespace
}  // namespace vyit
