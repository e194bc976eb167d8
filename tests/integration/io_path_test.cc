// The I/O path actually taken (DESIGN.md §9): with passthrough, reading and mapping a
// payload never reaches the daemon and adds nothing to the page cache; without it,
// the same reads are served by the daemon and return the same bytes.
//
// Page-cache growth is read from /proc/meminfo (Cached minus Shmem: the arena's tmpfs
// pages count in both, a FUSE file's cached pages only in Cached), so this binary
// runs serially (RUN_SERIAL in tests/CMakeLists.txt), with durability=none so that no
// durable copy lands in RocksDB's files (and their page cache) meanwhile.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/integration/mount_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

constexpr size_t k64MiB = 64u << 20;

// Page cache outside tmpfs/shmem, in KiB.
int64_t FilePageCacheKiB() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t value, cached = 0, shmem = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "Cached:") cached = value;
    if (key == "Shmem:") shmem = value;
  }
  return cached - shmem;
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
  const std::string bytes = RandomBytes(k64MiB, 64);
  const std::string id = WriteNew("big", bytes);
  ASSERT_TRUE(IsBlobId(id));
  json before = ReadStatus();
  EXPECT_EQ(Requests(before, "write"), 0u) << "the upload's writes went through the daemon";

  const int64_t cache0 = FilePageCacheKiB();
  EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == bytes) << "read() differs";
  EXPECT_TRUE(ChildMmap(ObjPath(id, "data")) == bytes) << "mmap differs";
  const int64_t grown = FilePageCacheKiB() - cache0;

  json after = ReadStatus();
  EXPECT_EQ(Requests(after, "read"), Requests(before, "read"))
      << "the daemon served READ requests for a passthrough payload";
  EXPECT_LT(grown, 1024) << "page cache grew by " << grown << " KiB reading 64 MiB";
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
  const std::string bytes = RandomBytes(k64MiB, 64);
  const std::string id = WriteNew("big", bytes);
  ASSERT_TRUE(IsBlobId(id));
  EXPECT_GT(Requests(ReadStatus(), "write"), 0u) << "writes should go through the daemon";
  // Remount (the arena keeps the payload) so that the upload's own cached pages are
  // gone before measuring.
  Unmount();
  ASSERT_TRUE(Remount());
  json before = ReadStatus();
  const int64_t cache0 = FilePageCacheKiB();
  EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == bytes) << "read() differs";
  EXPECT_TRUE(ChildMmap(ObjPath(id, "data")) == bytes) << "mmap differs";
  // The cached path keeps a second copy: proof that the measure above would see one.
  EXPECT_GT(FilePageCacheKiB() - cache0, 32 * 1024);
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
