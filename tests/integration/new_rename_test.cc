// rename(2) within new/: an upload is sealed under the name it has when it is closed, a
// rename onto an upload replaces (discards) it, RENAME_NOREPLACE refuses, and a rename
// racing the seal of the same upload (the seal reads the name under the upload's lock,
// which the rename now takes too) ends with the link under the new name.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "mount_fixture.h"

namespace vyit {
namespace {

class NewRename : public MountTest {
 protected:
  // Opens new/<name> for writing and writes `bytes`; returns the descriptor (-1 on error).
  int OpenAndWrite(const std::string& name, const std::string& bytes) {
    int fd = open(Path("new/" + name).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return -1;
    if (write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
      close(fd);
      return -1;
    }
    return fd;
  }
  size_t Objects() { return ListDir(Path("objects")).size(); }
};

TEST_F(NewRename, AnOpenUploadIsSealedUnderTheNameItHasAtClose) {
  int fd = OpenAndWrite("x.part", "hello");
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(rename(Path("new/x.part").c_str(), Path("new/x").c_str()), 0) << strerror(errno);
  ASSERT_EQ(close(fd), 0) << strerror(errno);
  const std::string id = LinkedId("new/x");
  ASSERT_TRUE(IsBlobId(id)) << "new/x: '" << id << "'";
  EXPECT_EQ(ReadAll(ObjPath(id, "data")), "hello");
  struct stat st;
  EXPECT_NE(lstat(Path("new/x.part").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(NewRename, ARenameOntoAnOpenUploadDiscardsItAndNoReplaceRefuses) {
  int a = OpenAndWrite("a", "AAAA");
  int b = OpenAndWrite("b", "BB");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_NE(renameat2(AT_FDCWD, Path("new/b").c_str(), AT_FDCWD, Path("new/a").c_str(),
                      RENAME_NOREPLACE),
            0);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(rename(Path("new/b").c_str(), Path("new/a").c_str()), 0) << strerror(errno);
  ASSERT_EQ(close(b), 0) << strerror(errno);
  close(a);  // the replaced upload: never sealed, whatever its close says
  const std::string id = LinkedId("new/a");
  ASSERT_TRUE(IsBlobId(id)) << "new/a: '" << id << "'";
  EXPECT_EQ(ReadAll(ObjPath(id, "data")), "BB");
  EXPECT_EQ(Objects(), 1u);  // "AAAA" made no object
  EXPECT_EQ(ListDir(Path("new")), std::vector<std::string>{"a"});
}

TEST_F(NewRename, ARenameRacingTheSealOfTheSameUploadEndsWithTheLinkUnderTheNewName) {
  constexpr int kUploads = 200;
  for (int i = 0; i < kUploads; ++i) {
    const std::string name = "s" + std::to_string(i), bytes = "payload " + std::to_string(i);
    int fd = OpenAndWrite(name + ".part", bytes);
    ASSERT_GE(fd, 0) << strerror(errno);
    ASSERT_EQ(close(fd), 0) << strerror(errno);  // the seal runs at the RELEASE, after this
    ASSERT_EQ(rename(Path("new/" + name + ".part").c_str(), Path("new/" + name).c_str()), 0)
        << name << ": " << strerror(errno);
    const std::string id = LinkedId("new/" + name);
    ASSERT_TRUE(IsBlobId(id)) << "new/" << name << ": '" << id << "'";
    EXPECT_EQ(ReadAll(ObjPath(id, "data")), bytes);
  }
  EXPECT_EQ(Objects(), static_cast<size_t>(kUploads));
}

}  // namespace
}  // namespace vyit
