// ClusterTest: a gtest fixture that runs N (default 3) real vineyardfs daemons as a
// cluster on 127.0.0.1 (DESIGN.md §7).
//
// Each test gets /tmp/vyit.XXXXXX/n<i>/{mnt,arena,state} per node and a block of
// free TCP ports: node i listens on port(i) (PUB) and port(i) + 1 (ROUTER), and lists
// every other node as peer=. Spare ports after the nodes' (SparePort(k)) are for the
// test's own sockets (rogue peers, extra daemons). Every daemon runs with
// heartbeat_ms=50 (a peer is down after 250 ms of silence) and durability=none.
//
// Each daemon is a child of the test process (-f, PR_SET_PDEATHSIG), so the fixture
// owns its pid and signals no other process. Its stderr goes to n<i>/daemon.log; all
// logs are printed when the test failed.
//
// TearDown() always cleans up, also after a failed assertion: SIGCONT to paused
// daemons, lazy unmount of every mount, wait for every daemon (SIGKILL after 10 s),
// lazy unmount of the arena tmpfs each daemon mounted as root, then removal of the
// temp dir (skipped if anything is still mounted under it).
//
// Helpers that can fail report through ADD_FAILURE() and return an empty value.
#ifndef VINEYARDFS_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_
#define VINEYARDFS_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "mount_fixture.h"

namespace vyit {

// File helpers for any node's mount (MountTest's are members bound to its one mount;
// RunCommand, PollUntil, IsMounted and RandomBytes come from mount_fixture.h).

// Reads a whole file; on failure *err gets the errno of the failing open()/read()
// (0 on success) and "" is returned. Without `err` a failure is an ADD_FAILURE().
std::string ReadFileOr(const std::string& path, int* err = nullptr);
// getxattr as a string; *err as above.
std::string GetXattr(const std::string& path, const std::string& key, int* err = nullptr);
// readlink(), "" if not a link.
std::string ReadLinkOf(const std::string& path);
// True if every port of [first, first + count) can be bound on 127.0.0.1 right now.
bool PortsFree(int first, int count);

// One daemon of a cluster. Not copyable: it owns a child process.
class Node {
 public:
  Node(int index, const std::string& dir, int port);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();  // Cleanup()

  // What Start() passes; a test may change them before (re)starting the node.
  int instance;                    // instance= (default: the node's index)
  std::vector<std::string> peers;  // peer= values
  std::string options;             // further "k=v,k=v" options of every Start()

  // Starts the daemon (our child) with instance=, arena=, state=, size=256M,
  // listen=port(), peer= for each of `peers`, heartbeat_ms=50, durability=none, then
  // `options`, then `extra` (later options override earlier ones). Returns once
  // status.json exists (10 s limit); false (with the log in the failure) otherwise.
  bool Start(const std::string& extra = "");
  // kill -9, reap, lazy unmount of the dead mount. State and arena stay.
  void Crash();
  // Lazy unmount and wait for the daemon to exit (SIGKILL after 10 s).
  void Stop();
  // SIGSTOP / SIGCONT of this node's daemon (our own child) only. While paused, the
  // test must not touch this node's mount: the request would block until Resume().
  void Pause();
  void Resume();
  // Resume(), Stop(), lazy unmount of the arena tmpfs: the node leaves nothing behind.
  void Cleanup();

  bool running() const { return pid_ > 0; }
  bool paused() const { return paused_; }
  pid_t pid() const { return pid_; }
  int index() const { return index_; }
  int port() const { return port_; }
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  const std::string& mnt() const { return mnt_; }
  const std::string& arena() const { return arena_; }
  const std::string& state() const { return state_; }
  const std::string& log_path() const { return log_; }
  std::string LogText() const;

  // Paths in the mount.
  std::string Path(const std::string& rel) const { return mnt_ + "/" + rel; }
  std::string ObjPath(const std::string& id, const std::string& file = "") const {
    return file.empty() ? Path("objects/" + id) : Path("objects/" + id + "/" + file);
  }

  // Writes `bytes` to new/<name> and closes; returns the errno of the first failing
  // step (0 on success) and the new id in *id.
  int TryWriteNew(const std::string& name, const std::string& bytes, std::string* id = nullptr);
  // The same, with ADD_FAILURE() on error; returns the id ("" on failure).
  std::string WriteNew(const std::string& name, const std::string& bytes);
  std::string WriteMeta(const std::string& name, const std::string& json) {
    return WriteNew(name + ".meta.json", json);
  }
  // setxattr(objects/<id>, user.vineyard.persist, 1); false (and ADD_FAILURE) on error.
  bool Persist(const std::string& id);
  // WriteNew + Persist.
  std::string WritePersisted(const std::string& name, const std::string& bytes);
  // getxattr(objects/<id>, user.vineyard.<key>); "" with *err set on failure.
  std::string Xattr(const std::string& id, const std::string& key, int* err = nullptr);

  nlohmann::json ReadStatus();
  // instances/<n>.json, a discarded json if it does not exist or does not parse.
  nlohmann::json ReadInstance(int n);
  // instances/<n>.json's "status", "" if absent.
  std::string InstanceStatus(int n);
  std::vector<std::string> ListObjects() const { return ListDirectory(Path("objects")); }
  std::vector<std::string> ListNames() const { return ListDirectory(Path("names")); }
  // The id names/<name> points at ("" if none).
  std::string NameTarget(const std::string& name) const;
  // objects/<id>/meta.json as bytes ("" with *err set if unreadable).
  std::string Meta(const std::string& id, int* err = nullptr);
  // name -> target id for every entry of names/.
  std::map<std::string, std::string> Names() const;

 private:
  bool Exited(int timeout_ms);

  const int index_;
  const int port_;
  std::string dir_, mnt_, arena_, state_, log_;
  pid_t pid_ = -1;
  bool paused_ = false;
};

class ClusterTest : public ::testing::Test {
 protected:
  // Nodes of the cluster (node i lists the others as peers).
  virtual int NodeCount() const { return 3; }
  // Ports reserved after the nodes' for the test's own use (SparePort(0..n-1)).
  virtual int SparePorts() const { return 4; }
  // Extra options of node i (1-based), set as Node::options before SetUp starts it.
  virtual std::string NodeOptions(int /*i*/) const { return ""; }
  // Whether SetUp() starts node i; the test starts the others itself.
  virtual bool StartInSetUp(int /*i*/) const { return true; }

  // Makes the dirs, reserves ports, starts the nodes of StartInSetUp() and waits
  // until each of them sees the others up.
  void SetUp() override;
  void TearDown() override;

  Node& node(int i) { return *nodes_.at(static_cast<size_t>(i - 1)); }
  int size() const { return static_cast<int>(nodes_.size()); }
  const std::string& tmp() const { return tmp_; }
  // A reserved port (k < SparePorts()) and port + 1 are free for the test.
  int SparePort(int k) const { return base_port_ + 2 * (NodeCount() + k); }

  // An extra daemon of the test (not one of the cluster's nodes, not started), with
  // its own dirs and `port`; the fixture cleans it up like the others.
  Node& AddNode(const std::string& name, int port);

  // Polls until node `i` sees each of `instances` (default: every other running
  // node) as "up" in instances/<n>.json. ADD_FAILURE (with status.json) on timeout.
  bool WaitUp(int i, std::vector<int> instances = {}, int timeout_ms = 10000);
  // WaitUp for every running, unpaused node.
  bool WaitAllUp(int timeout_ms = 10000);

  // Polls until `id` is listed in objects/ of node i (true) or the timeout passed.
  bool WaitListed(int i, const std::string& id, int timeout_ms = 5000);
  bool WaitGone(int i, const std::string& id, int timeout_ms = 5000);
  // Polls until names/<name> on node i points at `id` ("" = until it does not exist).
  bool WaitName(int i, const std::string& name, const std::string& id, int timeout_ms = 5000);

  // Polls until status.json of node i has cluster.<counter> > `than`; returns the last value.
  uint64_t WaitCounterAbove(int i, const std::string& counter, uint64_t than,
                            int timeout_ms = 5000);
  uint64_t Counter(int i, const std::string& counter);

  // What a node shows of the cluster: objects with their meta.json, and names.
  struct View {
    std::map<std::string, std::string> metas;  // id -> meta.json
    std::map<std::string, std::string> names;  // name -> id
  };
  View TakeView(int i);

  // Runs `vyctl keygen` for every node (and `extra` names, for AddNode daemons or
  // test clients), writing <tmp>/keys/<name>.{key,pub} and copying each .pub into
  // <tmp>/curve_peers/. Node i's key is named "n<i>" and carries its endpoint.
  // Returns false (ADD_FAILURE) on error.
  bool MakeCurveKeys(const std::map<std::string, int>& extra = {});
  std::string KeyPath(const std::string& name) const { return tmp_ + "/keys/" + name; }
  std::string CurvePeersDir() const { return tmp_ + "/curve_peers"; }
  // The options enabling CURVE for key `name`.
  std::string CurveOptions(const std::string& name) const {
    return "curve_secret=" + KeyPath(name) + ".key,curve_peers=" + CurvePeersDir();
  }
  // The Z85 public key in <tmp>/keys/<name>.pub and the secret one in .key.
  std::string PublicKey(const std::string& name);
  std::string SecretKey(const std::string& name);

 private:
  std::string tmp_;
  int base_port_ = 0;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Node>> extra_nodes_;
};

}  // namespace vyit

#endif  // VINEYARDFS_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_
