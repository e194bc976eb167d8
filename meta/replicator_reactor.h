// The replicator's thread as a reactor (the zguide's clonesrv5.c): Reactor is its
// state, and each socket event has one small method. Private to meta/replicator*.cc.
//
//   event                          method           file
//   the table committed changes    OnOutbox()       replicator.cc   publish them (PUB)
//   the heartbeat timer            OnTimer()        replicator.cc   heartbeat; peers down;
//                                                                   stalled snapshots asked again
//   a CURVE handshake              OnZap()          replicator.cc   meta/curve.h answers it
//   a peer's SUB: updates,         OnSub(p)         replicator_sync.cc
//     heartbeats
//   a peer's DEALER: the snapshot  OnDealer(p)      replicator_sync.cc
//     we asked for
//   our ROUTER: a peer's request   OnRouter()       replicator_serve.cc  snapshots, chunks
//
// Thread-safety: a Reactor lives on the replicator's thread, which alone uses it and
// the sockets in it. It changes what other threads see (Replicator::shown_, the
// listener, the counters) only through Show() and Notify(), under the replicator's
// mu_, or through atomics.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "meta/replicator.h"

namespace vineyard {

namespace replication {

int64_t SteadyMs();
uint64_t NowNs();
// Sends frames as one multipart message (non-blocking: a full queue drops it).
bool SendFrames(zmq::socket_t& s, const wire::Frames& frames);
// Receives one whole multipart message without waiting; false if there is none.
bool RecvParts(zmq::socket_t& s, std::vector<zmq::message_t>* parts);
// The parts from `from` on, as wire frames.
wire::Frames ToFrames(const std::vector<zmq::message_t>& parts, size_t from);

}  // namespace replication

// What other threads may know of a peer (Peers(), IsUp(), Fetch()).
struct Replicator::PeerStatus {
  InstanceId instance = 0;  // 0 until it has spoken
  bool refused = false;
  std::string reason;  // why it was refused
  bool up = false;
  bool syncing = false;  // a snapshot of it is on its way
  int64_t last_heard_wall = 0;
  uint64_t applied = 0, published = 0, snapshots = 0;
};

struct Replicator::Peer {
  // Immutable once open.
  size_t index = 0;  // in peers_ and shown_
  Endpoint ep;
  std::string given;  // the peer= text
  std::string server_key;
  // The thread's alone.
  std::unique_ptr<zmq::socket_t> sub, dealer;  // null once refused
  PeerStatus st;                               // copied into shown_ by Show()
  int64_t last_heard = 0;                      // steady ms
  int64_t sync_progress = 0;                   // steady ms of the last snapshot message
  std::vector<wire::Change> snap;              // the snapshot being received
  std::deque<wire::Change> buffered;           // updates received meanwhile
  uint64_t held_bytes = 0;                     // of snap and buffered (<= peer_buffer)
  bool snap_dropped = false;                   // over peer_buffer: ignored until asked again
};

struct Replicator::Sockets {
  zmq::context_t ctx;  // thread-safe: the fetchers make their DEALERs in it
  std::unique_ptr<zmq::socket_t> pub, router, zap;
};

class Replicator::Reactor {
 public:
  explicit Reactor(Replicator& r);
  void Run();  // until r.stop_

 private:
  // replicator.cc: the loop and the node's own events.
  bool PollOnce();  // false when polling itself failed: the thread ends
  void OnOutbox();
  void OnTimer();
  void OnZap();
  // One line per kind of trouble per peer and second at most, so a hostile peer
  // cannot flood the log; every occurrence is counted by the caller.
  void Complain(const std::string& who, const std::string& what);
  // Copies p.st where other threads read it.
  void Show(const Peer& p);

  // replicator_sync.cc: following a peer.
  void OnSub(Peer& p);
  void OnDealer(Peer& p);
  // parts_ as a message; nothing if malformed (counted, and logged as from `who`).
  std::optional<wire::Message> Decoded(const std::string& who);
  // One decoded message of p's update stream, added to `updates` if it is one.
  void OnStreamMessage(Peer& p, wire::Message& m, std::deque<wire::Change>* updates);
  void OnSnapshotEnd(Peer& p, const wire::SnapshotEnd& e);
  // The first message of a peer names it; it must not be us or another peer.
  bool Identify(Peer& p, InstanceId origin);
  void Heard(Peer& p);
  void RequestSnapshot(Peer& p);
  // Whether `bytes` more may be held for p (snapshot records, buffered updates) within
  // peer_buffer; if not, counts and logs the overflow.
  bool MayHold(Peer& p, uint64_t bytes, const char* what);
  void Refuse(Peer& p, const std::string& why);
  // Records a peer sent that the table refused: logged and answered with an Error
  // frame on the DEALER to that peer's ROUTER, so its operator sees why.
  void RefuseInput(Peer& p, const std::string& what);
  void Notify(Peer& p, const ObjectTable::Applied& a);
  // Applies in-order updates of `p` from `pending`; a gap starts a snapshot and keeps
  // the rest.
  void ApplyUpdates(Peer& p, std::deque<wire::Change>& pending);
  void Commit(Peer& p, std::vector<wire::Change>* batch);

  // replicator_serve.cc: answering peers on the ROUTER.
  void OnRouter();
  void OnRequest(const zmq::message_t& who, const wire::Message& m);
  void ServeSnapshot(const zmq::message_t& who, const wire::SnapshotRequest& r);
  void ServeFetch(const zmq::message_t& who, const wire::FetchRequest& f);
  void SendCounted(const void* data, size_t n, bool more, std::atomic<uint64_t>* queued);
  void SendReply(const zmq::message_t& who, const wire::Frames& frames,
                 std::atomic<uint64_t>* queued);
  void ReplyError(const zmq::message_t& who, Status::Code code, const std::string& reason);
  // Whether the ROUTER's queue leaves room for another reply; if not, the request is
  // refused (an Error frame, a log line at most once a second, a count).
  bool RouterHasRoom(const zmq::message_t& who, const char* what);

  Replicator& r_;
  Sockets& so_;
  ClusterCounters& counters_;
  const InstanceId self_;
  std::vector<zmq::message_t> parts_;           // the message being handled
  int64_t next_heartbeat_ = 0;                  // steady ms
  std::map<std::string, int64_t> last_logged_;  // Complain()'s: who -> steady ms
};

}  // namespace vineyard
