// Records from a peer get the limits and rules of a local create (issue 14, finding
// 4): a fake peer over real ZeroMQ on loopback sends node 1 a record nested 100,000
// levels deep, member cycles, oversized records, numbers out of range and members
// named ".."; node 1 refuses each with a log line and an Error frame to the peer's
// ROUTER, applies the peer's good records, and keeps serving.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "cluster_fixture.h"
#include "meta/object_meta.h"
#include "meta/wire.h"
#include "wire_io.h"

namespace vyit {
namespace {

using nlohmann::json;
namespace wire = vineyard::wire;
using vineyard::ObjectID;
using vineyard::Status;

uint64_t NowNs() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count());
}

// A persisted record of instance 9's object `counter` with `fields` ("" for none),
// as a peer publishes it.
wire::Change Put(uint64_t seq, uint64_t counter, const std::string& fields) {
  vineyard::ObjectRecord r;
  r.id = ObjectID::Make(false, 9, counter);
  r.type_name = "rogue::Thing";
  r.instance = 9;
  r.transient = false;
  r.timestamp_ms = static_cast<int64_t>(NowNs() / 1000000);
  r.signature = vineyard::MakeSignature(r.id, r.timestamp_ms);
  r.fields = fields;
  wire::Change c;
  c.origin = 9;
  c.seq = seq;
  c.op = wire::Op::kObjectPut;
  c.id = r.id;
  c.record = vineyard::EncodeRecord(r);
  return c;
}

std::string Holds(uint64_t counter) {
  return R"({"m":{"id":")" + ObjectID::Make(false, 9, counter).ToString() + "\"}}";
}

// One node; it lists SparePort(0) as a peer: the test's fake peer, instance 9.
class ClusterInput : public ClusterTest {
 protected:
  int NodeCount() const override { return 1; }
  int SparePorts() const override { return 1; }
  std::string NodeOptions(int) const override { return "peer=" + std::to_string(SparePort(0)); }
};

TEST_F(ClusterInput, HostileRecordsAreRefusedLoggedAndAnsweredAndTheNodeKeepsServing) {
  const std::string before = node(1).WritePersisted("before", "node 1's own");
  ASSERT_TRUE(IsBlobId(before));

  zmq::context_t ctx;
  FakePeer peer(ctx, SparePort(0));
  zmq::socket_t& pub = peer.pub;
  zmq::socket_t& router = peer.router;
  ASSERT_EQ(peer.AwaitSubscriptions(2, 5000).size(), 2u)
      << "node 1 did not subscribe to the fake peer";
  // Introduce instance 9 with a heartbeat and an empty snapshot.
  Send(pub, wire::Encode(wire::Kind::kHeartbeat, wire::Heartbeat{9, 0, NowNs()}));
  wire::Frames req;
  ASSERT_TRUE(Recv(router, &req, 5000)) << "node 1 did not ask for a snapshot";
  ASSERT_EQ(req.size(), 3u);
  const std::string dealer_id = req[0];
  router.send(zmq::buffer(dealer_id), zmq::send_flags::sndmore);
  Send(router, wire::Encode(wire::Kind::kSnapshotEnd, wire::SnapshotEnd{9, 0, 0}));
  ASSERT_TRUE(PollUntil([&] {
    Send(pub, wire::Encode(wire::Kind::kHeartbeat, wire::Heartbeat{9, 0, NowNs()}));
    return node(1).InstanceStatus(9) == "up";
  })) << node(1).ReadInstance(9).dump();
  const uint64_t rejected0 = Counter(1, "rejected"), malformed0 = Counter(1, "malformed");

  // Refused by the table (sequence numbers in order, so none waits behind a gap).
  const std::string deep = std::string(100000, '[') + "1" + std::string(100000, ']');
  Send(pub, wire::Encode(wire::Kind::kUpdate, Put(1, 1, R"({"deep":)" + deep + "}")));
  Send(pub, wire::Encode(wire::Kind::kUpdate, Put(2, 2, Holds(3))));  // 2 -> 3: fine so far
  Send(pub, wire::Encode(wire::Kind::kUpdate, Put(3, 3, Holds(2))));  // 3 -> 2 -> 3: a cycle
  Send(pub, wire::Encode(wire::Kind::kUpdate, Put(4, 4, Holds(4))));  // itself
  Send(pub, wire::Encode(wire::Kind::kUpdate,
                         Put(5, 5,
                             R"({"pad":")" + std::string(vineyard::kMaxMetaBytes, 'x') +
                                 "\"}")));  // fields over 16 MiB
  Send(pub, wire::Encode(wire::Kind::kUpdate,
                         Put(6, 6, R"({"..":{"id":")" + before + "\"}}")));  // a ".." member
  Send(pub, wire::Encode(wire::Kind::kUpdate, Put(7, 7, R"({"x":{"id":5}})")));
  const uint64_t table_refused = 6;
  // Refused by the wire decoder (dropped before sequencing): a record over the wire
  // limit, a number out of range, a NUL and garbage after the record.
  wire::Change big = Put(100, 100, "");
  big.record = std::string(wire::kMaxRecord + 1, ' ');
  Send(pub, wire::Encode(wire::Kind::kUpdate, big));
  wire::Change num = Put(100, 101, "");
  num.record.insert(num.record.size() - 1, R"(,"fields":{"n":1e400})");
  Send(pub, wire::Encode(wire::Kind::kUpdate, num));
  const uint64_t wire_refused = 2;
  // And then a good record, which must apply.
  Send(pub, wire::Encode(wire::Kind::kUpdate, Put(8, 8, R"({"note":"fine"})")));
  const std::string good = ObjectID::Make(false, 9, 8).ToString();

  // The peer hears why: an Error frame on its ROUTER from node 1's DEALER.
  wire::Frames answer;
  ASSERT_TRUE(Recv(router, &answer, 30000)) << "no Error frame came back";
  ASSERT_GE(answer.size(), 2u);
  auto m = wire::Decode(wire::Frames(answer.begin() + 1, answer.end()));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(static_cast<char>(m->kind), 'X');
  EXPECT_EQ(std::get<wire::ErrorReply>(m->body).code, Status::Code::kInvalidArgument);
  const std::string reason = std::get<wire::ErrorReply>(m->body).reason;
  EXPECT_TRUE(reason.find("deeper than") != std::string::npos ||
              reason.find("record") != std::string::npos)
      << reason;

  // Generous timeouts: three 16 MiB records are parsed on a machine that may be busy.
  EXPECT_GE(WaitCounterAbove(1, "rejected", rejected0 + table_refused - 1, 30000),
            rejected0 + table_refused);
  EXPECT_GE(WaitCounterAbove(1, "malformed", malformed0 + wire_refused - 1, 30000),
            malformed0 + wire_refused);
  ASSERT_TRUE(WaitListed(1, good, 30000));
  // Exactly the good records are there: 2 (holding 3, which never came) and 8.
  std::set<std::string> rogue;
  for (const std::string& id : node(1).ListObjects()) {
    if (ObjectID(std::strtoull(id.c_str() + 1, nullptr, 16)).instance() == 9) rogue.insert(id);
  }
  EXPECT_EQ(rogue, (std::set<std::string>{ObjectID::Make(false, 9, 2).ToString(), good}));
  EXPECT_TRUE(json::parse(node(1).Meta(ObjectID::Make(false, 9, 2).ToString()), nullptr, false)
                  .is_object());
  EXPECT_NE(node(1).LogText().find("refused"), std::string::npos) << node(1).LogText();

  // Node 1 is alive and serves.
  ASSERT_EQ(waitpid(node(1).pid(), nullptr, WNOHANG), 0) << "node 1 died";
  EXPECT_EQ(json::parse(node(1).Meta(good))["note"], "fine");
  const std::string after = node(1).WritePersisted("after", "still serving");
  ASSERT_TRUE(IsBlobId(after));
  EXPECT_EQ(ReadFileOr(node(1).ObjPath(after, "data")), "still serving");
}

// The same fake peer, and node 1 holds at most 64 KiB of its records while syncing.
class ClusterInputBuffer : public ClusterInput {
 protected:
  std::string NodeOptions(int i) const override {
    return ClusterInput::NodeOptions(i) + ",peer_buffer=64K";
  }
};

// Waits for node 1's snapshot request (heartbeating, so that instance 9 stays up) and
// answers it with `records` and the end marker.
bool AnswerSnapshot(FakePeer& peer, const std::vector<wire::Change>& records, uint64_t seq) {
  zmq::socket_t& router = peer.router;
  wire::Frames req;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool asked = false;
  while (!asked && std::chrono::steady_clock::now() < deadline) {
    Send(peer.pub, wire::Encode(wire::Kind::kHeartbeat, wire::Heartbeat{9, seq, NowNs()}));
    asked = Recv(router, &req, 50);
  }
  if (!asked || req.size() != 3) return false;
  for (const wire::Change& c : records) {
    router.send(zmq::buffer(req[0]), zmq::send_flags::sndmore);
    Send(router, wire::Encode(wire::Kind::kSnapshotRecord, c));
  }
  router.send(zmq::buffer(req[0]), zmq::send_flags::sndmore);
  Send(router, wire::Encode(wire::Kind::kSnapshotEnd, wire::SnapshotEnd{9, seq, records.size()}));
  return true;
}

// A peer whose snapshot is larger than peer_buffer cannot make the node hold it: the
// node drops it (cluster.peer_overflows), applies none of it, keeps serving, and asks
// again; a snapshot that fits is then taken.
TEST_F(ClusterInputBuffer, ASnapshotOverPeerBufferIsDroppedAndAskedAgain) {
  zmq::context_t ctx;
  FakePeer peer(ctx, SparePort(0));
  ASSERT_EQ(peer.AwaitSubscriptions(2, 5000).size(), 2u)
      << "node 1 did not subscribe to the fake peer";
  EXPECT_EQ(node(1).ReadStatus()["options"].value("peer_buffer", ""), "65536");
  std::vector<wire::Change> big;  // 200 records of 1 KiB: over 64 KiB
  for (uint64_t i = 1; i <= 200; ++i) {
    big.push_back(Put(i, i, R"({"pad":")" + std::string(1024, 'x') + "\"}"));
  }
  ASSERT_TRUE(AnswerSnapshot(peer, big, 200)) << "node 1 did not ask for a snapshot";
  EXPECT_GE(WaitCounterAbove(1, "peer_overflows", 0, 10000), 1u);
  // The node is alive and serves; nothing of the dropped snapshot is there.
  const std::string own = node(1).WritePersisted("own", "node 1's own");
  ASSERT_TRUE(IsBlobId(own));
  for (const std::string& id : node(1).ListObjects()) {
    EXPECT_NE(ObjectID(std::strtoull(id.c_str() + 1, nullptr, 16)).instance(), 9u) << id;
  }
  // It asks again (after the snapshot timeout); a snapshot within the bound is taken.
  std::vector<wire::Change> small;
  for (uint64_t i = 1; i <= 3; ++i) small.push_back(Put(i, 1000 + i, R"({"note":"fits"})"));
  ASSERT_TRUE(AnswerSnapshot(peer, small, 3)) << "node 1 did not ask again";
  EXPECT_TRUE(WaitListed(1, ObjectID::Make(false, 9, 1003).ToString(), 10000));
  EXPECT_EQ(waitpid(node(1).pid(), nullptr, WNOHANG), 0) << "node 1 died";
}

}  // namespace
}  // namespace vyit
