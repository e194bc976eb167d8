// meta/wire.{h,cc}: every message kind round-trips, every malformed field is refused
// with a precise reason, random frames never crash the decoder, and encoded messages
// cross real ZeroMQ sockets on loopback (PUB/SUB and ROUTER/DEALER) intact.
#include "meta/wire.h"

#include <gtest/gtest.h>

#include <random>
#include <zmq.hpp>

namespace vineyard::wire {
namespace {

ObjectID Obj(InstanceId instance, uint64_t counter) {
  return ObjectID::Make(false, instance, counter);
}
ObjectID Blob(InstanceId instance, uint64_t counter) {
  return ObjectID::Make(true, instance, counter);
}

Change Put(InstanceId origin, uint64_t seq, ObjectID id) {
  Change c;
  c.origin = origin;
  c.seq = seq;
  c.op = Op::kObjectPut;
  c.id = id;
  c.record = R"({"id": ")" + id.ToString() + R"(", "typename": "vineyard::Pair"})";
  return c;
}

Change NamePut(InstanceId origin, uint64_t seq, const std::string& name, ObjectID target) {
  Change c;
  c.origin = origin;
  c.seq = seq;
  c.op = Op::kNamePut;
  c.name = name;
  c.id = target;
  c.timestamp = 1700000000123456789ull;
  c.writer = origin;
  return c;
}

// The reason Decode gives for `frames`, or "" if it accepts them.
std::string Refusal(const Frames& frames) {
  auto m = Decode(frames);
  return m.ok() ? "" : m.status().message();
}

TEST(Wire, ChangesRoundTripAsUpdatesAndSnapshotRecords) {
  for (Kind kind : {Kind::kUpdate, Kind::kSnapshotRecord}) {
    Change put = Put(3, 42, Obj(3, 7));
    auto m = Decode(Encode(kind, put));
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->kind, kind);
    const Change& c = std::get<Change>(m->body);
    EXPECT_EQ(c.origin, 3u);
    EXPECT_EQ(c.seq, 42u);
    EXPECT_EQ(c.op, Op::kObjectPut);
    EXPECT_EQ(c.id, Obj(3, 7));
    EXPECT_EQ(c.record, put.record);
  }
  Change del = Put(32767, ~0ull, Blob(32767, 1));
  del.op = Op::kObjectDelete;
  del.record.clear();
  auto m = Decode(Encode(Kind::kUpdate, del));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(std::get<Change>(m->body).id, Blob(32767, 1));
  EXPECT_EQ(std::get<Change>(m->body).seq, ~0ull);

  Change name = NamePut(2, 5, "my-pair ünï", Obj(1, 9));  // names may point anywhere
  m = Decode(Encode(Kind::kUpdate, name));
  ASSERT_TRUE(m.ok()) << m.status().message();
  const Change& n = std::get<Change>(m->body);
  EXPECT_EQ(n.name, "my-pair ünï");
  EXPECT_EQ(n.id, Obj(1, 9));
  EXPECT_EQ(n.timestamp, 1700000000123456789ull);
  EXPECT_EQ(n.writer, 2u);
  name.op = Op::kNameDrop;
  m = Decode(Encode(Kind::kUpdate, name));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(std::get<Change>(m->body).op, Op::kNameDrop);
}

TEST(Wire, ControlMessagesRoundTrip) {
  auto h = Decode(Encode(Kind::kHeartbeat, Heartbeat{7, 99, 123}));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(std::get<Heartbeat>(h->body).last_seq, 99u);
  auto s = Decode(Encode(Kind::kSnapshotRequest, SnapshotRequest{7, 8}));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(std::get<SnapshotRequest>(s->body).requester, 8u);
  auto e = Decode(Encode(Kind::kSnapshotEnd, SnapshotEnd{7, 100, 100000}));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(std::get<SnapshotEnd>(e->body).count, 100000u);
  auto q = Decode(Encode(Kind::kFetchRequest, FetchRequest{Blob(7, 1), 1ull << 32, kMaxChunk}));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(std::get<FetchRequest>(q->body).offset, 1ull << 32);
  auto d = Decode(Encode(Kind::kFetchReply, FetchReply{Blob(7, 1), 10, 13, "abc"}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(std::get<FetchReply>(d->body).bytes, "abc");
  auto x = Decode(
      Encode(Kind::kError, ErrorReply{Status::Code::kNotFound, "o8007000000000001: no such blob"}));
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(std::get<ErrorReply>(x->body).code, Status::Code::kNotFound);
}

TEST(Wire, MalformedHeadersAndFrameCountsAreRefused) {
  Frames good = Encode(Kind::kUpdate, Put(1, 1, Obj(1, 1)));
  EXPECT_EQ(Refusal(good), "");
  EXPECT_EQ(Refusal({}), "message: no frames");
  Frames f = good;
  f[0] = "VX\x01U";
  EXPECT_EQ(Refusal(f), "message: frame 0 is not a vineyardfs header");
  f[0] = std::string("VY\x02U", 4);
  EXPECT_EQ(Refusal(f), "message: wire version 2, this node speaks 1");
  f[0] = std::string("VY\x01?", 4);
  EXPECT_EQ(Refusal(f), "message: unknown kind 63");
  f = good;
  f.push_back("extra");
  EXPECT_EQ(Refusal(f), "update: 6 frames, not 5");
  f = good;
  f.pop_back();
  EXPECT_EQ(Refusal(f), "update: 4 frames, not 5");
}

TEST(Wire, MalformedChangesAreRefusedWithTheReason) {
  auto with = [](Change c, int frame, std::string bytes) {
    Frames f = Encode(Kind::kUpdate, c);
    f[frame] = std::move(bytes);
    return Refusal(f);
  };
  Change put = Put(1, 1, Obj(1, 1));
  Change bad = put;
  bad.origin = 0;
  EXPECT_NE(Refusal(Encode(Kind::kUpdate, bad)).find("origin 0 is not an instance id"),
            std::string::npos);
  bad = put;
  bad.seq = 0;
  EXPECT_EQ(Refusal(Encode(Kind::kUpdate, bad)), "update: sequence number 0 (they start at 1)");
  EXPECT_EQ(with(put, 1, "short"), "update: frame 1 has 5 bytes, not 10");
  EXPECT_EQ(with(put, 2, "\x09"), "update: frame 2: unknown op 9");
  EXPECT_EQ(with(put, 2, ""), "update: frame 2 has 0 bytes, not 1");
  // A node speaks only for its own objects.
  EXPECT_EQ(Refusal(Encode(Kind::kUpdate, Put(2, 1, Obj(1, 1)))),
            "update: frame 3: o0001000000000001 was created by instance 1, not by the origin 2");
  EXPECT_EQ(with(put, 3, std::string(8, '\0')), "update: frame 3: object id 0");
  EXPECT_EQ(with(put, 4, "{not json"), "update: frame 4: the record is not a JSON object");
  EXPECT_EQ(with(put, 4, "[1, 2]"), "update: frame 4: the record is not a JSON object");
  EXPECT_EQ(with(put, 4, R"({"id": "o0001000000000002"})"),
            "update: frame 4: the record's \"id\" is not o0001000000000001");
  EXPECT_EQ(with(put, 4, std::string(kMaxRecord + 1, ' ')),
            "update: frame 4: a record has 2.." + std::to_string(kMaxRecord) + " bytes");
  Change del = put;
  del.op = Op::kObjectDelete;
  EXPECT_EQ(with(del, 4, "x"), "update: frame 4 has 1 bytes, not 0");

  Change name = NamePut(1, 1, "n", Obj(1, 1));
  for (const std::string& n : {std::string(), std::string(256, 'a')}) {
    EXPECT_NE(with(name, 3, n).find("a name has 1..255 bytes"), std::string::npos);
  }
  for (const std::string& n : {std::string("a/b"), std::string(".."), std::string("a\0b", 3)}) {
    EXPECT_EQ(with(name, 3, n), "update: frame 3: the name contains '/' or NUL, or is '.' or '..'");
  }
  for (const std::string& n : {std::string("\xff"), std::string("\xc3"), std::string("\xc0\xaf"),
                               std::string("\xed\xa0\x80")}) {
    EXPECT_EQ(with(name, 3, n), "update: frame 3: the name is not UTF-8") << n;
  }
  EXPECT_EQ(with(name, 4, std::string(10, '\1')), "update: frame 4 has 10 bytes, not 18");
  Frames f = Encode(Kind::kUpdate, name);
  f[4].replace(16, 2, std::string("\0\0", 2));
  EXPECT_NE(Refusal(f).find("writer 0 is not an instance id"), std::string::npos);
  f = Encode(Kind::kUpdate, name);
  f[4].replace(0, 8, std::string(8, '\0'));
  EXPECT_EQ(Refusal(f), "update: frame 4: the name's target is object id 0");
}

TEST(Wire, MalformedRequestsAndRepliesAreRefused) {
  EXPECT_EQ(Refusal(Encode(Kind::kFetchRequest, FetchRequest{Obj(1, 1), 0, 10})),
            "fetch request: o0001000000000001 is not a blob id");
  EXPECT_EQ(Refusal(Encode(Kind::kFetchRequest, FetchRequest{Blob(1, 1), 0, 0})),
            "fetch request: length 0 is not in 1..4194304");
  EXPECT_EQ(Refusal(Encode(Kind::kFetchRequest, FetchRequest{Blob(1, 1), 0, kMaxChunk + 1})),
            "fetch request: length 4194305 is not in 1..4194304");
  EXPECT_NE(Refusal(Encode(Kind::kFetchReply, FetchReply{Blob(1, 1), 12, 13, "ab"}))
                .find("overrun a blob of 13"),
            std::string::npos);
  EXPECT_NE(Refusal(Encode(Kind::kFetchReply, FetchReply{Blob(1, 1), 20, 13, ""})).find("overrun"),
            std::string::npos);
  EXPECT_EQ(Refusal(Encode(Kind::kError, ErrorReply{Status::Code::kOk, "x"})),
            "error: status code 0 is out of range (1..13)");
  EXPECT_NE(Refusal(Encode(Kind::kError, ErrorReply{Status::Code::kNoSpace, "two\nlines"}))
                .find("one line"),
            std::string::npos);
  EXPECT_NE(Refusal(Encode(Kind::kSnapshotRequest, SnapshotRequest{1, 40000})).find("requester"),
            std::string::npos);
  EXPECT_NE(Refusal(Encode(Kind::kHeartbeat, Heartbeat{0, 1, 1})).find("origin 0"),
            std::string::npos);
  Frames f = Encode(Kind::kSnapshotEnd, SnapshotEnd{1, 1, 1});
  f[1].pop_back();
  EXPECT_EQ(Refusal(f), "snapshot end: frame 1 has 17 bytes, not 18");
}

TEST(Wire, RandomFramesNeverCrashTheDecoder) {
  std::mt19937_64 rng(7);
  const char kinds[] = "URHSEFDX?";
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    Frames f(rng() % 7);
    for (size_t j = 0; j < f.size(); ++j) {
      size_t n = rng() % 32;
      for (size_t k = 0; k < n; ++k) f[j].push_back(static_cast<char>(rng()));
    }
    if (!f.empty() && rng() % 2) f[0] = std::string("VY\x01", 3) + kinds[rng() % 9];
    accepted += Decode(f).ok();
  }
  // Mutating single bytes of valid messages: still no crash, and no mutation of a
  // length-checked frame sneaks through with a wrong size.
  Frames valid = Encode(Kind::kUpdate, NamePut(3, 9, "name", Obj(3, 4)));
  for (int i = 0; i < 20000; ++i) {
    Frames f = valid;
    std::string& frame = f[rng() % f.size()];
    if (frame.empty()) continue;
    frame[rng() % frame.size()] = static_cast<char>(rng());
    auto m = Decode(f);
    if (m.ok()) {
      EXPECT_EQ(std::get<Change>(m->body).name.size(), 4u);
    }
  }
  SUCCEED() << accepted << " random messages happened to be valid";
}

// Sends `frames` as one multipart message.
void Send(zmq::socket_t& s, const Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    s.send(zmq::buffer(frames[i]),
           i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

Frames Receive(zmq::socket_t& s) {
  Frames frames;
  zmq::message_t part;
  do {
    if (!s.recv(part)) break;
    frames.push_back(part.to_string());
  } while (part.more());
  return frames;
}

TEST(Wire, MessagesCrossRealZeroMqSocketsOnLoopback) {
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::pub), sub(ctx, zmq::socket_type::sub);
  pub.bind("tcp://127.0.0.1:*");
  const std::string endpoint = pub.get(zmq::sockopt::last_endpoint);
  sub.set(zmq::sockopt::subscribe, "VY");
  sub.set(zmq::sockopt::rcvtimeo, 5000);
  sub.connect(endpoint);
  // A SUB joins asynchronously: publish heartbeats until one arrives.
  Frames hb = Encode(Kind::kHeartbeat, Heartbeat{1, 0, 1});
  zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
  for (int i = 0; i < 500 && !(item.revents & ZMQ_POLLIN); ++i) {
    Send(pub, hb);
    zmq::poll(&item, 1, std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(item.revents & ZMQ_POLLIN);
  while (true) {  // drain the heartbeats
    Frames f = Receive(sub);
    ASSERT_TRUE(Decode(f).ok());
    if (!sub.get(zmq::sockopt::events) || !(sub.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
  }
  Change big = Put(1, 2, Obj(1, 2));
  big.record = R"({"id": "o0001000000000002", "blob": ")" + std::string(1 << 20, 'x') + "\"}";
  Send(pub, Frames{"VY garbage"});  // refused by the receiver, which goes on
  Send(pub, Encode(Kind::kUpdate, big));
  auto garbage = Decode(Receive(sub));
  EXPECT_FALSE(garbage.ok());
  auto m = Decode(Receive(sub));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(std::get<Change>(m->body).record, big.record);

  // ROUTER/DEALER: the router strips the routing envelope before Decode.
  zmq::socket_t router(ctx, zmq::socket_type::router), dealer(ctx, zmq::socket_type::dealer);
  router.bind("tcp://127.0.0.1:*");
  router.set(zmq::sockopt::rcvtimeo, 5000);
  dealer.set(zmq::sockopt::rcvtimeo, 5000);
  dealer.connect(router.get(zmq::sockopt::last_endpoint));
  Send(dealer, Encode(Kind::kFetchRequest, FetchRequest{Blob(1, 5), 0, 3}));
  Frames req = Receive(router);
  ASSERT_GE(req.size(), 2u);
  const std::string identity = req[0];
  auto q = Decode(Frames(req.begin() + 1, req.end()));
  ASSERT_TRUE(q.ok()) << q.status().message();
  Frames reply = Encode(Kind::kFetchReply, FetchReply{Blob(1, 5), 0, 3, "abc"});
  reply.insert(reply.begin(), identity);
  Send(router, reply);
  auto d = Decode(Receive(dealer));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(std::get<FetchReply>(d->body).bytes, "abc");
}

}  // namespace
}  // namespace vineyard::wire
