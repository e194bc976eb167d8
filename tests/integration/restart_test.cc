// Restart and memory tests (DESIGN.md §6): kill -9 and remount on the same state,
// a reboot (arena wiped) under each durability, and eviction under a small arena.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "mount_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

// What a test wrote: blobs with their bytes, metadata objects with their meta.json
// (parsed), and names.
struct Written {
  std::map<std::string, std::string> blobs;
  std::map<std::string, json> metas;
  std::map<std::string, std::string> names;  // name -> id
  std::set<std::string> ids() const {
    std::set<std::string> s;
    for (auto& [id, b] : blobs) s.insert(id);
    for (auto& [id, m] : metas) s.insert(id);
    return s;
  }
};

uint64_t Counter(const std::string& id) {
  return std::strtoull(id.c_str() + 1, nullptr, 16) & ((uint64_t{1} << 48) - 1);
}

class Restart : public MountTest {
 protected:
  // `n` seals: 4 in 5 are blobs (0..64 KiB, every 16th 1 MiB+), the 5th a Pair of two
  // earlier blobs; every 7th object gets a name. With fsync_data, fsync() each
  // blob's data file after the seal.
  Written Populate(int n, bool fsync_data = false) {
    Written w;
    std::mt19937 rng(12345);
    std::vector<std::string> blob_ids;
    for (int i = 0; i < n; ++i) {
      std::string id;
      if (i % 5 == 4 && blob_ids.size() >= 2) {
        const std::string& a = blob_ids[rng() % blob_ids.size()];
        const std::string& b = blob_ids[rng() % blob_ids.size()];
        id = WriteMeta("m" + std::to_string(i), R"({"typename":"vineyard::Pair","first_":{"id":")" +
                                                    a + R"("},"second_":{"id":")" + b +
                                                    R"("},"i":)" + std::to_string(i) + "}");
        if (!IsObjectId(id)) return w;
        w.metas[id] = ReadMeta(id);
      } else {
        size_t size = i % 16 == 0 ? (1u << 20) + rng() % 4096 : rng() % (64 * 1024);
        std::string bytes = RandomBytes(size, static_cast<uint64_t>(i) + 1);
        id = WriteNew("b" + std::to_string(i), bytes);
        if (!IsBlobId(id)) return w;
        if (fsync_data) {
          int fd = open(ObjPath(id, "data").c_str(), O_RDONLY);
          EXPECT_GE(fd, 0) << strerror(errno);
          EXPECT_EQ(fsync(fd), 0) << "fsync " << id << ": " << strerror(errno);
          close(fd);
        }
        w.blobs[id] = bytes;
        blob_ids.push_back(id);
      }
      if (i % 7 == 0) {
        std::string name = "n" + std::to_string(i);
        EXPECT_EQ(symlink(id.c_str(), Path("names/" + name).c_str()), 0) << strerror(errno);
        w.names[name] = id;
      }
    }
    return w;
  }

  // Everything in `w` is back, byte-identical, read by another process.
  void ExpectAllBack(const Written& w) {
    auto listed = ListDir(Path("objects"));
    EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), w.ids());
    for (auto& [id, bytes] : w.blobs) {
      int e = 0;
      std::string got = ChildRead(ObjPath(id, "data"), &e);
      EXPECT_EQ(e, 0) << id << ": " << (e > 0 ? strerror(e) : "child died");
      EXPECT_TRUE(got == bytes) << id << ": " << got.size() << " bytes back, " << bytes.size()
                                << " written";
    }
    for (auto& [id, meta] : w.metas) {
      json got = json::parse(ChildRead(ObjPath(id, "meta.json")), nullptr, false);
      EXPECT_EQ(got, meta) << id;
    }
    auto names = ListDir(Path("names"));
    EXPECT_EQ(names.size(), w.names.size());
    for (auto& [name, id] : w.names) EXPECT_EQ(LinkedId("names/" + name), id) << name;
    json st = ReadStatus();
    EXPECT_EQ(st["objects"]["total"], w.ids().size());
    EXPECT_EQ(st["objects"]["names"], w.names.size());
  }

  // A new object after the restart gets an id never used before.
  void ExpectFreshId(const Written& w) {
    uint64_t max = 0;
    for (auto& id : w.ids()) max = std::max(max, Counter(id));
    std::string id = WriteNew("fresh", "fresh");
    ASSERT_TRUE(IsBlobId(id));
    EXPECT_EQ(w.ids().count(id), 0u) << id << " reused";
    EXPECT_GT(Counter(id), max) << id << " reuses the counter";
    EXPECT_EQ(ChildRead(ObjPath(id, "data")), "fresh");
  }
};

TEST_F(Restart, KillNineKeepsEverySealedObjectAndName) {
  Written w = Populate(200);
  ASSERT_EQ(w.ids().size(), 200u);
  Crash();
  ASSERT_TRUE(Remount());
  ExpectAllBack(w);
  ExpectFreshId(w);
}

class SyncRestart : public Restart {
 protected:
  std::string DefaultOptions() const override { return "durability=sync"; }
};

TEST_F(SyncRestart, RebootReloadsEveryPayloadFromState) {
  Written w = Populate(200);
  ASSERT_EQ(w.ids().size(), 200u);
  Reboot();
  ASSERT_TRUE(Remount());
  ExpectAllBack(w);
  ExpectFreshId(w);
}

class AsyncRestart : public Restart {
 protected:
  std::string DefaultOptions() const override { return "durability=async"; }
};

TEST_F(AsyncRestart, RebootAfterFsyncKeepsPayloads) {
  Written w = Populate(60, /*fsync_data=*/true);
  ASSERT_EQ(w.ids().size(), 60u);
  EXPECT_EQ(ReadStatus()["state"]["pending_durable"], 0) << "fsync returned before durability";
  Reboot();
  ASSERT_TRUE(Remount());
  ExpectAllBack(w);
  ExpectFreshId(w);
}

class NoneRestart : public Restart {
 protected:
  std::string DefaultOptions() const override { return "durability=none"; }
};

TEST_F(NoneRestart, RebootLosesBlobsButMounts) {
  std::string a = WriteNew("a", "gone after reboot");
  ASSERT_TRUE(IsBlobId(a));
  Reboot();
  ASSERT_TRUE(Remount());
  struct stat sb;
  EXPECT_EQ(stat(ObjPath(a).c_str(), &sb), -1) << "a blob without a durable payload is dropped";
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(ReadStatus()["objects"]["blobs"], 0);
  std::string b = WriteNew("b", "works");
  ASSERT_TRUE(IsBlobId(b));
  EXPECT_NE(b, a);
  EXPECT_EQ(ChildRead(ObjPath(b, "data")), "works");
}

TEST_F(NoneRestart, KillNineKeepsBlobsWhileTheArenaSurvives) {
  std::string a = WriteNew("a", "still in the arena");
  ASSERT_TRUE(IsBlobId(a));
  Crash();
  ASSERT_TRUE(Remount());
  EXPECT_EQ(ChildRead(ObjPath(a, "data")), "still in the arena");
}

class Eviction : public Restart {
 protected:
  std::string DefaultOptions() const override { return "size=4M,durability=sync"; }
};

TEST_F(Eviction, EvictedBlobsReloadTransparently) {
  std::map<std::string, std::string> blobs;
  for (int i = 0; i < 3; ++i) {
    std::string bytes = RandomBytes(2u << 20, 100 + i);
    std::string id = WriteNew("e" + std::to_string(i), bytes);
    ASSERT_TRUE(IsBlobId(id)) << "blob " << i << " did not fit: nothing was evicted?";
    blobs[id] = bytes;
  }
  for (int round = 0; round < 2; ++round) {
    for (auto& [id, bytes] : blobs) {
      EXPECT_TRUE(ChildRead(ObjPath(id, "data")) == bytes) << id << " read() round " << round;
      EXPECT_TRUE(ChildMmap(ObjPath(id, "data")) == bytes) << id << " mmap round " << round;
    }
  }
  json st = ReadStatus();
  EXPECT_GT(st["arena"]["evictions"].get<int64_t>(), 0) << st.dump(2);
  EXPECT_GT(st["arena"]["reloads"].get<int64_t>(), 0) << st.dump(2);
  EXPECT_LE(st["arena"]["used"].get<int64_t>(), 4 << 20);
}

}  // namespace
}  // namespace vyit
