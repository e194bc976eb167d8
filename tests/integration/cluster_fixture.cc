// ClusterTest, the fixture of the cluster tests (declared in cluster_fixture.h); the
// free helpers and Node are in cluster_node.cc.
#include "cluster_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace vyit {

using nlohmann::json;

// ---- ClusterTest ----------------------------------------------------------------

void ClusterTest::SetUp() {
  char tmpl[] = "/tmp/vyit.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr) << strerror(errno);
  tmp_ = tmpl;
  ASSERT_EQ(chmod(tmp_.c_str(), 0755), 0);

  // Ports: a random block below the kernel's ephemeral range (32768+), so that an
  // outgoing connection cannot take one of them between our check and the daemon's
  // bind; tests run in parallel (ctest -j), hence random and checked.
  const int block = 2 * (NodeCount() + SparePorts());
  std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  for (int attempt = 0; attempt < 200 && base_port_ == 0; ++attempt) {
    int base = 20000 + static_cast<int>(rng() % static_cast<unsigned>(32000 - 20000 - block));
    if (PortsFree(base, block)) base_port_ = base;
  }
  ASSERT_NE(base_port_, 0) << "no block of " << block << " free ports found";

  for (int i = 1; i <= NodeCount(); ++i) {
    nodes_.push_back(
        std::make_unique<Node>(i, tmp_ + "/n" + std::to_string(i), base_port_ + 2 * (i - 1)));
  }
  for (int i = 1; i <= NodeCount(); ++i) {
    for (int j = 1; j <= NodeCount(); ++j) {
      if (j != i) node(i).peers.push_back(std::to_string(node(j).port()));
    }
    node(i).options = NodeOptions(i);
  }
  for (int i = 1; i <= NodeCount(); ++i) {
    if (StartInSetUp(i)) {
      ASSERT_TRUE(node(i).Start());
    }
  }
  ASSERT_TRUE(WaitAllUp());
}

void ClusterTest::TearDown() {
  if (tmp_.empty()) return;
  if (HasFailure()) {
    for (auto* list : {&nodes_, &extra_nodes_}) {
      for (auto& n : *list) {
        std::cerr << "---- daemon log of node " << n->index() << " (" << n->dir() << ") ----\n"
                  << LogTail(n->log_path(), 30000) << "\n";
      }
    }
  }
  // Paused daemons first, so that unmounting and reading never waits on a stopped one.
  for (auto* list : {&nodes_, &extra_nodes_}) {
    for (auto& n : *list) n->Resume();
  }
  for (auto* list : {&nodes_, &extra_nodes_}) {
    for (auto& n : *list) n->Cleanup();
  }
  if (IsMounted(tmp_)) {
    ADD_FAILURE() << "something is still mounted under " << tmp_ << "; leaving it";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp_, ec);
}

Node& ClusterTest::AddNode(const std::string& name, int port) {
  extra_nodes_.push_back(
      std::make_unique<Node>(100 + static_cast<int>(extra_nodes_.size()), tmp_ + "/" + name, port));
  return *extra_nodes_.back();
}

bool ClusterTest::WaitUp(int i, std::vector<int> instances, int timeout_ms) {
  if (instances.empty()) {
    for (int j = 1; j <= size(); ++j) {
      if (j != i && node(j).running()) instances.push_back(node(j).instance);
    }
  }
  bool ok = PollUntil(
      [&] {
        for (int n : instances) {
          if (node(i).InstanceStatus(n) != "up") return false;
        }
        return true;
      },
      timeout_ms);
  if (!ok) {
    ADD_FAILURE() << "node " << i << " does not see all of its peers up after " << timeout_ms
                  << " ms; status.json:\n"
                  << ReadFileOr(node(i).Path("status.json"));
  }
  return ok;
}

bool ClusterTest::WaitAllUp(int timeout_ms) {
  bool ok = true;
  for (int i = 1; i <= size(); ++i) {
    if (node(i).running() && !node(i).paused()) ok = WaitUp(i, {}, timeout_ms) && ok;
  }
  return ok;
}

bool ClusterTest::WaitListed(int i, const std::string& id, int timeout_ms) {
  return PollUntil(
      [&] {
        struct stat sb;
        return stat(node(i).ObjPath(id).c_str(), &sb) == 0;
      },
      timeout_ms);
}

bool ClusterTest::WaitGone(int i, const std::string& id, int timeout_ms) {
  return PollUntil(
      [&] {
        auto l = node(i).ListObjects();
        return !std::binary_search(l.begin(), l.end(), id);
      },
      timeout_ms);
}

bool ClusterTest::WaitName(int i, const std::string& name, const std::string& id, int timeout_ms) {
  return PollUntil(
      [&] {
        if (id.empty()) {
          auto l = node(i).ListNames();
          return !std::binary_search(l.begin(), l.end(), name);
        }
        return node(i).NameTarget(name) == id;
      },
      timeout_ms);
}

uint64_t ClusterTest::Counter(int i, const std::string& counter) {
  json s = node(i).ReadStatus();
  if (!s.is_object() || !s.contains("cluster") || !s["cluster"].contains(counter) ||
      !s["cluster"][counter].is_number_unsigned()) {
    ADD_FAILURE() << "node " << i << ": status.json has no cluster." << counter << ":\n"
                  << s.dump(2);
    return 0;
  }
  return s["cluster"][counter].get<uint64_t>();
}

uint64_t ClusterTest::WaitCounterAbove(int i, const std::string& counter, uint64_t than,
                                       int timeout_ms) {
  uint64_t v = 0;
  PollUntil([&] { return (v = Counter(i, counter)) > than; }, timeout_ms);
  return v;
}

ClusterTest::View ClusterTest::TakeView(int i) {
  View v;
  for (auto& id : node(i).ListObjects()) {
    int e = 0;
    std::string m = node(i).Meta(id, &e);
    // An object deleted between the listing and the read is simply not in the view.
    if (e == 0) v.metas[id] = m;
  }
  v.names = node(i).Names();
  return v;
}

bool ClusterTest::MakeCurveKeys(const std::map<std::string, int>& extra) {
  std::map<std::string, int> all = extra;
  for (int i = 1; i <= size(); ++i) all["n" + std::to_string(i)] = node(i).port();
  for (const char* d : {"/keys", "/curve_peers"}) {
    if (mkdir((tmp_ + d).c_str(), 0700) != 0 && errno != EEXIST) {
      ADD_FAILURE() << "mkdir " << tmp_ << d << ": " << strerror(errno);
      return false;
    }
  }
  for (auto& [name, port] : all) {
    std::vector<std::string> argv = {VYCTL_BIN, "keygen", KeyPath(name)};
    if (port > 0) {
      argv.push_back("--endpoint");
      argv.push_back("tcp://127.0.0.1:" + std::to_string(port));
    }
    CommandResult r = RunCommand(argv);
    if (r.exit_code != 0) {
      ADD_FAILURE() << "vyctl keygen " << name << " failed (" << r.exit_code << "):\n" << r.output;
      return false;
    }
    std::error_code ec;
    std::filesystem::copy_file(KeyPath(name) + ".pub", CurvePeersDir() + "/" + name + ".pub", ec);
    if (ec) {
      ADD_FAILURE() << "copying " << name << ".pub: " << ec.message();
      return false;
    }
  }
  return true;
}

std::string ClusterTest::PublicKey(const std::string& name) {
  std::istringstream in(ReadFileOr(KeyPath(name) + ".pub"));
  std::string key;
  in >> key;
  return key;
}

std::string ClusterTest::SecretKey(const std::string& name) {
  std::istringstream in(ReadFileOr(KeyPath(name) + ".key"));
  std::string key;
  in >> key;
  return key;
}

}  // namespace vyit
