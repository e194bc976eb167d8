// The fixture of the cluster fault tests (cluster_fault_test.cc,
// cluster_hostile_test.cc, cluster_curve_test.cc): what the tests create on the nodes,
// the converged state they expect, and ClusterFault.
#pragma once

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

using nlohmann::json;
namespace wire = vineyard::wire;
using vineyard::ObjectID;
using vineyard::Status;

inline double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The instance that created `id` (bits 62..48).
inline int Creator(const std::string& id) {
  return static_cast<int>((std::strtoull(id.c_str() + 1, nullptr, 16) >> 48) & 0x7fff);
}

inline uint64_t NowNs() {
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
inline void Populate(Node& n, const std::string& tag, int count, Made* out,
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

}  // namespace vyit
