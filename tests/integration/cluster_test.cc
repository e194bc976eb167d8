// Cluster tests (DESIGN.md §7) on three real daemons: replication of persisted
// objects, remote payloads (fetch, remote=error, a paused owner) and deletes. Names and
// global objects are in cluster_names_test.cc, a late joiner and refused impostors in
// cluster_join_test.cc.
#include "cluster_test_helpers.h"

namespace vyit {
namespace {

TEST_F(Cluster, PersistedObjectsReplicateWithIdenticalMetaTransientOnesDoNot) {
  // The transient ones first: one origin's updates arrive in order, so once the later
  // persisted objects are on a peer, a transient one that leaked would be there too.
  const std::string t_blob = node(1).WriteNew("t", RandomBytes(1000, 1));
  const std::string t_meta =
      node(1).WriteMeta("tm", R"({"typename":"my::Thing","v":1,"b_":{"id":")" + t_blob + "\"}}");
  ASSERT_TRUE(IsBlobId(t_blob) && IsObjectId(t_meta));

  const std::string blob = node(1).WritePersisted("b", RandomBytes(5000, 2));
  // A transient member: persisting the pair persists it too (§5), so it replicates.
  const std::string member = node(1).WriteNew("m", RandomBytes(100, 3));
  const std::string pair = node(1).WriteMeta("p", PairJson(blob, member, R"(,"note":{"k":[1,2]})"));
  ASSERT_TRUE(IsBlobId(blob) && IsBlobId(member) && IsObjectId(pair));
  ASSERT_TRUE(node(1).Persist(pair));

  for (const std::string& id : {blob, member, pair}) {
    json m = json::parse(node(1).Meta(id));
    EXPECT_EQ(m["transient"], false) << id << " on node 1: " << m.dump();
  }
  for (int i : {2, 3}) {
    SCOPED_TRACE("node " + std::to_string(i));
    for (const std::string& id : {blob, member, pair}) {
      ASSERT_TRUE(WaitListed(i, id)) << id << " did not reach node " << i;
      std::string here = node(i).Meta(id);
      EXPECT_FALSE(here.empty());
      EXPECT_EQ(here, node(1).Meta(id)) << id << ": meta.json differs from the owner's";
      EXPECT_EQ(node(i).Xattr(id, "persist"), "1") << id;
      EXPECT_EQ(node(i).Xattr(id, "instance_id"), "1") << id;
    }
    EXPECT_EQ(ReadLinkOf(node(i).ObjPath(pair, "members/first_")), "../../" + blob);
    auto listed = node(i).ListObjects();
    EXPECT_FALSE(Contains(listed, t_blob)) << "a transient blob left its node";
    EXPECT_FALSE(Contains(listed, t_meta)) << "a transient object left its node";
    EXPECT_EQ(listed.size(), 3u);
    json st = node(i).ReadStatus();
    EXPECT_EQ(st["objects"]["remote"], 3) << st["objects"].dump();
    EXPECT_EQ(st["objects"]["total"], 3) << st["objects"].dump();
  }
  json st = node(1).ReadStatus();
  EXPECT_EQ(st["objects"]["persisted"], 3) << st["objects"].dump();
  EXPECT_EQ(st["objects"]["total"], 5) << st["objects"].dump();
  EXPECT_EQ(st["objects"]["remote"], 0) << st["objects"].dump();
  EXPECT_GE(st["cluster"]["published"].get<uint64_t>(), 3u) << st["cluster"].dump();
}

TEST_F(Cluster, InstancesShowEveryNodeUp) {
  for (int i = 1; i <= 3; ++i) {
    SCOPED_TRACE("node " + std::to_string(i));
    EXPECT_EQ(ListDirectory(node(i).Path("instances")),
              (std::vector<std::string>{"1.json", "2.json", "3.json"}));
    for (int n = 1; n <= 3; ++n) {
      json j = node(i).ReadInstance(n);
      ASSERT_TRUE(j.is_object()) << "instances/" << n << ".json";
      EXPECT_EQ(j["instance"], n);
      EXPECT_EQ(j["status"], "up") << j.dump();
      EXPECT_EQ(j["self"], n == i) << j.dump();
      EXPECT_EQ(j["endpoint"], node(n).endpoint()) << j.dump();
    }
    json st = node(i).ReadStatus();
    ASSERT_TRUE(st.contains("cluster")) << st.dump();
    EXPECT_EQ(st["cluster"]["listen"], node(i).endpoint());
    EXPECT_EQ(st["cluster"]["curve"], false);
    ASSERT_EQ(st["cluster"]["peers"].size(), 2u) << st["cluster"].dump();
    for (auto& p : st["cluster"]["peers"]) EXPECT_EQ(p["status"], "up") << p.dump();
  }
  // A change is announced and applied: node 1's published_seq grows and the peers'
  // view of it catches up (replication_lag back to 0).
  const std::string id = node(1).WritePersisted("b", "x");
  ASSERT_FALSE(id.empty());
  uint64_t seq = node(1).ReadInstance(1)["published_seq"].get<uint64_t>();
  EXPECT_GE(seq, 1u);
  for (int i : {2, 3}) {
    EXPECT_TRUE(PollUntil([&] {
      json j = node(i).ReadInstance(1);
      return j.is_object() && j["applied_seq"] == seq && j["replication_lag"] == 0;
    })) << node(i).ReadInstance(1).dump();
  }
}

TEST_F(Cluster, RemotePayloadsAreFetchedByteIdenticalOnFirstRead) {
  // 3 MiB (one chunk), empty, and 9 MiB + 5 (three chunks of wire::kMaxChunk = 4 MiB).
  const std::string small = RandomBytes((3u << 20) + 17, 11), big = RandomBytes((9u << 20) + 5, 12);
  const std::string a = node(1).WritePersisted("a", small);
  const std::string e = node(1).WritePersisted("e", "");
  const std::string b = node(1).WritePersisted("b", big);
  ASSERT_TRUE(IsBlobId(a) && IsBlobId(e) && IsBlobId(b));
  EXPECT_EQ(node(1).Xattr(a, "local"), "1");
  for (int i : {2, 3}) ASSERT_TRUE(WaitListed(i, b)) << "node " << i;

  const uint64_t bytes_before = Counter(2, "fetch_bytes");
  const uint64_t fetches_before = Counter(2, "fetches");
  for (auto& [id, bytes] : {std::make_pair(a, &small), std::make_pair(b, &big)}) {
    SCOPED_TRACE(id);
    struct stat sb;
    ASSERT_EQ(stat(node(2).ObjPath(id, "data").c_str(), &sb), 0) << strerror(errno);
    EXPECT_EQ(static_cast<size_t>(sb.st_size), bytes->size()) << "st_size before the fetch";
    EXPECT_EQ(node(2).Xattr(id, "local"), "0") << "before the first read";
    std::string got = ReadFileOr(node(2).ObjPath(id, "data"));
    EXPECT_TRUE(got == *bytes) << "fetched " << got.size() << " bytes, want " << bytes->size();
    EXPECT_EQ(node(2).Xattr(id, "local"), "1") << "after the first read";
  }
  int err = 0;
  EXPECT_EQ(ReadFileOr(node(2).ObjPath(e, "data"), &err), "");
  EXPECT_EQ(err, 0) << strerror(err);
  EXPECT_EQ(node(2).Xattr(e, "local"), "1") << "an empty payload, once read, is here";

  EXPECT_GE(Counter(2, "fetches"), fetches_before + 2);
  const uint64_t fetched = Counter(2, "fetch_bytes");
  EXPECT_GE(fetched, bytes_before + small.size() + big.size());
  EXPECT_EQ(Counter(2, "fetch_errors"), 0u);
  json st = node(2).ReadStatus();
  EXPECT_GE(st["objects"]["cached_payloads"].get<uint64_t>(), 2u) << st["objects"].dump();
  // Read again: served from the local copy, nothing is fetched twice.
  EXPECT_TRUE(ReadFileOr(node(2).ObjPath(b, "data")) == big);
  EXPECT_EQ(Counter(2, "fetch_bytes"), fetched);

  // Node 3 maps the big one without reading it first: the fetch happens on open.
  int fd = open(node(3).ObjPath(b, "data").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  void* p = mmap(nullptr, big.size(), PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  EXPECT_EQ(std::memcmp(p, big.data(), big.size()), 0) << "mmap of a fetched blob differs";
  munmap(p, big.size());
  close(fd);
  EXPECT_EQ(node(3).Xattr(b, "local"), "1");
  EXPECT_EQ(node(3).Xattr(a, "local"), "0") << "only what was read is fetched";
}

class ClusterRemoteError : public ClusterTest {
 protected:
  std::string NodeOptions(int i) const override { return i == 2 ? "remote=error" : ""; }
};

TEST_F(ClusterRemoteError, ReadingARemotePayloadFailsWithEREMOTE) {
  const std::string bytes = RandomBytes(100000, 5);
  const std::string id = node(1).WritePersisted("b", bytes);
  ASSERT_TRUE(IsBlobId(id));
  ASSERT_TRUE(WaitListed(2, id));
  ASSERT_TRUE(WaitListed(3, id));
  int err = 0;
  ReadFileOr(node(2).ObjPath(id, "data"), &err);
  EXPECT_EQ(err, EREMOTE) << strerror(err);
  // The metadata is here all the same; the payload stays remote.
  EXPECT_EQ(node(2).Meta(id), node(1).Meta(id));
  EXPECT_EQ(node(2).Xattr(id, "local"), "0");
  EXPECT_EQ(Counter(2, "fetches"), 0u);
  // Node 3 (remote=fetch) reads it.
  EXPECT_TRUE(ReadFileOr(node(3).ObjPath(id, "data")) == bytes);
}

class ClusterReserve : public ClusterTest {
 protected:
  std::string NodeOptions(int i) const override { return i == 2 ? "reserve=8M" : ""; }
};

// reserve= (store/reserve.cc): a fetch is written over memory written ahead; the copy
// is byte-identical and exactly its size whether the reserve was larger or smaller.
TEST_F(ClusterReserve, FetchesGoOverTheReserveByteIdentical) {
  auto reserve = [&](const char* key) {
    return node(2).ReadStatus()["arena"][key].get<uint64_t>();
  };
  auto ready = [&] {
    for (int i = 0; i < 1000 && reserve("reserve_ready") != (8u << 20); ++i) usleep(10000);
    return reserve("reserve_ready") == (8u << 20);
  };
  EXPECT_EQ(reserve("reserve"), 8u << 20);
  ASSERT_TRUE(ready()) << node(2).ReadStatus()["arena"].dump();
  EXPECT_EQ(reserve("reserve_takes"), 0u);

  const std::string big = RandomBytes((9u << 20) + 5, 21), small = RandomBytes((3u << 20) + 1, 22);
  const std::string b = node(1).WritePersisted("b", big);
  const std::string a = node(1).WritePersisted("a", small);
  ASSERT_TRUE(WaitListed(2, b) && WaitListed(2, a));
  EXPECT_TRUE(ReadFileOr(node(2).ObjPath(b, "data")) == big) << "larger than the reserve";
  EXPECT_EQ(reserve("reserve_takes"), 1u);
  ASSERT_TRUE(ready()) << "written again";
  EXPECT_TRUE(ReadFileOr(node(2).ObjPath(a, "data")) == small) << "smaller than the reserve";
  EXPECT_EQ(reserve("reserve_takes"), 2u);
  struct stat sb;
  ASSERT_EQ(stat(node(2).ObjPath(a, "data").c_str(), &sb), 0);
  EXPECT_EQ(static_cast<size_t>(sb.st_size), small.size());
  std::string metrics = ReadFileOr(node(2).mnt() + "/metrics");
  EXPECT_NE(metrics.find("vineyardfs_arena_reserve_takes_total 2"), std::string::npos) << metrics;
}

TEST_F(Cluster, FetchFromAPausedOwnerFailsWithEHOSTDOWNThenWorksAfterResume) {
  const std::string bytes = RandomBytes((1u << 20) + 3, 7);
  const std::string id = node(1).WritePersisted("b", bytes);
  ASSERT_TRUE(IsBlobId(id));
  ASSERT_TRUE(WaitListed(2, id));
  ASSERT_TRUE(WaitListed(3, id));

  node(1).Pause();
  // Node 3 reads at once, maybe before it noticed: the fetch times out (3 s a chunk).
  auto t0 = std::chrono::steady_clock::now();
  int err = 0;
  ReadFileOr(node(3).ObjPath(id, "data"), &err);
  EXPECT_EQ(err, EHOSTDOWN) << strerror(err);
  EXPECT_LT(SecondsSince(t0), 10.0);
  // Node 2 reads once it has marked the owner down: the read fails without waiting.
  ASSERT_TRUE(PollUntil([&] { return node(2).InstanceStatus(1) == "down"; }, 5000))
      << node(2).ReadInstance(1).dump();
  t0 = std::chrono::steady_clock::now();
  ReadFileOr(node(2).ObjPath(id, "data"), &err);
  EXPECT_EQ(err, EHOSTDOWN) << strerror(err);
  EXPECT_LT(SecondsSince(t0), 10.0);
  // A down node's objects stay listed.
  EXPECT_TRUE(Contains(node(2).ListObjects(), id));
  EXPECT_EQ(node(2).Xattr(id, "local"), "0");

  node(1).Resume();
  for (int i : {2, 3}) {
    ASSERT_TRUE(PollUntil([&] { return node(i).InstanceStatus(1) == "up"; }, 5000))
        << "node " << i << ": " << node(i).ReadInstance(1).dump();
    std::string got = ReadFileOr(node(i).ObjPath(id, "data"));
    EXPECT_TRUE(got == bytes) << "node " << i << " read " << got.size() << " bytes after Resume";
    EXPECT_EQ(node(i).Xattr(id, "local"), "1");
  }
  EXPECT_GE(Counter(3, "fetch_errors"), 1u);
}

TEST_F(Cluster, RemoteObjectsCannotBeDeletedHereDeletionOnTheOwnerReachesEveryNode) {
  const std::string b1 = node(1).WriteNew("b1", RandomBytes(2000, 1));
  const std::string b2 = node(1).WriteNew("b2", RandomBytes(3000, 2));
  const std::string pair = node(1).WriteMeta("p", PairJson(b1, b2));
  const std::string other = node(1).WritePersisted("o", RandomBytes(10, 3));
  ASSERT_TRUE(IsObjectId(pair) && IsBlobId(other));
  ASSERT_TRUE(node(1).Persist(pair));
  ASSERT_EQ(symlink(("../objects/" + pair).c_str(), node(1).Path("names/pn").c_str()), 0)
      << strerror(errno);
  for (int i : {2, 3}) {
    ASSERT_TRUE(WaitListed(i, other));
    ASSERT_TRUE(WaitName(i, "pn", pair)) << "node " << i;
  }

  // Node 2 holds a fetched copy of `other`'s payload until the owner deletes it.
  const std::string other_bytes = ReadFileOr(node(2).ObjPath(other, "data"));
  EXPECT_EQ(other_bytes, RandomBytes(10, 3));
  EXPECT_EQ(node(2).ReadStatus()["objects"]["cached_payloads"], 1);

  // Only the owner deletes; a replica says so.
  EXPECT_EQ(rmdir(node(2).ObjPath(pair).c_str()), -1);
  EXPECT_EQ(errno, EREMOTE) << strerror(errno);
  EXPECT_EQ(rmdir(node(3).ObjPath(other).c_str()), -1);
  EXPECT_EQ(errno, EREMOTE) << strerror(errno);
  EXPECT_TRUE(Contains(node(2).ListObjects(), pair));
  EXPECT_EQ(node(2).NameTarget("pn"), pair);

  ASSERT_EQ(rmdir(node(1).ObjPath(pair).c_str()), 0) << strerror(errno);
  // Its members go with it (nothing else refers to them), and so does its name.
  EXPECT_FALSE(Contains(node(1).ListObjects(), b1));
  EXPECT_FALSE(Contains(node(1).ListObjects(), b2));
  for (int i : {2, 3}) {
    SCOPED_TRACE("node " + std::to_string(i));
    EXPECT_TRUE(WaitGone(i, pair));
    EXPECT_TRUE(WaitGone(i, b1));
    EXPECT_TRUE(WaitGone(i, b2));
    EXPECT_TRUE(WaitName(i, "pn", ""));
    EXPECT_EQ(node(i).ListObjects(), std::vector<std::string>{other});
  }
  // Deleting `other` on its owner also drops node 2's cached copy of its payload.
  ASSERT_EQ(rmdir(node(1).ObjPath(other).c_str()), 0) << strerror(errno);
  EXPECT_TRUE(WaitGone(2, other));
  EXPECT_TRUE(PollUntil([&] { return node(2).ReadStatus()["objects"]["cached_payloads"] == 0; }))
      << node(2).ReadStatus()["objects"].dump();
}

}  // namespace
}  // namespace vyit
