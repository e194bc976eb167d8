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

}  // namespace
}  // namespace vyit
