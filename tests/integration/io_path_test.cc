// The I/O path actually taken (DESIGN.md §9): with passthrough, reading and mapping a
// payload never reaches the daemon and adds nothing to the page cache; without it,
// the same reads are served by the daemon and return the same bytes.
//
// The page cache is measured per file with cachestat(2) (Linux 6.5+): the pages cached
// for the FUSE file itself, which passthrough never fills (reads and mappings go to
// the arena's tmpfs file) and the fallback path fills with a second copy. Nothing
// else on the machine moves that figure, so these tests may run in parallel with
// anything (unlike the system-wide Cached of /proc/meminfo they used to read).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tests/integration/mount_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

constexpr size_t k64MiB = 64u << 20;

// cachestat(2): Debian 12's kernel headers (6.1) predate it, so its ABI is spelled
// out here (include/uapi/linux/mman.h; syscall 451 on x86-64 and arm64).
constexpr long kSysCachestat = 451;
struct CachestatRange {
  uint64_t off, len;  // len 0: to the end of the file
};
struct Cachestat {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

// KiB of `path`'s own page cache (the FUSE file's, not its backing file's); -1 and
// ADD_FAILURE when it cannot be measured.
int64_t CachedKiB(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << strerror(errno);
    return -1;
  }
  CachestatRange range{0, 0};
  Cachestat cs{};
  long rc = syscall(kSysCachestat, fd, &range, &cs, 0);
  int err = errno;
  close(fd);
  if (rc != 0) {
    ADD_FAILURE() << "cachestat " << path << ": " << strerror(err);
    return -1;
  }
  return static_cast<int64_t>(cs.nr_cache) * (sysconf(_SC_PAGESIZE) / 1024);
}

// cachestat(2) needs Linux 6.5 (this project's machines run 6.18).
bool HaveCachestat() {
  CachestatRange range{0, 0};
  Cachestat cs{};
  return syscall(kSysCachestat, -1, &range, &cs, 0) != 0 && errno != ENOSYS;
}

uint64_t Requests(const json& st, const char* op) { return st["requests"][op].get<uint64_t>(); }

class PassthroughOn : public MountTest {
 protected:
  std::string DefaultOptions() const override { return "size=512M,durability=none,passthrough=on"; }
};

class PassthroughOff : public MountTest {
 protected:
  std::string DefaultOptions() const override {
    return "size=512M,durability=none,passthrough=off";
  }
};

TEST_F(PassthroughOn, StatusSaysPassthroughAndWhy) {
  json st = ReadStatus();
  EXPECT_EQ(st["io_path"]["mode"], "passthrough") << st.dump(2);
  EXPECT_NE(st["io_path"]["reason"].get<std::string>().find("accepted"), std::string::npos);
  EXPECT_EQ(st["options"]["passthrough"], "on");
}

TEST_F(PassthroughOn, ReadAndMmapOfA64MiBBlobNeverReachTheDaemon) {
  if (!HaveCachestat()) GTEST_SKIP() << "cachestat(2) needs Linux 6.5+";
  const std::string bytes = RandomBytes(k64MiB, 64);
  const std::string id = WriteNew("big", bytes);
  ASSERT_TRUE(IsBlobId(id));
  json before = ReadStatus();
  EXPECT_EQ(Requests(before, "write"), 0u) << "the upload's writes went through the daemon";

  EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == bytes) << "read() differs";
  EXPECT_TRUE(ChildMmap(ObjPath(id, "data")) == bytes) << "mmap differs";
  const int64_t cached = CachedKiB(ObjPath(id, "data"));

  json after = ReadStatus();
  EXPECT_EQ(Requests(after, "read"), Requests(before, "read"))
      << "the daemon served READ requests for a passthrough payload";
  EXPECT_EQ(cached, 0) << "the FUSE file holds " << cached << " KiB of page cache after reading "
                       << "64 MiB: a second copy that passthrough must not make";
}

TEST_F(PassthroughOn, MmapWriterIsSealedWithItsBytes) {
  const std::string bytes = RandomBytes((8u << 20) + 5, 9);
  const std::string id = WriteNewMmap("mapped", bytes);
  ASSERT_TRUE(IsBlobId(id));
  EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == bytes);
}

TEST_F(PassthroughOn, ManyConcurrentOpensShareOneBacking) {
  // The kernel refuses two different backings for one inode: every open of a blob
  // must get the same one, and the last close releases it (a later open works).
  const std::string bytes = RandomBytes(1u << 20, 3);
  const std::string id = WriteNew("shared", bytes);
  ASSERT_TRUE(IsBlobId(id));
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) {
    int fd = open(ObjPath(id, "data").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << "open " << i << ": " << strerror(errno);
    fds.push_back(fd);
  }
  std::string got(bytes.size(), '\0');
  ASSERT_EQ(pread(fds.back(), got.data(), got.size(), 0), static_cast<ssize_t>(got.size()));
  EXPECT_TRUE(got == bytes);
  for (int fd : fds) close(fd);
  EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == bytes) << "reopen after the last close";
}

TEST_F(PassthroughOn, AMappingOutlivesTheDeletedObject) {
  const std::string bytes = RandomBytes(4u << 20, 4);
  const std::string id = WriteNew("doomed", bytes);
  ASSERT_TRUE(IsBlobId(id));
  int fd = open(ObjPath(id, "data").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* p = mmap(nullptr, bytes.size(), PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  close(fd);
  ASSERT_EQ(rmdir(ObjPath(id).c_str()), 0) << strerror(errno);
  EXPECT_EQ(memcmp(p, bytes.data(), bytes.size()), 0) << "the mapping lost its bytes";
  munmap(p, bytes.size());
}

TEST_F(PassthroughOff, StatusSaysFallbackAndWhy) {
  json st = ReadStatus();
  EXPECT_EQ(st["io_path"]["mode"], "fallback") << st.dump(2);
  EXPECT_EQ(st["io_path"]["reason"], "passthrough=off");
}

TEST_F(PassthroughOff, SameReadsReturnIdenticalBytesThroughTheDaemon) {
  if (!HaveCachestat()) GTEST_SKIP() << "cachestat(2) needs Linux 6.5+";
  const std::string bytes = RandomBytes(k64MiB, 64);
  const std::string id = WriteNew("big", bytes);
  ASSERT_TRUE(IsBlobId(id));
  EXPECT_GT(Requests(ReadStatus(), "write"), 0u) << "writes should go through the daemon";
  // Remount (the arena keeps the payload) so that the upload's own cached pages are
  // gone before measuring.
  Unmount();
  ASSERT_TRUE(Remount());
  json before = ReadStatus();
  EXPECT_EQ(CachedKiB(ObjPath(id, "data")), 0) << "a fresh mount has nothing of the file cached";
  EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == bytes) << "read() differs";
  EXPECT_TRUE(ChildMmap(ObjPath(id, "data")) == bytes) << "mmap differs";
  // The cached path keeps a second copy of the whole file (keep_cache): proof that the
  // measure of the passthrough test would see one.
  EXPECT_EQ(CachedKiB(ObjPath(id, "data")), static_cast<int64_t>(k64MiB / 1024));
  json after = ReadStatus();
  EXPECT_GT(Requests(after, "read"), Requests(before, "read"))
      << "the cached path should serve READ requests";
}

TEST_F(PassthroughOff, MmapWriterIsSealedWithItsBytes) {
  const std::string bytes = RandomBytes((8u << 20) + 5, 9);
  const std::string id = WriteNewMmap("mapped", bytes);
  ASSERT_TRUE(IsBlobId(id));
  EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == bytes);
}

}  // namespace
}  // namespace vyit
