// Cluster fault tests (DESIGN.md §7): CurveZMQ keeping out unknown subscribers and a
// node without keys.
#include "cluster_fault_fixture.h"

namespace vyit {
namespace {

// ---- CURVE ----------------------------------------------------------------------

// Nodes 1-3 with CURVE keys; node "n4" (SparePort(0)) has a key in curve_peers too,
// so the others list it as a peer, but runs without CURVE. The nodes start in the
// test, once the keys exist.
class ClusterCurve : public ClusterFault {
 protected:
  bool StartInSetUp(int) const override { return false; }
};

TEST_F(ClusterCurve, OnlyNodesWithKnownKeysReplicate) {
  ASSERT_TRUE(MakeCurveKeys({{"n4", SparePort(0)}, {"client", 0}}));
  for (int i = 1; i <= 3; ++i) {
    node(i).options = CurveOptions("n" + std::to_string(i));
    node(i).peers.push_back(std::to_string(SparePort(0)));
    ASSERT_TRUE(node(i).Start());
  }
  ASSERT_TRUE(WaitAllUp());
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(node(i).ReadStatus()["cluster"]["curve"], true);

  // Replication and fetch over CURVE.
  const std::string bytes = RandomBytes((5u << 20) + 1, 3);
  const std::string id = node(1).WritePersisted("b", bytes);
  ASSERT_TRUE(IsBlobId(id));
  for (int i : {2, 3}) {
    ASSERT_TRUE(WaitListed(i, id)) << "node " << i;
    EXPECT_EQ(node(i).Meta(id), node(1).Meta(id));
  }
  EXPECT_TRUE(ReadFileOr(node(2).ObjPath(id, "data")) == bytes);

  // Subscribers to node 1's PUB. A known key (control) hears its heartbeats; an
  // unknown key and a plain client hear nothing, and the unknown key is counted.
  const uint64_t auth0 = Counter(1, "auth_refused");
  zmq::context_t ctx;
  const std::string pub_ep = node(1).endpoint();
  auto subscriber = [&](const std::string& pub, const std::string& secret) {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
    s->set(zmq::sockopt::linger, 0);
    if (!secret.empty()) {
      s->set(zmq::sockopt::curve_serverkey, PublicKey("n1"));
      s->set(zmq::sockopt::curve_publickey, pub);
      s->set(zmq::sockopt::curve_secretkey, secret);
    }
    s->set(zmq::sockopt::subscribe, "");
    s->connect(pub_ep);
    return s;
  };
  char rogue_pub[41], rogue_secret[41];
  ASSERT_EQ(zmq_curve_keypair(rogue_pub, rogue_secret), 0);
  auto known = subscriber(PublicKey("client"), SecretKey("client"));
  auto rogue = subscriber(rogue_pub, rogue_secret);
  auto plain = subscriber("", "");
  wire::Frames f;
  ASSERT_TRUE(Recv(*known, &f, 5000)) << "a subscriber with a known key heard nothing";
  auto m = wire::Decode(f);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  // Node 1 publishes a change meanwhile: the rogues must not get it either.
  const std::string secret_id = node(1).WritePersisted("s", "for members only");
  ASSERT_TRUE(IsBlobId(secret_id));
  EXPECT_FALSE(Recv(*rogue, &f, 1000)) << "a subscriber with an unknown key got a message";
  EXPECT_FALSE(Recv(*plain, &f, 200)) << "a subscriber without CURVE got a message";
  EXPECT_GT(WaitCounterAbove(1, "auth_refused", auth0), auth0);
  std::string metrics = ReadFileOr(node(1).Path("metrics"));
  EXPECT_NE(metrics.find("vineyardfs_cluster_auth_refused_total " +
                         std::to_string(Counter(1, "auth_refused")) + "\n"),
            std::string::npos);
  // Nor may an unknown key ask the ROUTER for a snapshot.
  {
    zmq::socket_t d(ctx, zmq::socket_type::dealer);
    d.set(zmq::sockopt::linger, 0);
    d.set(zmq::sockopt::curve_serverkey, PublicKey("n1"));
    d.set(zmq::sockopt::curve_publickey, std::string(rogue_pub));
    d.set(zmq::sockopt::curve_secretkey, std::string(rogue_secret));
    d.connect("tcp://127.0.0.1:" + std::to_string(node(1).port() + 1));
    Send(d, wire::Encode(wire::Kind::kSnapshotRequest, wire::SnapshotRequest{1, 9}));
    EXPECT_FALSE(Recv(d, &f, 1000)) << "an unknown key got an answer from the ROUTER";
  }

  // A node without keys cannot join: its objects never reach the others, theirs never
  // reach it, and neither side ever learns who the other is.
  Node& n4 = AddNode("n4", SparePort(0));
  n4.instance = 4;
  for (int i = 1; i <= 3; ++i) n4.peers.push_back(std::to_string(node(i).port()));
  ASSERT_TRUE(n4.Start());
  const std::string outsider = n4.WritePersisted("o", "from outside");
  ASSERT_TRUE(IsBlobId(outsider));
  // Long enough for 20 heartbeats and for any replication (milliseconds otherwise).
  const std::string barrier = node(2).WritePersisted("barrier", "after the outsider");
  ASSERT_TRUE(IsBlobId(barrier));
  ASSERT_TRUE(WaitListed(1, barrier));
  ASSERT_TRUE(WaitListed(3, barrier));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  for (int i = 1; i <= 3; ++i) {
    EXPECT_FALSE(WaitListed(i, outsider, 0)) << "node " << i << " lists the keyless node's object";
    EXPECT_TRUE(node(i).InstanceStatus(4).empty()) << node(i).ReadInstance(4).dump();
  }
  EXPECT_EQ(n4.ListObjects(), std::vector<std::string>{outsider});
  json st = n4.ReadStatus();
  for (auto& p : st["cluster"]["peers"]) EXPECT_EQ(p["status"], "connecting") << p.dump();
}

}  // namespace
}  // namespace vyit
