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
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

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
