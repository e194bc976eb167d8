// A create's quick requests (fs/quick_requests.cc): FORGETs, the GETATTR of a fixed
// directory, a GETXATTR of a security.* name, the READLINK of a sealed link in new/ and
// a LOOKUP in new/ of no upload or of a sealed link are answered by the daemon thread
// that read them, which keeps the /dev/fuse read lock. What would break: such requests
// handed to another loop thread again (a futex wake-up and a context switch each); a
// LOOKUP of an upload whose seal is still to come answered before the seal (the link
// not seen after close()), or stuck behind the thread that kept the lock.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include "tests/integration/mount_fixture.h"

namespace vyit {
namespace {

class QuickCreate : public MountTest {};

TEST_F(QuickCreate, ARunOfQuickRequestsIsAnsweredByOneThread) {
  ASSERT_FALSE(WriteNew("q.blob", "payload").empty());
  const std::string link = Path("new/q.blob");
  const std::string target = ReadLink(link);
  ASSERT_EQ(target.rfind("../objects/", 0), 0u) << target;
  char buf[64];
  constexpr int kRounds = 300;
  const auto before = SwitchesByThread(daemon_pid());
  for (int i = 0; i < kRounds; ++i) {
    // READLINK of the sealed link (the kernel does not cache symlink targets here).
    ASSERT_EQ(ReadLink(link), target);
    // LOOKUP in new/ of a name no upload has (never cached: each asks the daemon).
    struct stat st;
    const std::string missing = Path("new/missing-" + std::to_string(i));
    ASSERT_NE(stat(missing.c_str(), &st), 0);
    ASSERT_EQ(errno, ENOENT);
    // GETXATTR of a security.* name: not supported.
    ASSERT_LT(getxattr(Path("objects").c_str(), "security.capability", buf, sizeof buf), 0);
    ASSERT_EQ(errno, EOPNOTSUPP);
  }
  const auto [most, others] = TopTwo(before, SwitchesByThread(daemon_pid()));
  // 3 requests a round, each waking the answering thread at least once. Before, each
  // request handed the lock to another loop thread: 3 or more threads switched about
  // once per request each.
  EXPECT_GE(most, kRounds) << "the requests were not answered by the daemon's threads?";
  EXPECT_LT(others, kRounds / 2) << "a second daemon thread switched " << others
                                 << " times during " << 3 * kRounds << " quick requests";
}

TEST_F(QuickCreate, TheLinkIsSeenRightAfterCloseWhileQuickRequestsRunBeside) {
  std::atomic<bool> stop{false};
  std::atomic<long> side{0};
  std::thread t([&] {
    // Quick requests in a loop beside the creates: negative lookups, directory
    // attributes, security xattrs.
    char buf[16];
    for (long i = 0; !stop; ++i) {
      struct stat st;
      (void)!stat(Path("new/absent-" + std::to_string(i)).c_str(), &st);
      (void)!stat(Path("new").c_str(), &st);
      (void)!getxattr(Path("new").c_str(), "security.selinux", buf, sizeof buf);
      ++side;
    }
  });
  for (int i = 0; i < 200; ++i) {
    const std::string name = "c" + std::to_string(i) + ".blob";
    const std::string bytes = "object " + std::to_string(i);
    // WriteNew: open, write, close, then readlink: the LOOKUP of the upload just
    // closed must wait for its seal (not quick) and find the link.
    const std::string id = WriteNew(name, bytes);
    ASSERT_FALSE(id.empty()) << name;
    ASSERT_EQ(ReadAll(ObjPath(id, "data")), bytes);
    ASSERT_EQ(unlink(Path("new/" + name).c_str()), 0) << strerror(errno);
  }
  stop = true;
  t.join();
  EXPECT_GT(side.load(), 0);
}

TEST_F(QuickCreate, AnUploadStillOpenIsLookedUpAsAnUpload) {
  // A LOOKUP of an upload that is not sealed is not quick: stat sees the upload (a
  // regular file with the bytes so far), and after close the link.
  const std::string path = Path("new/open.blob");
  int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0) << strerror(errno);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 3);
  ASSERT_EQ(close(fd), 0);
  ASSERT_EQ(lstat(path.c_str(), &st), 0) << strerror(errno);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  const std::string id = LinkedId("new/open.blob");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(ReadAll(ObjPath(id, "data")), "abc");
}

// A LOOKUP of an upload whose seal is running stops no other request. The seal holds
// the upload's lock for its whole length; a quick LOOKUP that waited for that lock
// would keep the /dev/fuse read lock meanwhile, and no other request of the mount
// would be read until the seal ended.
TEST_F(QuickCreate, ALookupDuringASealStopsNoOtherRequest) {
  // A List of 20,000 one-byte Tensors (40,001 objects): a seal of some 0.5-1 s.
  const std::string body = ListOfTensorsBatch(20000);
  const std::string path = Path("new/slow.batch");
  const int fd = OpenUpload(path, body);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::atomic<bool> waiting{false}, stop{false};
  std::atomic<long> during{0};
  std::thread side([&] {
    for (long i = 0; !stop; ++i) {
      struct stat st;
      (void)!stat(Path("new/absent-" + std::to_string(i)).c_str(), &st);  // a LOOKUP each
      if (waiting) ++during;
    }
  });
  ASSERT_EQ(close(fd), 0);  // the seal runs at the RELEASE, which close() does not wait for
  // Let the RELEASE reach the daemon and its seal take the upload's lock (the seal
  // itself takes some 0.5 s: the lookup below comes in the middle of it).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  waiting = true;
  const auto t0 = std::chrono::steady_clock::now();
  struct stat st;
  const int rc = lstat(path.c_str(), &st);  // waits for the seal
  waiting = false;
  const auto waited = std::chrono::steady_clock::now() - t0;
  stop = true;
  side.join();
  ASSERT_EQ(rc, 0) << strerror(errno);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << std::oct << st.st_mode << std::dec << " size "
                                   << st.st_size << ": " << ReadAll(path + ".error");
  if (waited < std::chrono::milliseconds(100)) {
    GTEST_SKIP() << "the seal ended before the lookup came: nothing to check";
  }
  // Before: 0 (or the one in flight) for as long as the seal ran.
  EXPECT_GE(during.load(), 10) << "other requests stopped during a "
                               << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                               << " ms seal";
}

}  // namespace
}  // namespace vyit
