// The read path's quick requests (fs/passthrough.h SetQuickRequest, fs/generated_file.cc
// QuickRequest): the OPEN of a small meta.json and the RELEASE of its handle are
// answered by the daemon thread that read them, which keeps the /dev/fuse read lock
// and reads the next request itself. What would break: a run of warm meta.json reads
// spread over the loop threads again (a lock handoff, a futex wake-up, per request);
// a slow request (a seal) stuck behind a thread that kept the lock; the daemon not
// exiting at unmount because a thread left libfuse's loop holding the lock.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace vyit {
namespace {

class QuickReads : public MountTest {};

TEST_F(QuickReads, ARunOfWarmMetaJsonReadsIsAnsweredByOneThread) {
  const std::string id = WriteNew("b", std::string(1024, 'x'));
  ASSERT_FALSE(id.empty());
  const std::string meta = ObjPath(id, "meta.json");
  const std::string text = ReadAll(meta);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(ReadAll(meta), text);  // warm
  constexpr int kReads = 400;
  const auto before = SwitchesByThread(daemon_pid());
  for (int i = 0; i < kReads; ++i) ASSERT_EQ(ReadAll(meta), text);
  const auto after = SwitchesByThread(daemon_pid());
  // Each read is an OPEN and a RELEASE: the answering thread is woken at least once
  // per read. Loop threads that never get a request are never woken (they wait for
  // the read lock); the daemon's helper threads wake rarely. Before, every request
  // handed the lock to another loop thread: each of 3 or more threads switched about
  // 1.5 times per read.
  const auto [most, others] = TopTwo(before, after);
  EXPECT_GE(most, kReads) << "the reads were not answered by the daemon's threads?";
  EXPECT_LT(others, kReads / 4) << "a second daemon thread switched " << others
                                << " times during " << kReads << " warm meta.json reads";
}

TEST_F(QuickReads, UploadsSealWhileAnotherThreadReadsMetaJsonInALoop) {
  const std::string id = WriteNew("b", "12345");
  ASSERT_FALSE(id.empty());
  const std::string meta = ObjPath(id, "meta.json");
  const std::string text = ReadAll(meta);
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, wrong{0};
  std::thread reader([&] {
    while (!stop) {
      int fd = open(meta.c_str(), O_RDONLY | O_CLOEXEC);
      char buf[4096];
      ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
      if (fd >= 0) close(fd);
      if (n != static_cast<ssize_t>(text.size()) || std::memcmp(buf, text.data(), text.size()) != 0)
        ++wrong;
      ++reads;
    }
  });
  // A seal is a RELEASE of the upload and a LOOKUP that waits for it: both are
  // handed to another thread while the reader's requests keep one busy.
  for (int i = 0; i < 50; ++i) {
    std::string got = WriteNew("u" + std::to_string(i), "payload " + std::to_string(i));
    EXPECT_FALSE(got.empty()) << "upload " << i << " did not seal";
    if (!got.empty()) {
      EXPECT_EQ(ReadAll(ObjPath(got, "data")), "payload " + std::to_string(i));
    }
  }
  stop = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(wrong.load(), 0) << "of " << reads.load() << " meta.json reads";
}

// A meta.json OPEN that comes while a batch's commit holds the object table stops no
// other request. The quick OPEN renders on the thread that read it, which keeps the
// /dev/fuse read lock; waiting there for the table (its writer holds it across the
// journal commit and the inserts: ~0.5 s for 40,001 objects) would stop every
// request of the mount until the commit ended. The thread gives its read turn up
// before it waits (SharedMutex::SetBeforeWait, fs/fs.cc).
TEST_F(QuickReads, AMetaJsonOpenDuringABatchCommitStopsNoOtherRequest) {
  using Clock = std::chrono::steady_clock;
  const std::string id = WriteNew("b", std::string(1024, 'x'));
  ASSERT_FALSE(id.empty());
  const std::string meta = ObjPath(id, "meta.json");
  const std::string text = ReadAll(meta);
  const std::string path = Path("new/slow.batch");
  const int fd = OpenUpload(path, ListOfTensorsBatch(20000));
  ASSERT_GE(fd, 0) << strerror(errno);
  std::atomic<bool> stop{false};
  std::atomic<long> wrong{0};
  Clock::time_point slow_from, slow_to;  // the longest meta.json read
  std::thread reader([&] {
    Clock::duration longest{};
    while (!stop) {
      const auto t0 = Clock::now();
      if (ReadAll(meta) != text) ++wrong;
      const auto t1 = Clock::now();
      if (t1 - t0 > longest) {
        longest = t1 - t0;
        slow_from = t0;
        slow_to = t1;
      }
    }
  });
  std::vector<Clock::time_point> answered;  // other requests: LOOKUPs, no table
  answered.reserve(1 << 20);
  std::thread side([&] {
    for (long i = 0; !stop; ++i) {
      struct stat st;
      (void)!stat(Path("new/absent-" + std::to_string(i)).c_str(), &st);
      answered.push_back(Clock::now());
    }
  });
  const int closed = close(fd);  // the seal runs at the RELEASE
  struct stat st;
  const int rc = lstat(path.c_str(), &st);  // waits for the seal
  stop = true;
  reader.join();
  side.join();
  ASSERT_EQ(closed, 0) << strerror(errno);
  ASSERT_EQ(rc, 0) << strerror(errno);
  ASSERT_TRUE(S_ISLNK(st.st_mode)) << ReadAll(path + ".error");
  EXPECT_EQ(wrong.load(), 0);
  const auto waited_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(slow_to - slow_from).count();
  if (waited_ms < 20) GTEST_SKIP() << "no meta.json read waited for the commit";
  const long during = std::count_if(answered.begin(), answered.end(), [&](Clock::time_point t) {
    return t > slow_from && t < slow_to;
  });
  // Before: none (or the one in flight) while the read waited.
  EXPECT_GE(during, 10) << "other requests stopped while a meta.json read waited "
                        << waited_ms << " ms";
}

TEST_F(QuickReads, ALargeMetaJsonAndAChangedOneReadWholeBesideTheQuickPath) {
  // Over kQuickMetaText (64 KiB) the OPEN is handed over as before; its text is whole.
  std::string big = R"({"typename": "vineyard::Big", "pad": ")" + std::string(100000, 'p') + R"("})";
  const std::string b = WriteMeta("big", big);
  ASSERT_FALSE(b.empty());
  const std::string small = WriteNew("s", "abc");
  ASSERT_FALSE(small.empty());
  for (int i = 0; i < 5; ++i) {
    auto j = nlohmann::json::parse(ReadAll(ObjPath(b, "meta.json")), nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    EXPECT_EQ(j["pad"].get<std::string>().size(), 100000u);
    auto k = nlohmann::json::parse(ReadAll(ObjPath(small, "meta.json")), nullptr, false);
    ASSERT_FALSE(k.is_discarded());
    EXPECT_TRUE(k["transient"].get<bool>());
  }
  // A change made between quick reads shows at the next one.
  ASSERT_EQ(setxattr(ObjPath(small).c_str(), "user.vineyard.persist", "1", 1, 0), 0) << strerror(errno);
  auto k = nlohmann::json::parse(ReadAll(ObjPath(small, "meta.json")), nullptr, false);
  ASSERT_FALSE(k.is_discarded());
  EXPECT_FALSE(k["transient"].get<bool>());
}

TEST_F(QuickReads, TheDaemonExitsAtUnmountAfterARunOfQuickReads) {
  const std::string id = WriteNew("b", "12345");
  ASSERT_FALSE(id.empty());
  const std::string meta = ObjPath(id, "meta.json");
  for (int i = 0; i < 200; ++i) ReadAll(meta);
  // The thread that answered last still holds the read lock; the others wait for it.
  // Unmount() waits for the daemon to exit (the fixture fails on a timeout).
  Unmount();
  struct stat st;
  EXPECT_NE(stat(meta.c_str(), &st), 0) << "still mounted";
}

}  // namespace
}  // namespace vyit
