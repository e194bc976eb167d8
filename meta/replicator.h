// Replicator: one node's side of the cluster (DESIGN.md §7), the zguide's Clone
// pattern over ZeroMQ, with no coordinator.
//
// Sockets. `listen=tcp://HOST:PORT` binds a PUB socket on PORT (every change to this
// node's replicated state, and heartbeats) and a ROUTER socket on PORT+1 (snapshots
// and payload chunks on request). For each `peer=tcp://HOST:PORT` the node connects
// a SUB socket to PORT and a DEALER socket to PORT+1. A bare port (`listen=7000`)
// means 127.0.0.1. Messages are those of meta/wire.h; anything that does not decode,
// or that a peer may not say (another node's objects, a sequence number from the
// past), is dropped, logged and counted, and never reaches the table.
//
// Per origin the replicator keeps the last sequence number applied. An update with
// the next number applies; an older one is dropped; a newer one is a gap. A gap, a
// heartbeat announcing a number we have not applied, or the first message of a
// peer starts a snapshot request on the DEALER; updates received meanwhile are kept
// and those newer than the snapshot are applied after it. A peer silent for
// `down_after` heartbeats is down: its objects stay listed, fetches fail at once.
//
// A peer whose messages claim this node's own instance id, or the id of another
// connected peer, is refused (logged, shown in status.json) and disconnected.
//
// Payloads: Fetch() copies a remote blob in chunks of wire::kMaxChunk over a DEALER
// of its own, several chunks in flight (delivered in order), and fails with Unavailable when the
// owner is down or does not answer within `fetch_timeout_ms`.
//
// Security: with `curve_secret=` and `curve_peers=`, every socket uses CurveZMQ; the
// PUB and ROUTER accept only clients whose public key is in curve_peers (a ZAP
// handler), and this node connects to a peer only with the peer's key from there.
//
// Structure: the thread is a reactor (the zguide's clonesrv5.c), Replicator::Reactor
// in meta/replicator_reactor.h: one state struct and one small method per socket
// event. meta/replicator.cc opens the sockets and runs the loop, replicator_sync.cc
// follows peers (SUB and DEALER), replicator_serve.cc answers them (ROUTER),
// replicator_fetch.cc fetches payloads; CURVE is meta/curve.h's.
//
// Thread-safety: one thread owns every socket but the fetchers'; Fetch(), Peers(),
// IsUp() and counters() may be called from any thread. What they read of the peers
// is the thread's copy, published under mu_ (`shown_`). mu_ is the only lock and
// nothing else is acquired while holding it but the table's (in the change sink,
// the table calls Publish() with its own lock held: table lock before mu_).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "meta/endpoint.h"
#include "meta/mutex.h"
#include "meta/object_table.h"
#include "meta/status.h"
#include "meta/thread_annotations.h"
#include "meta/wire.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace vineyard {

class Curve;

struct ClusterOptions {
  InstanceId instance = 0;
  std::string listen;              // "" = publish and serve nothing
  std::vector<std::string> peers;  // their listen endpoints
  std::string curve_secret;        // file holding this node's secret key (Z85)
  std::string curve_peers;         // directory of the known nodes' public keys
  int heartbeat_ms = 200;
  int down_after = 5;               // heartbeats missed before a peer is down
  int fetch_timeout_ms = 3000;      // per chunk
  int snapshot_timeout_ms = 10000;  // without progress, then the request is repeated
  // Bytes of records held per peer while syncing with it: the snapshot being received
  // plus the updates that arrive meanwhile (mount option peer_buffer=). Past it they
  // are dropped (cluster.peer_overflows) and the snapshot is asked again later.
  uint64_t peer_buffer = uint64_t{1} << 30;
};

struct PeerInfo {
  std::string endpoint;
  InstanceId instance = 0;  // 0 until it has spoken
  std::string status;       // connecting, syncing, up, down, refused
  std::string reason;       // why it was refused
  int64_t last_heard_ms = 0;
  uint64_t applied_seq = 0;    // the last of its changes applied here
  uint64_t published_seq = 0;  // the last it announced
  uint64_t snapshots = 0;      // snapshots taken from it
};

struct ClusterCounters {
  std::atomic<uint64_t> published{0}, applied{0}, heartbeats{0}, snapshots_served{0},
      snapshots_taken{0}, gaps{0}, malformed{0}, rejected{0}, refused_peers{0}, auth_refused{0},
      fetches{0}, fetch_bytes{0}, fetch_errors{0}, chunks_served{0}, bytes_served{0};
  // Bytes of ROUTER replies (snapshots, chunks, errors) queued and not yet written to
  // their client's connection; requests refused or dropped because of it.
  std::atomic<uint64_t> router_queued_bytes{0}, router_error_bytes{0}, router_refused{0};
  // Snapshots or buffered updates of a peer dropped at ClusterOptions::peer_buffer.
  std::atomic<uint64_t> peer_overflows{0};
};

class Replicator {
 public:
  // Reads up to `len` bytes of local blob `id` at `offset` into `buf`; returns the
  // blob's size and sets `*len` to the bytes read. NotFound if it is not a persisted
  // blob here, InvalidArgument if `offset` is past its end.
  using PayloadReader =
      std::function<Result<uint64_t>(ObjectID id, uint64_t offset, char* buf, uint32_t* len)>;
  // Told what remote changes did (the filesystem drops its kernel caches of them).
  using Listener = std::function<void(const ObjectTable::Applied&)>;

  // Binds and connects, installs the table's change sink, and starts the thread.
  static Result<std::unique_ptr<Replicator>> Start(const ClusterOptions& opts, ObjectTable* table,
                                                   PayloadReader reader);
  ~Replicator();  // stops the thread, closes every socket (linger 0)

  void SetListener(Listener listener);
  // Receives the bytes of a fetched payload, in order; an error ends the fetch.
  using Sink = std::function<Status(const char* data, size_t len)>;
  // Fetches the `size` bytes of remote blob `id` and hands them to `append` in order.
  Status Fetch(ObjectID id, uint64_t size, const Sink& append);
  std::vector<PeerInfo> Peers() const;
  const ClusterCounters& counters() const { return counters_; }
  const ClusterOptions& options() const { return opts_; }
  bool curve() const { return curve_ != nullptr; }
  // Whether `instance` is a peer that is up.
  bool IsUp(InstanceId instance) const;

 private:
  struct Peer;
  struct PeerStatus;
  struct Sockets;
  class Reactor;

  Replicator(const ClusterOptions& opts, ObjectTable* table, PayloadReader reader);
  Status Open();
  Status OpenServer(const std::string& listen);
  Status OpenPeer(const std::string& text);
  void Loop();
  void Publish(std::vector<wire::Change>&& changes);  // the table's sink
  // A DEALER connected to a peer's ROUTER at `endpoint` (CURVE client when enabled).
  std::unique_ptr<zmq::socket_t> ConnectDealer(zmq::context_t& ctx, const std::string& endpoint,
                                               const std::string& server_key) const;

  const ClusterOptions opts_;
  ObjectTable* const table_;
  const PayloadReader reader_;
  std::unique_ptr<const Curve> curve_;  // null without CURVE; immutable once open

  std::unique_ptr<Sockets> sockets_;  // the context is shared; the sockets are the thread's
  // One per peer= in order, fixed once open. Their endpoints and keys are immutable;
  // the rest is the thread's, which copies what others may see into shown_.
  std::vector<std::unique_ptr<Peer>> peers_;
  mutable Mutex mu_;
  std::vector<PeerStatus> shown_ GUARDED_BY(mu_);  // peers_[i]'s status, for other threads
  std::deque<wire::Change> outbox_ GUARDED_BY(mu_);
  Listener listener_ GUARDED_BY(mu_);
  int wake_fd_ = -1;  // eventfd: the outbox has changes
  std::atomic<bool> stop_{false};
  ClusterCounters counters_;
  std::thread thread_;
};

}  // namespace vineyard
