// Cluster tests (DESIGN.md §7) on real daemons: a late joiner gets everything through
// snapshots, and peers claiming a taken id are refused.
#include "cluster_test_helpers.h"

namespace vyit {
namespace {

class ClusterJoin : public ClusterTest {
 protected:
  bool StartInSetUp(int i) const override { return i != 3; }
};

TEST_F(ClusterJoin, ALateNodeGetsEverythingThroughSnapshots) {
  const std::string payload = RandomBytes((1u << 20) + 9, 4);
  const std::string a = node(1).WritePersisted("a", payload);
  const std::string c = node(1).WriteNew("c", "member");
  const std::string pair = node(1).WriteMeta("p", PairJson(a, c));
  ASSERT_TRUE(IsObjectId(pair));
  ASSERT_TRUE(node(1).Persist(pair));
  const std::string transient = node(1).WriteNew("t", "stays here");
  const std::string gone = node(1).WritePersisted("g", "deleted before the join");
  ASSERT_TRUE(IsBlobId(transient) && IsBlobId(gone));
  ASSERT_EQ(symlink(("../objects/" + pair).c_str(), node(1).Path("names/n1").c_str()), 0);
  ASSERT_EQ(symlink(("../objects/" + a).c_str(), node(1).Path("names/dropped").c_str()), 0);
  const std::string b = node(2).WritePersisted("b", "node 2's");
  ASSERT_EQ(symlink(("../objects/" + b).c_str(), node(2).Path("names/n2").c_str()), 0);
  ASSERT_TRUE(WaitListed(2, pair));
  ASSERT_TRUE(WaitName(1, "n2", b));
  ASSERT_EQ(rmdir(node(1).ObjPath(gone).c_str()), 0) << strerror(errno);
  ASSERT_EQ(unlink(node(1).Path("names/dropped").c_str()), 0) << strerror(errno);
  ASSERT_TRUE(WaitGone(2, gone));

  ASSERT_TRUE(node(3).Start());
  ASSERT_TRUE(WaitUp(3));
  ASSERT_TRUE(WaitUp(1, {3}));
  ASSERT_TRUE(WaitUp(2, {3}));
  const std::vector<std::string> want = [&] {
    std::vector<std::string> v = {a, c, pair, b};
    std::sort(v.begin(), v.end());
    return v;
  }();
  EXPECT_TRUE(PollUntil([&] { return node(3).ListObjects() == want; }, 10000))
      << "node 3 lists " << testing::PrintToString(node(3).ListObjects()) << ", want "
      << testing::PrintToString(want);
  for (const std::string& id : {a, c, pair}) EXPECT_EQ(node(3).Meta(id), node(1).Meta(id)) << id;
  EXPECT_EQ(node(3).Meta(b), node(2).Meta(b));
  EXPECT_TRUE(PollUntil([&] { return node(3).Names().size() == 2; }));
  EXPECT_EQ(node(3).Names(), (std::map<std::string, std::string>{{"n1", pair}, {"n2", b}}));
  EXPECT_GE(Counter(3, "snapshots_taken"), 2u);
  EXPECT_GE(node(3).ReadInstance(1)["snapshots"].get<uint64_t>(), 1u);
  // The joiner fetches payloads like any node, and its own objects reach the others.
  EXPECT_TRUE(ReadFileOr(node(3).ObjPath(a, "data")) == payload);
  const std::string d = node(3).WritePersisted("d", "node 3's");
  ASSERT_TRUE(IsBlobId(d));
  for (int i : {1, 2}) {
    EXPECT_TRUE(WaitListed(i, d)) << "node " << i;
    EXPECT_EQ(node(i).Meta(d), node(3).Meta(d));
  }
}

// Node 2 also lists two impostors as peers: SparePort(0) will claim node 2's own id,
// SparePort(1) node 1's (already taken by the real node 1).
class ClusterRefusal : public ClusterTest {
 protected:
  std::string NodeOptions(int i) const override {
    if (i != 2) return "";
    return "peer=" + std::to_string(SparePort(0)) + ",peer=" + std::to_string(SparePort(1));
  }
};

TEST_F(ClusterRefusal, APeerClaimingOurOwnIdOrATakenIdIsRefused) {
  const std::string real = node(2).WritePersisted("real", "the real node 2's");
  ASSERT_TRUE(IsBlobId(real));
  for (int i : {1, 3}) ASSERT_TRUE(WaitListed(i, real));
  const std::string real_meta = node(2).Meta(real);

  // Impostors that publish objects of their own, whose ids (counters start at 1) are
  // likely the very ids of the real nodes' objects.
  Node& own = AddNode("own", SparePort(0));
  own.instance = 2;
  Node& dup = AddNode("dup", SparePort(1));
  dup.instance = 1;
  ASSERT_TRUE(own.Start());
  ASSERT_TRUE(dup.Start());
  const std::string fake2 = own.WritePersisted("fake", "an impostor's");
  const std::string fake1 = dup.WritePersisted("fake", "another impostor's");
  ASSERT_TRUE(IsBlobId(fake2) && IsBlobId(fake1));

  auto peer = [&](int port) {
    json st = node(2).ReadStatus();
    for (auto& p : st["cluster"]["peers"]) {
      if (p["endpoint"] == "tcp://127.0.0.1:" + std::to_string(port)) return p;
    }
    return json();
  };
  EXPECT_TRUE(PollUntil([&] { return peer(SparePort(0))["status"] == "refused"; }))
      << node(2).ReadStatus()["cluster"].dump(2);
  EXPECT_TRUE(PollUntil([&] { return peer(SparePort(1))["status"] == "refused"; }))
      << node(2).ReadStatus()["cluster"].dump(2);
  EXPECT_NE(peer(SparePort(0)).value("reason", "").find("own id"), std::string::npos)
      << peer(SparePort(0)).dump();
  EXPECT_NE(peer(SparePort(1)).value("reason", "").find("already used"), std::string::npos)
      << peer(SparePort(1)).dump();
  EXPECT_EQ(Counter(2, "refused_peers"), 2u);
  std::string metrics = ReadFileOr(node(2).Path("metrics"));
  EXPECT_NE(metrics.find("vineyardfs_cluster_refused_peers_total 2\n"), std::string::npos)
      << metrics;
  EXPECT_NE(node(2).LogText().find("refused"), std::string::npos) << "no log line";

  // Nothing of theirs got in: node 2's own object is its own, the real node 1 is still
  // its peer (the impostor claiming 1 did not displace it), instances/ lists 1..3.
  EXPECT_EQ(node(2).Meta(real), real_meta);
  EXPECT_EQ(ListDirectory(node(2).Path("instances")),
            (std::vector<std::string>{"1.json", "2.json", "3.json"}));
  EXPECT_EQ(node(2).InstanceStatus(1), "up");
  EXPECT_EQ(node(2).ReadInstance(1)["endpoint"], node(1).endpoint());
  const std::string later = node(1).WritePersisted("later", "from the real node 1");
  ASSERT_TRUE(IsBlobId(later));
  EXPECT_TRUE(WaitListed(2, later));
  EXPECT_EQ(node(2).Meta(later), node(1).Meta(later));
  std::set<std::string> want = {real, later};
  auto listed = node(2).ListObjects();
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), want)
      << "an impostor's object reached node 2";
}

}  // namespace
}  // namespace vyit
