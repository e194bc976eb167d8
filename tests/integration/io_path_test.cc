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
#include <sys/xattr.h>
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
  const std::string bytes = RandomBytes(2u << 20, 3);  // above passthrough_min
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
  // The cached path keeps a second copy of the file (keep_cache): proof that the
  // measure of the passthrough test would see one. (Not necessarily every page: with
  // other tests beside it the kernel may reclaim a few of these clean pages; loaded
  // runs saw up to 232 KiB of the 64 MiB gone. The passthrough path keeps none.)
  EXPECT_GE(CachedKiB(ObjPath(id, "data")), static_cast<int64_t>(k64MiB / 1024) * 15 / 16);
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

// open + fstat + mmap + munmap + close of `path`, `n` times: what a reader of a payload
// does (Python's mmap.mmap calls fstat).
void OpenMapClose(const std::string& path, int n) {
  for (int i = 0; i < n; ++i) {
    int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_NE(p, MAP_FAILED);
    volatile char c = static_cast<const char*>(p)[st.st_size - 1];  // fault a page in
    (void)c;
    munmap(p, static_cast<size_t>(st.st_size));
    close(fd);
  }
}

// The requests of kind `op` that `fn` sent, net of what reading status.json costs.
// `status` reads status.json.
template <typename Status, typename Fn>
int64_t RequestsDuring(Status status, const char* op, Fn&& fn) {
  json a = status();
  json b = status();
  fn();
  json c = status();
  const int64_t overhead = static_cast<int64_t>(Requests(b, op) - Requests(a, op));
  return static_cast<int64_t>(Requests(c, op) - Requests(b, op)) - overhead;
}

TEST_F(PassthroughOn, ASmallPayloadIsCachedAndAWarmMmapSendsNoGetattr) {
  // Up to passthrough_min (1 MiB) a payload goes through the page cache: passthrough's
  // mmap would mark the inode's atime stale and make every later fstat a GETATTR.
  if (!HaveCachestat()) GTEST_SKIP() << "cachestat(2) needs Linux 6.5+";
  const std::string bytes = RandomBytes(64u << 10, 11);
  const std::string id = WriteNew("small", bytes);
  ASSERT_TRUE(IsBlobId(id));
  const std::string data = ObjPath(id, "data");
  OpenMapClose(data, 2);  // warm: the pages are cached from here on
  EXPECT_EQ(CachedKiB(data), 64) << "the small payload is not in the page cache";
  EXPECT_EQ(RequestsDuring([this] { return ReadStatus(); }, "getattr", [&] { OpenMapClose(data, 5); }), 0)
      << "a warm open+fstat+mmap of a small payload asked for its attributes";
  EXPECT_EQ(RequestsDuring([this] { return ReadStatus(); }, "read", [&] { OpenMapClose(data, 5); }), 0)
      << "a warm mapping of a small payload read it from the daemon again";
  EXPECT_TRUE(ChildMmap(data) == bytes);
  EXPECT_TRUE(ChildRead(data) == bytes);

  // Above it: passthrough, no page cache of our own.
  const std::string big = WriteNew("big", RandomBytes((1u << 20) + 4096, 12));
  OpenMapClose(ObjPath(big, "data"), 2);
  EXPECT_EQ(CachedKiB(ObjPath(big, "data")), 0);
}

TEST_F(PassthroughOn, PassthroughMinZeroKeepsEveryPayloadOffThePageCache) {
  if (!HaveCachestat()) GTEST_SKIP() << "cachestat(2) needs Linux 6.5+";
  Unmount();
  ASSERT_TRUE(Mount("size=512M,durability=none,passthrough=on,passthrough_min=0"));
  EXPECT_EQ(ReadStatus()["options"]["passthrough_min"], "0");
  const std::string id = WriteNew("small", RandomBytes(4096, 13));
  OpenMapClose(ObjPath(id, "data"), 2);
  EXPECT_EQ(CachedKiB(ObjPath(id, "data")), 0);
}

class MetaJson : public MountTest {};

TEST_F(MetaJson, AWarmReadComesFromThePageCacheWithOneRequest) {
  if (!HaveCachestat()) GTEST_SKIP() << "cachestat(2) needs Linux 6.5+";
  const std::string id = WriteNew("b", "12345");
  const std::string meta = ObjPath(id, "meta.json");
  const std::string text = ReadAll(meta);
  ASSERT_NE(text.find("\"length\": 5"), std::string::npos) << text;
  EXPECT_GT(CachedKiB(meta), 0) << "meta.json is not in the page cache after a read";
  // A warm read: OPEN and RELEASE only (no FLUSH: the open said noflush; no READ).
  // RELEASE is asynchronous, so a window of counters may see an earlier read's or
  // status.json's own: count the synchronous OPEN instead (one open, one release).
  EXPECT_EQ(RequestsDuring([this] { return ReadStatus(); }, "flush", [&] { EXPECT_EQ(ReadAll(meta), text); }), 0);
  EXPECT_EQ(RequestsDuring([this] { return ReadStatus(); }, "open", [&] { EXPECT_EQ(ReadAll(meta), text); }), 1);
}

TEST_F(MetaJson, AHolderShowsItsMemberPersistedAtTheNextOpen) {
  // Persisting a member changes the text of every object that expands it, which
  // nobody invalidates: the next open compares the text with the cached one.
  const std::string a = WriteNew("a", "aaaa"), b = WriteNew("b", "bbbb");
  const std::string pair = WriteMeta("p", R"({"typename": "vineyard::Pair", "first_": {"id": ")" +
                                              a + R"("}, "second_": {"id": ")" + b + R"("}})");
  ASSERT_FALSE(pair.empty());
  const std::string meta = ObjPath(pair, "meta.json");
  for (int i = 0; i < 2; ++i) {
    auto j = json::parse(ReadAll(meta));
    ASSERT_TRUE(j["first_"]["transient"].get<bool>()) << j.dump(2);
  }
  ASSERT_EQ(setxattr(ObjPath(a).c_str(), "user.vineyard.persist", "1", 1, 0), 0) << strerror(errno);
  const std::string text = ReadAll(meta);
  auto j = json::parse(text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "meta.json after the persist is not JSON (stale size?):\n"
                                 << text;
  EXPECT_FALSE(j["first_"]["transient"].get<bool>()) << text;
  EXPECT_TRUE(j["second_"]["transient"].get<bool>()) << text;
  EXPECT_TRUE(j["transient"].get<bool>()) << text;
  struct stat st;
  ASSERT_EQ(stat(meta.c_str(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), text.size()) << "stat shows a stale size";
  EXPECT_EQ(ChildMmap(meta), text) << "a mapping of meta.json shows other bytes";
}

TEST_F(MetaJson, ADeletedObjectsCachedMetaJsonNoLongerOpens) {
  const std::string a = WriteNew("a", "aaaa");
  const std::string meta = ObjPath(a, "meta.json");
  const std::string text = ReadAll(meta);
  int fd = open(meta.c_str(), O_RDONLY);  // keeps the inode (and its pages) alive
  ASSERT_GE(fd, 0);
  ASSERT_EQ(rmdir(ObjPath(a).c_str()), 0) << strerror(errno);
  int err = 0;
  ChildRead(meta, &err);
  EXPECT_EQ(err, ENOENT) << "meta.json of a deleted object still opens";
  std::string got(text.size(), '\0');
  EXPECT_EQ(pread(fd, got.data(), got.size(), 0), static_cast<ssize_t>(text.size()))
      << "an open meta.json of a deleted object lost its text";
  EXPECT_EQ(got, text);
  close(fd);
}

// ---- Backing ids that live as long as the blob (README "The I/O path") ----

int64_t Backing(const json& st, const char* key) {
  return st["io_path"]["backing_ids"][key].get<int64_t>();
}

TEST_F(PassthroughOn, EveryOpenOfABlobReusesItsOneBackingId) {
  const std::string bytes = RandomBytes((2u << 20) + 7, 21);
  const std::string id = WriteNew("big", bytes);
  ASSERT_TRUE(IsBlobId(id));
  const std::string data = ObjPath(id, "data");
  json before = ReadStatus();
  OpenMapClose(data, 10);
  // Two opens at once, and a child's read and mapping: the same id for all of them.
  int fd1 = open(data.c_str(), O_RDONLY), fd2 = open(data.c_str(), O_RDONLY);
  ASSERT_GE(fd1, 0);
  ASSERT_GE(fd2, 0);
  EXPECT_TRUE(ChildRead(data) == bytes);
  EXPECT_TRUE(ChildMmap(data) == bytes);
  close(fd1);
  close(fd2);
  json after = ReadStatus();
  EXPECT_EQ(Backing(after, "opened") - Backing(before, "opened"), 1)
      << "more than one backing id was registered for one blob: " << after["io_path"].dump();
  EXPECT_GE(Backing(after, "reused") - Backing(before, "reused"), 13) << after["io_path"].dump();
  EXPECT_EQ(Backing(after, "closed"), Backing(before, "closed")) << "the id went with an open";
  EXPECT_EQ(Backing(after, "held"), 1);
  EXPECT_EQ(CachedKiB(data), 0) << "passthrough kept no copy in the page cache";
}

TEST_F(PassthroughOn, ADeletedBlobClosesItsBackingIdAndANewBlobGetsItsOwnBytes) {
  const std::string a_bytes = RandomBytes((2u << 20) + 1, 22);
  const std::string a = WriteNew("a", a_bytes);
  ASSERT_TRUE(IsBlobId(a));
  OpenMapClose(ObjPath(a, "data"), 3);
  // A descriptor kept open across the delete keeps reading the old bytes.
  int fd = open(ObjPath(a, "data").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  json before = ReadStatus();
  ASSERT_EQ(Backing(before, "held"), 1);
  ASSERT_EQ(rmdir(ObjPath(a).c_str()), 0) << strerror(errno);
  json after = ReadStatus();
  EXPECT_EQ(Backing(after, "closed") - Backing(before, "closed"), 1) << after["io_path"].dump();
  EXPECT_EQ(Backing(after, "held"), 0);
  std::string old(a_bytes.size(), '\0');
  EXPECT_EQ(pread(fd, old.data(), old.size(), 0), static_cast<ssize_t>(old.size()));
  EXPECT_TRUE(old == a_bytes) << "an open descriptor of a deleted blob changed";
  close(fd);
  // New blobs of the same size (their files may take the freed inode numbers) each
  // read as their own bytes, through a new id each.
  for (int i = 0; i < 3; ++i) {
    const std::string bytes = RandomBytes((2u << 20) + 1, 23 + i);
    const std::string b = WriteNew("b" + std::to_string(i), bytes);
    ASSERT_TRUE(IsBlobId(b));
    EXPECT_TRUE(ChildRead(ObjPath(b, "data")) == bytes) << "blob " << i << " read()";
    EXPECT_TRUE(ChildMmap(ObjPath(b, "data")) == bytes) << "blob " << i << " mmap";
  }
  EXPECT_EQ(Backing(ReadStatus(), "opened") - Backing(after, "opened"), 3);
  struct stat st;
  EXPECT_NE(stat(ObjPath(a, "data").c_str(), &st), 0) << "the deleted blob is still there";
}

class PassthroughEviction : public MountTest {
 protected:
  std::string DefaultOptions() const override { return "size=4M,durability=sync,passthrough=on"; }
};

TEST_F(PassthroughEviction, AnEvictedBlobClosesItsBackingIdAndReloadsWithANewOne) {
  // An id kept past an eviction would keep the evicted file's memory (and a reload
  // would need a second id for the inode, which the kernel refuses).
  std::map<std::string, std::string> blobs;
  json before = ReadStatus();
  for (int i = 0; i < 3; ++i) {
    const std::string bytes = RandomBytes(2u << 20, 30 + i);
    const std::string id = WriteNew("e" + std::to_string(i), bytes);
    ASSERT_TRUE(IsBlobId(id)) << "blob " << i << " did not fit: nothing was evicted?";
    blobs[id] = bytes;
    OpenMapClose(ObjPath(id, "data"), 2);  // registers its id
  }
  for (int round = 0; round < 2; ++round) {
    for (auto& [id, bytes] : blobs) {
      EXPECT_TRUE(ChildMmap(ObjPath(id, "data")) == bytes) << id << " round " << round;
    }
  }
  json after = ReadStatus();
  ASSERT_GT(after["arena"]["evictions"].get<int64_t>(), 0) << after.dump(2);
  // Every id still held is of a resident blob: at most two of 2 MiB fit in 4 MiB.
  EXPECT_LE(Backing(after, "held"), 2) << after["io_path"].dump();
  EXPECT_GE(Backing(after, "closed") - Backing(before, "closed"),
            after["arena"]["evictions"].get<int64_t>())
      << "an evicted blob kept its backing id: " << after.dump(2);
  EXPECT_LE(after["arena"]["used"].get<int64_t>(), 4 << 20);
}

}  // namespace
}  // namespace vyit
