// Cluster fault tests (DESIGN.md §7): a node killed (-9) in the middle of a stream of
// creates and restarted on its state, and a node stopped (SIGSTOP) for seconds. Hostile
// messages are in cluster_hostile_test.cc, CurveZMQ in cluster_curve_test.cc.
#include "cluster_fault_fixture.h"

namespace vyit {
namespace {

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

}  // namespace
}  // namespace vyit
