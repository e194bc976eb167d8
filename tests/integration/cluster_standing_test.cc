// The standing questions of issue 14 on real daemons, real RocksDB and real loopback
// ZeroMQ: (a) a dropped cluster-wide name does not come back after restarts; (b) a
// node killed (-9) while it applies a stream of remote changes restarts into a
// consistent prefix of them and converges; (c) a client of the ROUTER that asks and
// never reads cannot make the node queue without limit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "cluster_fixture.h"
#include "meta/wire.h"

namespace vyit {
namespace {

using nlohmann::json;

class ClusterStanding : public ClusterTest {};

// Node 1 writes a name; node 1 is down when node 2 drops it; nodes 2 and 3 restart
// (before tombstones were journaled they forgot the drop); node 1 comes back holding
// the old put in its RocksDB and offers it in its snapshot. The drop must win.
TEST_F(ClusterStanding, ADroppedNameStaysDroppedAfterEveryNodeThatSawTheDropRestarts) {
  const std::string a = node(1).WritePersisted("a", "payload a");
  ASSERT_TRUE(IsBlobId(a));
  ASSERT_EQ(symlink(("../objects/" + a).c_str(), node(1).Path("names/n").c_str()), 0)
      << strerror(errno);
  for (int i : {2, 3}) ASSERT_TRUE(WaitName(i, "n", a)) << "node " << i;

  node(1).Stop();
  ASSERT_EQ(unlink(node(2).Path("names/n").c_str()), 0) << strerror(errno);
  ASSERT_TRUE(WaitName(3, "n", ""));
  for (int i : {2, 3}) {
    node(i).Crash();  // kill -9: nothing but RocksDB keeps the drop
    ASSERT_TRUE(node(i).Start());
  }
  ASSERT_TRUE(node(1).Start());
  ASSERT_TRUE(WaitAllUp());
  // Every node has taken every other's snapshot: node 1's stale put has been offered.
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(PollUntil(
        [&] {
          for (int j = 1; j <= 3; ++j) {
            if (j != i && node(i).ReadInstance(j).value("snapshots", 0) < 1) return false;
          }
          return true;
        },
        10000))
        << "node " << i << ": " << node(i).ReadStatus().dump();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(node(i).Names().empty()) << "node " << i << " has names/n back";
  }
  // The name can still be put again, and that put wins everywhere.
  ASSERT_EQ(symlink(("../objects/" + a).c_str(), node(1).Path("names/n").c_str()), 0)
      << strerror(errno);
  for (int i : {2, 3}) EXPECT_TRUE(WaitName(i, "n", a)) << "node " << i;
}

// Node 1 streams creates (a blob persisted with the container holding it), names and
// deletes; node 2 is killed (-9) at arbitrary moments while it applies them, and
// restarted. Remote changes reach memory under the table's exclusive lock and the
// journal commit happens under the same lock, so a crash leaves RocksDB holding a
// prefix of the applied batches: restarted with node 1 down, node 2 must show a
// consistent state (no container without its member, no name without its object),
// and once node 1 is back, exactly node 1's state.
TEST_F(ClusterStanding, ANodeKilledWhileApplyingRemoteChangesRestartsConsistent) {
  std::atomic<bool> stop{false};
  std::atomic<int> made{0};
  std::thread writer([&] {
    std::vector<std::string> containers;
    for (int i = 0; !stop; ++i) {
      std::string b, c;
      if (int e = node(1).TryWriteNew("b" + std::to_string(i), "bytes " + std::to_string(i), &b)) {
        std::fprintf(stderr, "blob %d: %s\n", i, strerror(e));
        continue;
      }
      if (int e = node(1).TryWriteNew("c" + std::to_string(i) + ".meta.json",
                              R"({"typename":"t","transient":false,"m":{"id":")" + b + "\"}}",
                              &c)) {
        std::fprintf(stderr, "container %d of %s: %s\n", i, b.c_str(), strerror(e));
        continue;
      }
      containers.push_back(c);
      if (i % 2 == 0) {
        (void)!symlink(("../objects/" + c).c_str(),
                       node(1).Path("names/n" + std::to_string(i)).c_str());
      }
      if (i % 3 == 0 && containers.size() > 4) {  // a delete takes the member with it
        (void)!rmdir(node(1).ObjPath(containers[containers.size() - 4]).c_str());
      }
      ++made;
    }
  });
  unsigned seed = 14;
  for (int round = 0; round < 4; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rand_r(&seed) % 300));
    node(2).Crash();
    if (round == 3) break;
    ASSERT_TRUE(node(2).Start()) << "round " << round;
  }
  stop = true;
  writer.join();
  EXPECT_GT(made.load(), 20) << "the stream was too short to mean anything";
  node(1).Stop();

  // Node 2 from its own RocksDB only.
  ASSERT_TRUE(node(2).Start());
  const View alone = TakeView(2);
  size_t remote = 0;
  for (auto& [id, meta] : alone.metas) {
    json m = json::parse(meta, nullptr, false);
    ASSERT_TRUE(m.is_object()) << id;
    if (m["instance_id"] != 1) continue;
    ++remote;
    if (m.contains("m")) {
      EXPECT_FALSE(m["m"].contains("error")) << id << " lost its member: " << meta;
    }
  }
  for (auto& [name, id] : alone.names) {
    EXPECT_TRUE(alone.metas.count(id)) << "names/" << name << " -> missing " << id;
  }
  EXPECT_GT(remote, 0u) << "node 2 journaled nothing of node 1";
  std::printf(
      "node 1 made %d containers; node 2, killed 4 times, restarted alone with %zu of "
      "node 1's objects and %zu names, all consistent\n",
      made.load(), remote, alone.names.size());

  // With node 1 back, node 2 shows exactly what node 1 has.
  ASSERT_TRUE(node(1).Start());
  ASSERT_TRUE(WaitAllUp());
  const View origin = TakeView(1);
  EXPECT_TRUE(PollUntil([&] { return TakeView(2).metas == origin.metas; }, 10000));
  const View after = TakeView(2);
  EXPECT_EQ(after.metas.size(), origin.metas.size());
  EXPECT_EQ(after.names, origin.names);
  for (auto& [id, meta] : origin.metas) {
    auto it = after.metas.find(id);
    if (it == after.metas.end()) {
      ADD_FAILURE() << "node 2 lacks " << id << ": " << meta;
    } else if (it->second != meta) {
      ADD_FAILURE() << "node 2 shows " << id << " as " << it->second << ", node 1 as " << meta;
    }
  }
  for (auto& [id, meta] : after.metas) {
    if (!origin.metas.count(id)) ADD_FAILURE() << "node 2 has " << id << " beyond node 1: " << meta;
  }
}

uint64_t RssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) << 10;
  }
  return 0;
}

// A client of node 1's ROUTER that asks for snapshots and fetches and never reads
// the replies (its receive queue holds one message, so TCP pushes back at once).
TEST_F(ClusterStanding, AClientThatNeverReadsCannotMakeANodeQueueWithoutLimit) {
  constexpr size_t kField = 2u << 20;  // each snapshot carries one 2 MiB record
  constexpr int kRequests = 150;       // unbounded, that would be ~300 MiB queued
  const std::string big = node(1).WriteMeta(
      "big", R"({"typename":"t","transient":false,"pad":")" + std::string(kField, 'x') + "\"}");
  ASSERT_TRUE(IsObjectId(big));
  const std::string blob = node(1).WritePersisted("blob", RandomBytes(4u << 20, 3));
  ASSERT_TRUE(IsBlobId(blob));
  ASSERT_TRUE(WaitListed(2, big));
  const uint64_t rss0 = RssBytes(node(1).pid());

  zmq::context_t ctx;
  zmq::socket_t rogue(ctx, zmq::socket_type::dealer);
  rogue.set(zmq::sockopt::linger, 0);
  rogue.set(zmq::sockopt::rcvhwm, 1);
  rogue.set(zmq::sockopt::rcvbuf, 4096);
  rogue.connect("tcp://127.0.0.1:" + std::to_string(node(1).port() + 1));
  auto send = [&](vineyard::wire::Kind kind, const vineyard::wire::Body& body) {
    auto frames = vineyard::wire::Encode(kind, body);
    for (size_t i = 0; i < frames.size(); ++i) {
      ASSERT_TRUE(rogue.send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                                         ? zmq::send_flags::sndmore
                                                         : zmq::send_flags::none));
    }
  };
  vineyard::ObjectID blob_id(std::stoull(blob.substr(1), nullptr, 16));
  for (int i = 0; i < kRequests; ++i) {
    send(vineyard::wire::Kind::kSnapshotRequest, vineyard::wire::SnapshotRequest{1, 99});
    send(vineyard::wire::Kind::kFetchRequest,
         vineyard::wire::FetchRequest{blob_id, 0, vineyard::wire::kMaxChunk});
  }
  // Give the node time to take the requests: until it refuses some (its queue is full), up
  // to 60 s on a busy machine, and 2 s more for the rest.
  for (int i = 0; i < 600; ++i) {
    if (node(1).ReadStatus()["cluster"].value("router_refused", 0) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const uint64_t rss1 = RssBytes(node(1).pid());
  const double grown_mib = (static_cast<double>(rss1) - static_cast<double>(rss0)) / (1 << 20);
  RecordProperty("rss_growth_mib", std::to_string(grown_mib));
  std::printf("node 1 RSS grew by %.1f MiB for %d unread snapshot+fetch requests\n", grown_mib,
              kRequests);
  EXPECT_LT(grown_mib, 160.0) << "the node queued replies without limit";
  json st = node(1).ReadStatus();
  EXPECT_GT(st["cluster"].value("router_refused", 0), 0u) << st.dump();

  // The node keeps serving its peers meanwhile.
  const std::string later = node(1).WritePersisted("later", "later");
  EXPECT_TRUE(WaitListed(2, later));

  // What the client gets when it reads at last: whole replies, then Error frames
  // saying why the rest was refused.
  int ends = 0, errors = 0;
  std::string reason;
  for (;;) {
    zmq::pollitem_t item{rogue.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(2000)) == 0) break;
    std::vector<std::string> frames;
    for (;;) {
      zmq::message_t m;
      ASSERT_TRUE(rogue.recv(m, zmq::recv_flags::none));
      frames.push_back(m.to_string());
      if (!m.more()) break;
    }
    auto msg = vineyard::wire::Decode(frames);
    if (!msg.ok()) continue;  // a fetch reply (its bytes are not decoded here)
    if (msg->kind == vineyard::wire::Kind::kSnapshotEnd) ++ends;
    if (msg->kind == vineyard::wire::Kind::kError) {
      ++errors;
      reason = std::get<vineyard::wire::ErrorReply>(msg->body).reason;
    }
  }
  EXPECT_GT(ends, 0);
  EXPECT_GT(errors, 0);
  EXPECT_NE(reason.find("queued"), std::string::npos) << reason;
}

}  // namespace
}  // namespace vyit
