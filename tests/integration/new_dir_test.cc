// new/ as an operator sees it: failed uploads show in `ls new/` as <file>.error, in
// status.json, metrics, df and `vyctl ls --failed`; links of sealed uploads expire
// after new_ttl so that a script can write the same name again; each common idiom of
// writing a name again either works or fails in the documented way.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "mount_fixture.h"

namespace vyit {
namespace {

class NewDir : public MountTest {
 protected:
  std::string DefaultOptions() const override { return "new_ttl=1"; }
  bool Has(const std::string& entry) {
    for (auto& e : ListDir(Path("new"))) {
      if (e == entry) return true;
    }
    return false;
  }
};

TEST_F(NewDir, AFailedUploadIsListedWithItsReasonAndGoesWithTheFile) {
  ASSERT_EQ(TryWriteNew("bad.meta.json", "{\"typename\": "), EINVAL);
  ASSERT_EQ(TryWriteNew("bad.npy", std::string(5000, 'x')), EIO);  // fails after close()
  EXPECT_TRUE(Has("bad.meta.json.error"));
  EXPECT_TRUE(Has("bad.npy.error"));
  const std::string reason = ReadAll(Path("new/bad.npy.error"));
  EXPECT_NE(reason.find("NUMPY"), std::string::npos) << reason;
  EXPECT_EQ(reason.back(), '\n');
  struct stat st;
  ASSERT_EQ(stat(Path("new/bad.npy.error").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(static_cast<size_t>(st.st_size), reason.size());
  EXPECT_LT(open(Path("new/bad.npy.error").c_str(), O_WRONLY), 0);
  EXPECT_EQ(unlink(Path("new/bad.npy.error").c_str()), -1);
  EXPECT_EQ(errno, EPERM) << "the reason goes with the upload, not alone";

  auto status = ReadStatus();
  EXPECT_EQ(status["objects"]["failed_uploads"], 2);
  EXPECT_GE(status["objects"]["failed_upload_bytes"].get<uint64_t>(), 5000u);
  EXPECT_NE(ReadAll(Path("metrics")).find("vineyardfs_failed_uploads 2"), std::string::npos);

  CommandResult ls = RunCommand({VYCTL_BIN, "-m", mnt(), "ls", "--failed"});
  EXPECT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_NE(ls.output.find("new/bad.npy  EIO  "), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("new/bad.meta.json  EINVAL  "), std::string::npos) << ls.output;

  ASSERT_EQ(unlink(Path("new/bad.npy").c_str()), 0);
  EXPECT_FALSE(Has("bad.npy.error"));
  EXPECT_NE(access(Path("new/bad.npy.error").c_str(), F_OK), 0);
  EXPECT_EQ(ReadStatus()["objects"]["failed_uploads"], 1);
  // Rewriting the failed file so that it seals removes its .error too.
  ASSERT_EQ(TryWriteNew("bad.meta.json", "{\"typename\": \"t\"}"), 0);
  EXPECT_FALSE(Has("bad.meta.json.error"));
  EXPECT_EQ(ReadStatus()["objects"]["failed_uploads"], 0);
}

// The memory a failed upload holds is not free: df and status.json say so, and it
// comes back when the file is removed.
TEST_F(NewDir, AFailedUploadsMemoryIsCountedUntilItIsRemoved) {
  auto free_bytes = [&] {
    struct statvfs sv;
    EXPECT_EQ(statvfs(mnt().c_str(), &sv), 0);
    return static_cast<uint64_t>(sv.f_bfree) * sv.f_frsize;
  };
  const uint64_t before = free_bytes();
  ASSERT_EQ(TryWriteNew("big.npy", RandomBytes(64u << 20, 3)), EIO);
  EXPECT_LE(free_bytes() + (60u << 20), before) << "df shows a failed upload's memory as free";
  auto arena = ReadStatus()["arena"];
  EXPECT_GE(arena["used"].get<uint64_t>(), 60u << 20);
  ASSERT_EQ(unlink(Path("new/big.npy").c_str()), 0);
  EXPECT_TRUE(PollUntil([&] { return free_bytes() + (4u << 20) >= before; }, 3000));
}

// Writing a name again: within new_ttl the name is a link to a directory, so the
// kernel refuses an open for writing (EISDIR); the ways out are rm first, `cp
// --remove-destination`, `install`, `vyctl put`, or waiting new_ttl.
TEST_F(NewDir, WritingANameAgainWorksAfterTheLinkExpiresOrWithTheDocumentedIdioms) {
  ASSERT_TRUE(IsBlobId(WriteNew("x", "one")));
  const std::string x = Path("new/x");
  // `>` redirect and Python's open(..., 'wb') within the TTL: EISDIR.
  EXPECT_LT(open(x.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 0);
  EXPECT_EQ(errno, EISDIR);
  CommandResult py = RunCommand(
      {"/usr/bin/python3", "-c", "open('" + x + "', 'wb').write(b'two')"});
  EXPECT_NE(py.exit_code, 0);
  EXPECT_NE(py.output.find("IsADirectoryError"), std::string::npos) << py.output;
  // The idioms that replace the link work at once.
  const std::string src = tmp() + "/src";
  {
    int fd = open(src.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_EQ(write(fd, "two", 3), 3);
    close(fd);
  }
  // new/x names a directory (the object's): -T makes cp and install treat it as the
  // file to replace.
  CommandResult cp = RunCommand({"/bin/cp", "-T", "--remove-destination", src, x});
  EXPECT_EQ(cp.exit_code, 0) << cp.output;
  std::string id2 = LinkedId("new/x");
  ASSERT_TRUE(IsBlobId(id2));
  EXPECT_EQ(ReadAll(ObjPath(id2, "data")), "two");
  // install replaces the name too, but its chmod after close() reaches the object,
  // which is immutable: the object is made and install reports EPERM (documented).
  CommandResult in = RunCommand({"/usr/bin/install", "-T", "-m", "0644", src, x});
  EXPECT_NE(in.exit_code, 0);
  EXPECT_NE(in.output.find("cannot change permissions"), std::string::npos) << in.output;
  std::string id3 = LinkedId("new/x");
  ASSERT_TRUE(IsBlobId(id3));
  EXPECT_NE(id3, id2);
  EXPECT_EQ(ReadAll(ObjPath(id3, "data")), "two");
  // rm first, then any writer.
  ASSERT_EQ(unlink(x.c_str()), 0);
  ASSERT_TRUE(IsBlobId(WriteNew("x", "three")));
  // Plain cp within the TTL copies into the object's directory, which refuses it.
  EXPECT_NE(RunCommand({"/bin/cp", src, x}).exit_code, 0);
  // After new_ttl the link is gone and every idiom works.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(ReadLink(x), "") << "the link outlived new_ttl";
  EXPECT_EQ(RunCommand({"/bin/cp", src, x}).exit_code, 0);
  EXPECT_TRUE(IsBlobId(LinkedId("new/x")));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  py = RunCommand({"/usr/bin/python3", "-c", "open('" + x + "', 'wb').write(b'py')"});
  EXPECT_EQ(py.exit_code, 0) << py.output;
  std::string id4 = LinkedId("new/x");
  ASSERT_TRUE(IsBlobId(id4));
  EXPECT_EQ(ReadAll(ObjPath(id4, "data")), "py");
  // The objects stay: only the links in new/ expire.
  EXPECT_EQ(ReadAll(ObjPath(id2, "data")), "two");
  EXPECT_FALSE(ListDir(Path("new")).empty());
}

// Links nobody lists or looks up again (a writer that never unlinks) expire after
// new_ttl by the creates that follow, a bounded number per create: new/ holds none of
// them afterwards, its creation order does not grow with them, and no create looks at
// more than a few entries, however many were left (README "Millions of objects").
TEST_F(NewDir, LeftoverLinksExpireWithoutAListingInBoundedWorkPerCreate) {
  constexpr int kLeft = 2000;
  for (int i = 0; i < kLeft; ++i) {
    ASSERT_EQ(TryWriteNew("left" + std::to_string(i), "x"), 0) << i;
  }
  auto before = ReadStatus();
  EXPECT_GE(before["new"]["order"].get<uint64_t>(), before["new"]["entries"].get<uint64_t>());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // every link is past new_ttl
  // The client's pattern: create, write, close, readlink, unlink.
  constexpr int kCreates = kLeft / 4;  // each create expires up to 8 (fs/new_dir.cc)
  for (int i = 0; i < kCreates; ++i) {
    const std::string name = "c" + std::to_string(i);
    ASSERT_EQ(TryWriteNew(name, "y"), 0) << i;
    ASSERT_EQ(unlink(Path("new/" + name).c_str()), 0) << i;
  }
  auto after = ReadStatus();
  EXPECT_EQ(after["new"]["entries"], 0) << "leftover links stayed in new/: " << after["new"];
  EXPECT_GE(after["new"]["links_expired"].get<uint64_t>(), uint64_t{kLeft});
  // What remains of the creation order and the serial index is a bounded few.
  EXPECT_LE(after["new"]["order"].get<uint64_t>(), 64u) << after["new"];
  EXPECT_LE(after["new"]["serials"].get<uint64_t>(), 64u) << after["new"];
  // Per create, at most 8 entries looked at, whatever new/ held.
  EXPECT_LE(after["new"]["expiry_steps"].get<uint64_t>(), uint64_t{8} * (kLeft + kCreates));
  // ...and none of it came from a listing.
  EXPECT_EQ(after["requests"]["readdir"], 0);
  EXPECT_EQ(after["requests"]["readdirplus"], 0);
  EXPECT_EQ(ListDir(Path("new")), std::vector<std::string>{});
}

// With new_ttl long, the sweep leaves a link within it, and the creation order still
// does not grow with the creates that pass it.
class NewDirLongTtl : public MountTest {
 protected:
  std::string DefaultOptions() const override { return "new_ttl=3600"; }
};

TEST_F(NewDirLongTtl, TheSweepLeavesLinksWithinNewTtlAndDropsTheRest) {
  ASSERT_TRUE(IsBlobId(WriteNew("young", "x")));
  for (int i = 0; i < 1000; ++i) {
    const std::string name = "c" + std::to_string(i);
    ASSERT_EQ(TryWriteNew(name, "y"), 0);
    ASSERT_EQ(unlink(Path("new/" + name).c_str()), 0);
  }
  auto st = ReadStatus();
  EXPECT_EQ(st["new"]["entries"], 1) << st["new"];
  EXPECT_EQ(st["new"]["links_expired"], 0) << st["new"];
  EXPECT_LE(st["new"]["order"].get<uint64_t>(), 64u) << st["new"];
  EXPECT_TRUE(IsBlobId(LinkedId("new/young")));
}

}  // namespace
}  // namespace vyit
