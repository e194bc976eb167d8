// Cluster fault tests (DESIGN.md §7): hostile and malformed ZeroMQ messages on every
// socket a node reads, and what a node's ROUTER serves of its blobs.
#include "cluster_fault_fixture.h"

namespace vyit {
namespace {

// ---- Hostile messages -----------------------------------------------------------

std::string Be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// `reply` is a valid Error message with status `code`.
void ExpectError(const wire::Frames& reply, Status::Code code) {
  auto m = wire::Decode(reply);
  ASSERT_TRUE(m.ok()) << "the answer is not valid by the wire format: " << m.status().ToString();
  if (m->kind == wire::Kind::kFetchReply) {
    ADD_FAILURE() << "served " << std::get<wire::FetchReply>(m->body).bytes.size()
                  << " bytes instead of refusing";
    return;
  }
  ASSERT_EQ(static_cast<char>(m->kind), 'X') << "not an Error message";
  EXPECT_EQ(std::get<wire::ErrorReply>(m->body).code, code)
      << std::get<wire::ErrorReply>(m->body).reason;
}

ObjectID Id(const std::string& text) {
  return ObjectID(std::strtoull(text.c_str() + 1, nullptr, 16));
}

wire::Frames Update(const wire::Change& c) { return wire::Encode(wire::Kind::kUpdate, c); }

wire::Change ObjectPut(uint16_t origin, uint64_t seq, ObjectID id, const std::string& record) {
  wire::Change c;
  c.origin = origin;
  c.seq = seq;
  c.op = wire::Op::kObjectPut;
  c.id = id;
  c.record = record;
  return c;
}

// A record in the journal's form for a metadata object `id`, valid but for whatever
// the caller changes.
std::string Record(ObjectID id, bool transient) {
  vineyard::ObjectRecord r;
  r.id = id;
  r.type_name = "hostile::Thing";
  r.instance = id.instance();
  r.transient = transient;
  r.timestamp_ms = static_cast<int64_t>(NowNs() / 1000000);
  r.signature = vineyard::MakeSignature(id, r.timestamp_ms);
  r.fields = R"({"x":1})";
  return vineyard::EncodeRecord(r);
}

// Node 1 also lists SparePort(0) as a peer: the test's rogue publisher (and ROUTER).
class ClusterHostile : public ClusterFault {
 protected:
  std::string NodeOptions(int i) const override {
    return i == 1 ? "peer=" + std::to_string(SparePort(0)) : "";
  }
};

TEST_F(ClusterHostile, MalformedAndHostileMessagesOnEverySocketChangeNothing) {
  // Node 1's state: its own objects (a blob, a persisted pair, a transient blob), a
  // name, and a replica of node 2's blob.
  const std::string payload = RandomBytes(300000, 1);
  const std::string b1 = node(1).WritePersisted("b1", payload);
  const std::string c1 = node(1).WriteNew("c1", "member");
  const std::string m1 =
      node(1).WriteMeta("m1", R"({"typename":"vineyard::Pair","first_":{"id":")" + b1 +
                                  R"("},"second_":{"id":")" + c1 + "\"}}");
  const std::string t1 = node(1).WriteNew("t1", "transient");
  ASSERT_TRUE(IsObjectId(m1) && IsBlobId(t1));
  ASSERT_TRUE(node(1).Persist(m1));
  ASSERT_EQ(symlink(m1.c_str(), node(1).Path("names/n1").c_str()), 0);
  const std::string b2 = node(2).WritePersisted("b2", "node 2's");
  ASSERT_TRUE(IsBlobId(b2));
  ASSERT_TRUE(WaitListed(1, b2));
  ASSERT_TRUE(WaitName(2, "n1", m1));
  const View before = TakeView(1);
  const uint64_t malformed0 = Counter(1, "malformed"), rejected0 = Counter(1, "rejected");

  zmq::context_t ctx;
  // ---- (a) node 1's ROUTER: a client sending garbage and refused requests ----
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect("tcp://127.0.0.1:" + std::to_string(node(1).port() + 1));
  const std::string snap_body = Be(1, 2) + Be(9, 2);
  std::vector<wire::Frames> bad = {
      {"garbage"},
      {""},
      {std::string("VY\x02S", 4), snap_body},                // another wire version
      {std::string("XY\x01S", 4), snap_body},                // not our magic
      {wire::Header(wire::Kind::kSnapshotRequest)},          // a frame missing
      {wire::Header(wire::Kind::kSnapshotRequest), "\x00"},  // truncated
      {wire::Header(wire::Kind::kSnapshotRequest), snap_body, "extra"},
      {wire::Header(wire::Kind::kSnapshotRequest), RandomBytes(5u << 20, 2)},  // 5 MiB
      // A fetch of a metadata object, of 0 bytes, of more than one chunk.
      wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{Id(m1), 0, 10}),
      wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{Id(b1), 0, 0}),
      wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{Id(b1), 0, wire::kMaxChunk + 1}),
  };
  // Random bytes behind valid headers of each request kind.
  std::mt19937_64 rng(42);
  for (int k = 0; k < 20; ++k) {
    wire::Frames f = {
        wire::Header(k % 2 ? wire::Kind::kFetchRequest : wire::Kind::kSnapshotRequest)};
    for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n) {
      f.push_back(RandomBytes(rng() % 30, rng()));
    }
    if (!wire::Decode(f).ok()) bad.push_back(f);
  }
  for (auto& f : bad) EXPECT_FALSE(wire::Decode(f).ok()) << "meant to be malformed";
  // Well-formed, but not requests.
  bad.push_back(wire::Encode(wire::Kind::kFetchReply, wire::FetchReply{Id(b1), 0, 4, "abcd"}));
  bad.push_back(Update(ObjectPut(1, 1, Id(m1), Record(Id(m1), false))));
  for (size_t k = 0; k < bad.size(); ++k) {
    SCOPED_TRACE("bad request #" + std::to_string(k));
    Send(dealer, bad[k]);
    wire::Frames reply;
    ASSERT_TRUE(Recv(dealer, &reply, 3000)) << "no answer";
    ExpectError(reply, Status::Code::kInvalidArgument);
  }
  // Well-formed requests it must refuse: another origin's snapshot, a blob that is
  // not node 1's, a blob that does not exist. (Transient blobs and fetches past the
  // end: RouterServesOnlyPersistedPayloadsWithinTheirSize.)
  const std::vector<wire::Frames> refused = {
      wire::Encode(wire::Kind::kSnapshotRequest, wire::SnapshotRequest{2, 9}),
      wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{Id(b2), 0, 8}),
      wire::Encode(wire::Kind::kFetchRequest,
                   wire::FetchRequest{ObjectID::Make(true, 1, 999999), 0, 8}),
  };
  for (size_t k = 0; k < refused.size(); ++k) {
    SCOPED_TRACE("refused request #" + std::to_string(k));
    Send(dealer, refused[k]);
    wire::Frames reply;
    ASSERT_TRUE(Recv(dealer, &reply, 3000)) << "no answer";
    ExpectError(reply, Status::Code::kNotFound);
  }
  const uint64_t router_malformed = bad.size();
  EXPECT_GE(WaitCounterAbove(1, "malformed", malformed0 + router_malformed - 1),
            malformed0 + router_malformed);

  // The same ROUTER still serves: a snapshot of node 1 (its persisted objects and
  // name, not the transient one), and a chunk of its blob.
  Send(dealer, wire::Encode(wire::Kind::kSnapshotRequest, wire::SnapshotRequest{1, 9}));
  std::set<std::string> snap_ids, snap_names;
  for (;;) {
    wire::Frames reply;
    ASSERT_TRUE(Recv(dealer, &reply, 3000)) << "snapshot incomplete";
    auto m = wire::Decode(reply);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    if (m->kind == wire::Kind::kSnapshotEnd) {
      auto& e = std::get<wire::SnapshotEnd>(m->body);
      EXPECT_EQ(e.origin, 1);
      EXPECT_EQ(e.count, snap_ids.size() + snap_names.size());
      break;
    }
    ASSERT_EQ(static_cast<char>(m->kind), 'R');
    auto& c = std::get<wire::Change>(m->body);
    EXPECT_EQ(c.origin, 1);
    if (c.op == wire::Op::kObjectPut) snap_ids.insert(c.id.ToString());
    if (c.op == wire::Op::kNamePut) snap_names.insert(c.name);
  }
  EXPECT_EQ(snap_ids, (std::set<std::string>{b1, c1, m1}));
  EXPECT_EQ(snap_names, std::set<std::string>{"n1"});
  Send(dealer, wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{Id(b1), 1000, 5000}));
  {
    wire::Frames reply;
    ASSERT_TRUE(Recv(dealer, &reply, 3000));
    auto m = wire::Decode(reply);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_EQ(static_cast<char>(m->kind), 'D');
    auto& d = std::get<wire::FetchReply>(m->body);
    EXPECT_EQ(d.total, payload.size());
    EXPECT_TRUE(d.bytes == payload.substr(1000, 5000));
  }

  // ---- (b) node 1's SUB (and snapshot DEALER): a rogue peer, instance 9 ----
  const uint64_t malformed1 = Counter(1, "malformed");
  FakePeer peer(ctx, SparePort(0));
  zmq::socket_t& pub = peer.pub;
  zmq::socket_t& router = peer.router;
  // Publish only once node 1 subscribed (XPUB shows the subscriptions), or the
  // messages would be dropped before anyone listens.
  const std::set<std::string> subs = peer.AwaitSubscriptions(2, 5000);
  ASSERT_EQ(subs.size(), 2u) << "node 1 did not subscribe to the rogue publisher";
  EXPECT_EQ(subs, (std::set<std::string>{wire::Header(wire::Kind::kUpdate),
                                         wire::Header(wire::Kind::kHeartbeat)}));
  uint64_t sub_malformed = 0;
  auto send_bad = [&](const wire::Frames& f) {
    EXPECT_FALSE(wire::Decode(f).ok()) << "meant to be malformed";
    Send(pub, f);
    ++sub_malformed;
  };
  // Garbage behind the subscription prefixes, before the rogue said who it is.
  send_bad({std::string("VY\x01Hjunk", 8), Be(9, 2) + Be(0, 16)});
  send_bad({wire::Header(wire::Kind::kHeartbeat), "short"});
  for (int k = 0; k < 10; ++k) {
    wire::Frames f = {wire::Header(wire::Kind::kUpdate)};
    for (int n = 0; n < 4; ++n) f.push_back(RandomBytes(rng() % 24, rng()));
    if (!wire::Decode(f).ok()) send_bad(f);
  }
  // Now a heartbeat: node 1 takes it for instance 9 and asks its ROUTER for a snapshot.
  Send(pub, wire::Encode(wire::Kind::kHeartbeat, wire::Heartbeat{9, 0, NowNs()}));
  wire::Frames req;
  ASSERT_TRUE(Recv(router, &req, 5000)) << "node 1 did not ask the rogue for a snapshot";
  ASSERT_EQ(req.size(), 3u);
  {
    auto m = wire::Decode(wire::Frames(req.begin() + 1, req.end()));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_EQ(static_cast<char>(m->kind), 'S');
    EXPECT_EQ(std::get<wire::SnapshotRequest>(m->body).origin, 9);
    EXPECT_EQ(std::get<wire::SnapshotRequest>(m->body).requester, 1);
  }
  // A hostile snapshot on node 1's DEALER: garbage, a message that is no part of a
  // snapshot, a record of another instance (all malformed), a transient record
  // (rejected by the table), then a correct end.
  auto reply = [&](const wire::Frames& f) {
    router.send(zmq::buffer(req[0]), zmq::send_flags::sndmore);
    Send(router, f);
  };
  reply({"junk", "more junk"});
  reply(wire::Encode(wire::Kind::kFetchReply,
                     wire::FetchReply{ObjectID::Make(true, 9, 1), 0, 4, "abcd"}));
  wire::Change other =
      ObjectPut(5, 1, ObjectID::Make(false, 5, 1), Record(ObjectID::Make(false, 5, 1), false));
  reply(wire::Encode(wire::Kind::kSnapshotRecord, other));
  sub_malformed += 3;
  wire::Change transient_rec =
      ObjectPut(9, 1, ObjectID::Make(false, 9, 1), Record(ObjectID::Make(false, 9, 1), true));
  ASSERT_TRUE(vineyard::DecodeRecord(transient_rec.record).ok());
  reply(wire::Encode(wire::Kind::kSnapshotRecord, transient_rec));
  reply(wire::Encode(wire::Kind::kSnapshotEnd, wire::SnapshotEnd{9, 0, 1}));
  uint64_t rejected = 1;
  const std::string rogue = "tcp://127.0.0.1:" + std::to_string(SparePort(0));
  auto rogue_peer = [&] {
    json st = node(1).ReadStatus();
    for (auto& p : st["cluster"]["peers"]) {
      if (p["endpoint"] == rogue) return p;
    }
    return json();
  };
  // The rogue keeps up its heartbeats (as instance 9, at sequence number 0, which the
  // snapshot said) until node 1 shows it "up", not "syncing": updates then apply at
  // once instead of waiting behind a snapshot.
  ASSERT_TRUE(PollUntil([&] {
    Send(pub, wire::Encode(wire::Kind::kHeartbeat, wire::Heartbeat{9, 0, NowNs()}));
    return rogue_peer()["status"] == "up";
  })) << "the rogue's snapshot did not complete: "
      << rogue_peer().dump();

  // Updates, in sequence so that none waits behind a gap.
  // An object of instance 2, said by 9 (a node speaks only for its own objects).
  send_bad(Update(
      ObjectPut(9, 1, ObjectID::Make(false, 2, 77), Record(ObjectID::Make(false, 2, 77), false))));
  // A transient record.
  transient_rec.seq = 1;
  Send(pub, Update(transient_rec));
  ++rejected;
  // A delete of node 1's own object.
  {
    wire::Change c;
    c.origin = 9;
    c.seq = 2;
    c.op = wire::Op::kObjectDelete;
    c.id = Id(m1);
    send_bad(Update(c));
  }
  // A record whose "id" is not its key.
  send_bad(Update(
      ObjectPut(9, 2, ObjectID::Make(false, 9, 2), Record(ObjectID::Make(false, 9, 3), false))));
  // Names "written by" instance 5, stamped far in the future: a hijack of n1, a drop.
  {
    wire::Change c;
    c.origin = 9;
    c.seq = 2;
    c.op = wire::Op::kNamePut;
    c.name = "n1";
    c.id = Id(b2);
    c.timestamp = NowNs() + (uint64_t{3600} * 1000000000);
    c.writer = 5;
    ASSERT_TRUE(wire::Decode(Update(c)).ok());
    Send(pub, Update(c));
    c.seq = 3;
    c.op = wire::Op::kNameDrop;
    Send(pub, Update(c));
    rejected += 2;
    // Sequence number 0, and a name of 256 bytes.
    c.seq = 0;
    send_bad(Update(c));
    c.seq = 4;
    c.name = std::string(256, 'n');
    send_bad(Update(c));
  }
  // Messages in the name of node 1 itself, from the peer known as 9.
  Send(pub, wire::Encode(wire::Kind::kHeartbeat, wire::Heartbeat{1, 100, NowNs()}));
  Send(pub, Update(ObjectPut(1, 4, ObjectID::Make(false, 1, 500),
                             Record(ObjectID::Make(false, 1, 500), false))));
  sub_malformed += 2;

  EXPECT_GE(WaitCounterAbove(1, "malformed", malformed1 + sub_malformed - 1),
            malformed1 + sub_malformed);
  EXPECT_GE(WaitCounterAbove(1, "rejected", rejected0 + rejected - 1), rejected0 + rejected);

  // Nothing of it reached the tables: node 1 shows what it showed before.
  View after = TakeView(1);
  EXPECT_EQ(after.metas, before.metas);
  EXPECT_EQ(after.names, before.names);
  EXPECT_NE(rogue_peer()["status"], "refused") << "it claimed a fresh id: not an impostor";
  std::string metrics = ReadFileOr(node(1).Path("metrics"));
  EXPECT_NE(metrics.find("vineyardfs_cluster_malformed_total " +
                         std::to_string(Counter(1, "malformed")) + "\n"),
            std::string::npos)
      << metrics;

  // And node 1 still serves, in both directions.
  const std::string later = node(1).WritePersisted("later", "after the attack");
  const std::string from2 = node(2).WritePersisted("from2", "after the attack");
  ASSERT_TRUE(IsBlobId(later) && IsBlobId(from2));
  EXPECT_TRUE(WaitListed(1, from2));
  EXPECT_EQ(node(1).Meta(from2), node(2).Meta(from2));
  for (int i : {2, 3}) {
    EXPECT_TRUE(WaitListed(i, later));
    EXPECT_EQ(node(i).Meta(later), node(1).Meta(later));
    EXPECT_EQ(node(i).NameTarget("n1"), m1) << "node " << i;
  }
  EXPECT_TRUE(ReadFileOr(node(3).ObjPath(b1, "data")) == payload);
}

// What node 1's ROUTER serves of its own blobs: persisted payloads only (transient
// objects never leave their node, §7, and ids are easy to guess), and only replies
// that are valid by the wire format, also for a request past a blob's end.
TEST_F(ClusterFault, RouterServesOnlyPersistedPayloadsWithinTheirSize) {
  const std::string payload = RandomBytes(5000, 1);
  const std::string b1 = node(1).WritePersisted("b1", payload);
  const std::string t1 = node(1).WriteNew("t1", "transient: stays on node 1");
  ASSERT_TRUE(IsBlobId(b1) && IsBlobId(t1));
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect("tcp://127.0.0.1:" + std::to_string(node(1).port() + 1));
  wire::Frames reply;

  Send(dealer, wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{Id(t1), 0, 100}));
  ASSERT_TRUE(Recv(dealer, &reply, 3000)) << "no answer to a fetch of a transient blob";
  {
    SCOPED_TRACE("a fetch of a transient blob");
    ExpectError(reply, Status::Code::kNotFound);
  }
  // Past the end (offset > size): a reply may not claim offset + bytes > total.
  Send(dealer, wire::Encode(wire::Kind::kFetchRequest,
                            wire::FetchRequest{Id(b1), payload.size() + 100, 10}));
  ASSERT_TRUE(Recv(dealer, &reply, 3000)) << "no answer to a fetch past the end";
  auto m = wire::Decode(reply);
  EXPECT_TRUE(m.ok()) << "the answer to a fetch past the end is not valid by the wire format: "
                      << m.status().ToString();
  // The control: the persisted blob is served, up to its end.
  Send(dealer, wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{Id(b1), 4000, 2000}));
  ASSERT_TRUE(Recv(dealer, &reply, 3000));
  m = wire::Decode(reply);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(static_cast<char>(m->kind), 'D');
  EXPECT_EQ(std::get<wire::FetchReply>(m->body).total, payload.size());
  EXPECT_TRUE(std::get<wire::FetchReply>(m->body).bytes == payload.substr(4000));
}

}  // namespace
}  // namespace vyit
