// The reactor's events of following a peer: its update stream on the SUB (updates,
// heartbeats) and the snapshots we ask its ROUTER for on the DEALER. Per origin the
// replicator keeps the last sequence number applied (meta/replicator.h).
#include <optional>

#include "meta/log.h"
#include "meta/replicator_reactor.h"

namespace vineyard {

namespace {

constexpr int kMaxMessagesPerEvent = 10000;  // then the other sockets get their turn
constexpr uint64_t kMaxEventBytes = 64u << 20;  // of updates read in one event, about
constexpr size_t kBatch = 4096;              // updates applied per journal commit, at most

// What a change held in memory costs, roughly: its strings and the struct.
uint64_t ChangeBytes(const wire::Change& c) {
  return sizeof(wire::Change) + c.record.size() + c.name.size();
}

}  // namespace

using namespace replication;

void Replicator::Reactor::OnSub(Peer& p) {
  std::deque<wire::Change> updates;
  uint64_t bytes = 0;
  for (int n = 0; n < kMaxMessagesPerEvent && bytes < kMaxEventBytes && p.sub &&
                  RecvParts(*p.sub, &parts_);
       ++n) {
    for (const zmq::message_t& part : parts_) bytes += part.size();
    auto m = Decoded(p.ep.pub);
    if (!m) continue;
    OnStreamMessage(p, *m, &updates);
  }
  if (p.st.refused || updates.empty()) return;
  if (p.st.syncing) {
    // Updates dropped here leave a gap that the next update or heartbeat after the
    // snapshot turns into another snapshot.
    uint64_t bytes = 0;
    for (const wire::Change& c : updates) bytes += ChangeBytes(c);
    if (!MayHold(p, bytes, "updates received during a snapshot")) return;
    p.held_bytes += bytes;
    p.buffered.insert(p.buffered.end(), std::make_move_iterator(updates.begin()),
                      std::make_move_iterator(updates.end()));
  } else {
    ApplyUpdates(p, updates);
  }
}

void Replicator::Reactor::OnStreamMessage(Peer& p, wire::Message& m,
                                          std::deque<wire::Change>* updates) {
  if (m.kind == wire::Kind::kUpdate) {
    auto& c = std::get<wire::Change>(m.body);
    if (!Identify(p, c.origin)) return;
    Heard(p);
    updates->push_back(std::move(c));
  } else if (m.kind == wire::Kind::kHeartbeat) {
    auto& h = std::get<wire::Heartbeat>(m.body);
    if (!Identify(p, h.origin)) return;
    Heard(p);
    p.st.published = h.last_seq;
    Show(p);
    if (!p.st.syncing && updates->empty() && h.last_seq != p.st.applied) {
      // Missed the last updates (or the origin's state was reset): resync.
      ++counters_.gaps;
      RequestSnapshot(p);
    }
  } else {
    ++counters_.malformed;
    Complain(p.ep.pub, "a message of kind " + std::string(1, static_cast<char>(m.kind)) +
                           " on the update stream");
  }
}

void Replicator::Reactor::OnDealer(Peer& p) {
  for (int n = 0; n < kMaxMessagesPerEvent && p.dealer && RecvParts(*p.dealer, &parts_); ++n) {
    auto m = Decoded(p.ep.router);
    if (!m) continue;
    if (!p.st.syncing) continue;  // a late answer to a request already given up
    // A dropped snapshot makes no progress: the timer asks again (OnTimer).
    if (p.snap_dropped) continue;
    p.sync_progress = SteadyMs();
    if (m->kind == wire::Kind::kSnapshotRecord) {
      auto& c = std::get<wire::Change>(m->body);
      if (c.origin != p.st.instance) {
        ++counters_.malformed;
        Complain(p.ep.router, "a snapshot record of instance " + std::to_string(c.origin));
        continue;
      }
      if (!MayHold(p, ChangeBytes(c), "a snapshot")) {
        p.snap_dropped = true;
        p.snap.clear();
        p.snap.shrink_to_fit();
        p.held_bytes = 0;
        for (const wire::Change& b : p.buffered) p.held_bytes += ChangeBytes(b);
        continue;
      }
      p.held_bytes += ChangeBytes(c);
      p.snap.push_back(std::move(c));
    } else if (m->kind == wire::Kind::kSnapshotEnd) {
      OnSnapshotEnd(p, std::get<wire::SnapshotEnd>(m->body));
    } else if (m->kind == wire::Kind::kError) {
      auto& x = std::get<wire::ErrorReply>(m->body);
      Complain(p.ep.router, "snapshot refused: " + x.reason);
    } else {
      ++counters_.malformed;
      Complain(p.ep.router, "an unexpected message on the snapshot socket");
    }
  }
}

void Replicator::Reactor::OnSnapshotEnd(Peer& p, const wire::SnapshotEnd& e) {
  if (e.origin != p.st.instance || e.count != p.snap.size()) {
    ++counters_.malformed;
    Complain(p.ep.router, "a snapshot end for instance " + std::to_string(e.origin) + " with " +
                              std::to_string(e.count) + " records, " +
                              std::to_string(p.snap.size()) + " received: asking again");
    RequestSnapshot(p);
    return;
  }
  auto applied = r_.table_->ApplySnapshot(p.st.instance, p.snap);
  p.snap.clear();
  p.snap.shrink_to_fit();
  if (!applied.ok()) {
    VY_LOG_ERROR("cluster: snapshot of %u: %s", p.st.instance, applied.status().ToString().c_str());
  } else {
    Notify(p, *applied);
  }
  ++counters_.snapshots_taken;
  p.held_bytes = 0;
  p.st.syncing = false;
  p.st.applied = e.seq;
  ++p.st.snapshots;
  Show(p);
  std::deque<wire::Change> rest;
  rest.swap(p.buffered);
  ApplyUpdates(p, rest);
}

std::optional<wire::Message> Replicator::Reactor::Decoded(const std::string& who) {
  auto m = wire::Decode(ToFrames(parts_, 0));
  if (m.ok()) return std::move(*m);
  ++counters_.malformed;
  Complain(who, m.status().message());
  return std::nullopt;
}

bool Replicator::Reactor::Identify(Peer& p, InstanceId origin) {
  if (p.st.instance == origin) return true;
  if (p.st.instance != 0) {
    ++counters_.malformed;
    Complain(p.ep.pub, "a message for instance " + std::to_string(origin) + " from instance " +
                           std::to_string(p.st.instance));
    return false;
  }
  if (origin == self_) {
    Refuse(p, "it claims instance " + std::to_string(origin) + ", which is this node's own id");
    return false;
  }
  for (auto& q : r_.peers_) {
    if (q.get() != &p && q->st.instance == origin && !q->st.refused) {
      Refuse(p, "it claims instance " + std::to_string(origin) + ", already used by peer " +
                    q->ep.pub);
      return false;
    }
  }
  p.st.instance = origin;
  Show(p);
  VY_LOG_INFO("cluster: peer %s is instance %u", p.ep.pub.c_str(), origin);
  RequestSnapshot(p);
  return true;
}

void Replicator::Reactor::Heard(Peer& p) {
  if (!p.st.up && p.st.instance != 0) VY_LOG_INFO("cluster: instance %u is up", p.st.instance);
  p.st.up = true;
  p.last_heard = SteadyMs();
  p.st.last_heard_wall = NowMs();
  Show(p);
}

void Replicator::Reactor::RequestSnapshot(Peer& p) {
  p.st.syncing = true;
  Show(p);
  p.sync_progress = SteadyMs();
  p.snap.clear();
  p.snap_dropped = false;
  p.held_bytes = 0;
  for (const wire::Change& b : p.buffered) p.held_bytes += ChangeBytes(b);
  wire::SnapshotRequest req{p.st.instance, self_};
  SendFrames(*p.dealer, wire::Encode(wire::Kind::kSnapshotRequest, req));
}

bool Replicator::Reactor::MayHold(Peer& p, uint64_t bytes, const char* what) {
  const uint64_t limit = r_.opts_.peer_buffer;
  if (bytes <= limit && p.held_bytes <= limit - bytes) return true;
  ++counters_.peer_overflows;
  Complain(p.ep.pub, std::string(what) + " of instance " + std::to_string(p.st.instance) +
                         " holds more than peer_buffer (" + std::to_string(limit) +
                         " bytes): dropped; the snapshot is asked again");
  return false;
}

void Replicator::Reactor::Refuse(Peer& p, const std::string& why) {
  VY_LOG_ERROR("cluster: peer %s refused: %s", p.ep.pub.c_str(), why.c_str());
  p.st.refused = true;
  p.st.reason = why;
  p.st.up = false;
  p.sub.reset();
  p.dealer.reset();
  Show(p);
  ++counters_.refused_peers;
}

void Replicator::Reactor::RefuseInput(Peer& p, const std::string& what) {
  // At most once a second per peer; every refusal is counted by the caller.
  const int64_t now = SteadyMs();
  auto& t = last_logged_[p.ep.pub + " refused"];
  if (now - t < 1000) return;
  t = now;
  VY_LOG_WARN("cluster: %s (instance %u): %s (refused)", p.ep.pub.c_str(), p.st.instance,
              what.c_str());
  if (p.dealer) {
    SendFrames(*p.dealer,
               wire::Encode(wire::Kind::kError,
                            wire::ErrorReply{Status::Code::kInvalidArgument, wire::OneLine(what)}));
  }
}

void Replicator::Reactor::Notify(Peer& p, const ObjectTable::Applied& a) {
  counters_.rejected += a.rejected.size();
  if (!a.rejected.empty()) RefuseInput(p, a.rejected.front());
  Listener l;
  {
    MutexLock lock(&r_.mu_);
    l = r_.listener_;
  }
  if (l && (!a.objects.empty() || !a.names.empty())) l(a);
}

void Replicator::Reactor::ApplyUpdates(Peer& p, std::deque<wire::Change>& pending) {
  std::vector<wire::Change> batch;
  uint64_t next = p.st.applied + 1;
  while (!pending.empty()) {
    wire::Change& c = pending.front();
    if (c.seq < next) {
      pending.pop_front();  // older than what we have
      continue;
    }
    if (c.seq > next) {
      Commit(p, &batch);
      ++counters_.gaps;
      VY_LOG_INFO(
          "cluster: gap in the updates of instance %u (expected %llu, got %llu): "
          "taking a snapshot",
          p.st.instance, static_cast<unsigned long long>(next),
          static_cast<unsigned long long>(c.seq));
      RequestSnapshot(p);
      for (const wire::Change& b : pending) p.held_bytes += ChangeBytes(b);  // < kMaxEventBytes
      p.buffered.insert(p.buffered.end(), std::make_move_iterator(pending.begin()),
                        std::make_move_iterator(pending.end()));
      pending.clear();
      return;
    }
    batch.push_back(std::move(c));
    pending.pop_front();
    ++next;
    if (batch.size() >= kBatch) Commit(p, &batch);
  }
  Commit(p, &batch);
}

// Applies `batch` (in-order updates of p) in one journal commit and empties it.
void Replicator::Reactor::Commit(Peer& p, std::vector<wire::Change>* batch) {
  if (batch->empty()) return;
  auto applied = r_.table_->ApplyRemote(*batch);
  if (!applied.ok()) {
    VY_LOG_ERROR("cluster: applying updates of %u: %s", p.st.instance,
                 applied.status().ToString().c_str());
  } else {
    counters_.applied += batch->size();
    Notify(p, *applied);
  }
  p.st.applied = batch->back().seq;
  Show(p);
  batch->clear();
}

}  // namespace vineyard
