// Cluster fault tests (DESIGN.md §7): a node killed (-9) in the middle of a stream of
// creates and restarted on its state, a node stopped (SIGSTOP) for seconds, hostile
// and malformed ZeroMQ messages on every socket a node reads, and CurveZMQ keeping
// out unknown subscribers and a node without keys.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
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

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The instance that created `id` (bits 62..48).
int Creator(const std::string& id) {
  return static_cast<int>((std::strtoull(id.c_str() + 1, nullptr, 16) >> 48) & 0x7fff);
}

uint64_t NowNs() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

// ---- What tests create, and the converged state they expect ---------------------

struct Made {
  std::mutex mu;
  std::set<std::string> persisted, transient;
  std::map<std::string, std::string> names;  // name -> id
  std::map<std::string, std::string> blobs;  // persisted blob id -> its bytes
};

// Makes `count` objects on `n`, named after `tag`: persisted blobs of up to 8 KiB,
// every 5th a persisted Pair of the two previous persisted blobs, every 9th a
// transient blob; every 4th persisted one gets a name. `progress` counts them.
void Populate(Node& n, const std::string& tag, int count, Made* out,
              std::atomic<int>* progress = nullptr) {
  std::vector<std::string> blobs;
  for (int k = 0; k < count; ++k) {
    const std::string file = tag + std::to_string(k);
    std::string id;
    bool persisted = true;
    if (k % 5 == 4 && blobs.size() >= 2) {
      id = n.WriteMeta(file, R"({"typename":"vineyard::Pair","first_":{"id":")" +
                                 blobs[blobs.size() - 2] + R"("},"second_":{"id":")" +
                                 blobs.back() + R"("},"k":)" + std::to_string(k) + "}");
      if (id.empty() || !n.Persist(id)) return;
    } else {
      std::string bytes =
          RandomBytes(static_cast<size_t>(k * 977 % 8192), std::hash<std::string>{}(file));
      persisted = k % 9 != 8;
      id = persisted ? n.WritePersisted(file, bytes) : n.WriteNew(file, bytes);
      if (id.empty()) return;
      if (persisted) {
        blobs.push_back(id);
        std::lock_guard<std::mutex> lock(out->mu);
        out->blobs[id] = bytes;
      }
    }
    {
      std::lock_guard<std::mutex> lock(out->mu);
      (persisted ? out->persisted : out->transient).insert(id);
    }
    if (persisted && k % 4 == 0) {
      if (symlink(("../objects/" + id).c_str(), n.Path("names/" + file).c_str()) != 0) {
        ADD_FAILURE() << "naming " << id << " " << file << ": " << strerror(errno);
        return;
      }
      std::lock_guard<std::mutex> lock(out->mu);
      out->names[file] = id;
    }
    if (progress) ++*progress;
  }
}

class ClusterFault : public ClusterTest {
 protected:
  // Polls (up to `timeout_ms`) until every node lists exactly `persisted` plus its own
  // transient objects (`transient[i]`) and the names `names`; then checks that each
  // object's meta.json is the same on every node as on its owner.
  void ExpectConverged(const std::set<std::string>& persisted,
                       std::map<int, std::set<std::string>> transient,
                       const std::map<std::string, std::string>& names, int timeout_ms = 15000) {
    auto want = [&](int i) {
      std::set<std::string> w = persisted;
      w.insert(transient[i].begin(), transient[i].end());
      return w;
    };
    auto listed = [&](int i) {
      auto l = node(i).ListObjects();
      return std::set<std::string>(l.begin(), l.end());
    };
    bool ok = PollUntil(
        [&] {
          for (int i = 1; i <= size(); ++i) {
            if (listed(i) != want(i) || node(i).Names() != names) return false;
          }
          return true;
        },
        timeout_ms);
    for (int i = 1; i <= size(); ++i) {
      SCOPED_TRACE("node " + std::to_string(i));
      std::set<std::string> have = listed(i), w = want(i), missing, extra;
      std::set_difference(w.begin(), w.end(), have.begin(), have.end(),
                          std::inserter(missing, missing.end()));
      std::set_difference(have.begin(), have.end(), w.begin(), w.end(),
                          std::inserter(extra, extra.end()));
      EXPECT_TRUE(missing.empty() && extra.empty())
          << "after " << timeout_ms << " ms: " << missing.size() << " objects missing ("
          << testing::PrintToString(missing) << "), " << extra.size() << " unexpected ("
          << testing::PrintToString(extra) << ")";
      EXPECT_EQ(node(i).Names(), names);
    }
    if (!ok) return;
    for (const std::string& id : persisted) {
      const int owner = Creator(id);
      ASSERT_TRUE(owner >= 1 && owner <= size()) << id;
      const std::string ref = node(owner).Meta(id);
      ASSERT_FALSE(ref.empty()) << id;
      for (int i = 1; i <= size(); ++i) {
        if (i != owner) {
          EXPECT_EQ(node(i).Meta(id), ref) << id << " on node " << i;
        }
      }
    }
  }
};

TEST_F(ClusterFault, KilledNodeRestartsOnItsStateAndAllConverge) {
  Made m1, m2, m3;
  // Node 2's objects before it dies; the others see them.
  Populate(node(2), "x", 30, &m2);
  ASSERT_EQ(m2.persisted.size() + m2.transient.size(), 30u);
  // Node 1 objects that change while node 2 is down: a delete (its name goes with it)
  // and a dropped name. Node 2 can learn of them only from a snapshot.
  const std::string victim = node(1).WritePersisted("victim", "deleted while node 2 is down");
  const std::string keep = node(1).WritePersisted("keep", "kept");
  ASSERT_TRUE(IsBlobId(victim) && IsBlobId(keep));
  ASSERT_EQ(symlink(victim.c_str(), node(1).Path("names/victim").c_str()), 0);
  ASSERT_EQ(symlink(keep.c_str(), node(1).Path("names/dropme").c_str()), 0);
  ASSERT_TRUE(WaitName(2, "dropme", keep));
  ASSERT_TRUE(WaitName(2, "victim", victim));

  std::atomic<int> p1{0}, p3{0};
  std::thread w1([&] { Populate(node(1), "a", 150, &m1, &p1); });
  std::thread w3([&] { Populate(node(3), "c", 150, &m3, &p3); });
  const bool started = PollUntil([&] { return p1 >= 30 && p3 >= 30; }, 30000);
  EXPECT_TRUE(started);
  node(2).Crash();
  EXPECT_EQ(rmdir(node(1).ObjPath(victim).c_str()), 0) << strerror(errno);
  EXPECT_EQ(unlink(node(1).Path("names/dropme").c_str()), 0) << strerror(errno);
  EXPECT_TRUE(PollUntil([&] { return node(1).InstanceStatus(2) == "down"; }))
      << node(1).ReadInstance(2).dump();
  PollUntil([&] { return p1 >= 90 && p3 >= 90; }, 30000);
  // Back on the same state (and arena) while the others keep creating.
  const bool restarted = node(2).Start();
  w1.join();
  w3.join();
  ASSERT_TRUE(restarted);
  // Node 2 creates again at once, maybe before its peers resubscribed: whatever they
  // miss, its heartbeats tell them, and they take a snapshot.
  Populate(node(2), "y", 20, &m2);
  ASSERT_TRUE(WaitAllUp());

  std::set<std::string> persisted;
  std::map<std::string, std::string> names;
  for (Made* m : {&m1, &m2, &m3}) {
    persisted.insert(m->persisted.begin(), m->persisted.end());
    names.insert(m->names.begin(), m->names.end());
  }
  persisted.insert(keep);
  ExpectConverged(persisted, {{1, m1.transient}, {2, m2.transient}, {3, m3.transient}}, names);

  // Payloads still come from their owners, the restarted one included.
  const auto& [id2, bytes2] = *m2.blobs.rbegin();
  const auto& [id2old, bytes2old] = *m2.blobs.begin();
  const auto& [id3, bytes3] = *m3.blobs.begin();
  EXPECT_TRUE(ReadFileOr(node(1).ObjPath(id2, "data")) == bytes2) << id2;
  EXPECT_TRUE(ReadFileOr(node(3).ObjPath(id2old, "data")) == bytes2old) << id2old;
  EXPECT_TRUE(ReadFileOr(node(2).ObjPath(id3, "data")) == bytes3) << id3;
  EXPECT_GE(Counter(1, "snapshots_taken"), 1u);
}

TEST_F(ClusterFault, StoppedNodeIsMarkedDownThenCatchesUp) {
  Made m1;
  node(3).Pause();
  // Create on node 1 for at least 2 s while node 3 is stopped, until node 1 has marked
  // it down (5 heartbeats of 50 ms). Node 3's mount is not touched meanwhile.
  auto t0 = std::chrono::steady_clock::now();
  bool down_on_1 = false;
  int k = 0;
  while ((SecondsSince(t0) < 2.0 || !down_on_1) && SecondsSince(t0) < 10.0) {
    if (k < 300) {
      Populate(node(1), "s" + std::to_string(k) + "_", 1, &m1);
      ++k;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!down_on_1) down_on_1 = node(1).InstanceStatus(3) == "down";
  }
  EXPECT_TRUE(down_on_1) << node(1).ReadInstance(3).dump();
  EXPECT_TRUE(PollUntil([&] { return node(2).InstanceStatus(3) == "down"; }))
      << node(2).ReadInstance(3).dump();
  EXPECT_EQ(node(1).InstanceStatus(2), "up") << "only the stopped node is down";

  node(3).Resume();
  EXPECT_TRUE(PollUntil([&] { return node(1).InstanceStatus(3) == "up"; }))
      << node(1).ReadInstance(3).dump();
  ASSERT_TRUE(WaitAllUp());
  // Every name Populate made is on a persisted object of node 1.
  ExpectConverged(m1.persisted, {{1, m1.transient}}, m1.names);
  // And it keeps up afterwards.
  const std::string after = node(1).WritePersisted("after", "after the pause");
  ASSERT_TRUE(IsBlobId(after));
  EXPECT_TRUE(WaitListed(3, after));
}

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
