// The reactor's ROUTER event: answering peers' requests for this node's snapshot and
// for chunks of its payloads, and hearing their refusals of our input. Replies are
// queued for clients that may never read them, so the bytes queued are bounded.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "meta/log.h"
#include "meta/replicator_reactor.h"

namespace vineyard {

namespace {

constexpr int kMaxRequestsPerEvent = 1000;  // then the other sockets get their turn
// Replies the ROUTER may hold for clients that do not read them (a slow or hostile
// client of the snapshot socket). At or above it, a snapshot or fetch request is
// refused with an Error frame; the queue then holds at most this plus one reply.
constexpr uint64_t kMaxRouterQueueBytes = 64u << 20;
// Error frames have a budget of their own; past it, refused requests are dropped
// without a reply (a client that sends and never reads gets nothing more).
constexpr uint64_t kMaxRouterErrorBytes = 1u << 20;

// A message whose bytes the ROUTER's queue accounts for: `queued` grows by its size
// now and shrinks when libzmq lets go of it (written to the connection, or dropped
// with a peer that went away). The size is kept in front of the bytes.
void FreeCounted(void* data, void* hint) {
  char* base = static_cast<char*>(data) - sizeof(uint64_t);
  uint64_t size;
  std::memcpy(&size, base, sizeof size);
  static_cast<std::atomic<uint64_t>*>(hint)->fetch_sub(size);
  std::free(base);
}
zmq::message_t CountedMessage(size_t size, std::atomic<uint64_t>* queued) {
  char* base = static_cast<char*>(std::malloc(sizeof(uint64_t) + std::max<size_t>(size, 1)));
  if (!base) throw zmq::error_t();  // caught by the loop, like any ZeroMQ failure
  const uint64_t n = size;
  std::memcpy(base, &n, sizeof n);
  queued->fetch_add(n);
  return zmq::message_t(base + sizeof(uint64_t), size, FreeCounted, queued);
}

}  // namespace

using namespace replication;

void Replicator::Reactor::OnRouter() {
  for (int n = 0; n < kMaxRequestsPerEvent && RecvParts(*so_.router, &parts_); ++n) {
    if (parts_.size() < 2) {
      ++counters_.malformed;
      continue;
    }
    auto m = wire::Decode(ToFrames(parts_, 1));
    if (!m.ok()) {
      ++counters_.malformed;
      Complain("a client of the snapshot socket", m.status().message());
      ReplyError(parts_[0], Status::Code::kInvalidArgument, m.status().message());
      continue;
    }
    OnRequest(parts_[0], *m);
  }
}

void Replicator::Reactor::OnRequest(const zmq::message_t& who, const wire::Message& m) {
  if (m.kind == wire::Kind::kError) {
    // A peer refused something this node sent (its log says more): no answer.
    Complain("a peer's DEALER",
             "it refused our input: " + std::get<wire::ErrorReply>(m.body).reason);
  } else if (m.kind == wire::Kind::kSnapshotRequest) {
    ServeSnapshot(who, std::get<wire::SnapshotRequest>(m.body));
  } else if (m.kind == wire::Kind::kFetchRequest) {
    ServeFetch(who, std::get<wire::FetchRequest>(m.body));
  } else {
    ++counters_.malformed;
    ReplyError(who, Status::Code::kInvalidArgument, "not a request");
  }
}

void Replicator::Reactor::ServeSnapshot(const zmq::message_t& who, const wire::SnapshotRequest& r) {
  if (r.origin != self_) {
    ReplyError(who, Status::Code::kNotFound,
               "this is instance " + std::to_string(self_) + ", not " + std::to_string(r.origin));
    return;
  }
  if (!RouterHasRoom(who, "a snapshot request")) return;
  std::vector<wire::Change> records;
  const uint64_t seq = r_.table_->Snapshot(&records);
  std::atomic<uint64_t>* queued = &counters_.router_queued_bytes;
  for (auto& c : records) SendReply(who, wire::Encode(wire::Kind::kSnapshotRecord, c), queued);
  SendReply(who,
            wire::Encode(wire::Kind::kSnapshotEnd, wire::SnapshotEnd{self_, seq, records.size()}),
            queued);
  ++counters_.snapshots_served;
}

void Replicator::Reactor::ServeFetch(const zmq::message_t& who, const wire::FetchRequest& f) {
  if (f.blob.instance() != self_) {
    ReplyError(who, Status::Code::kNotFound, f.blob.ToString() + " is not made by this node");
    return;
  }
  if (!RouterHasRoom(who, "a fetch request")) return;
  std::atomic<uint64_t>* queued = &counters_.router_queued_bytes;
  zmq::message_t chunk = CountedMessage(f.length, queued);
  uint32_t len = f.length;
  auto total = r_.reader_(f.blob, f.offset, static_cast<char*>(chunk.data()), &len);
  if (!total.ok()) {
    ReplyError(who, total.status().code(), total.status().message());
    return;
  }
  if (len < f.length) {
    zmq::message_t shorter = CountedMessage(len, queued);
    std::memcpy(shorter.data(), chunk.data(), len);
    chunk = std::move(shorter);
  }
  wire::FetchReply head{f.blob, f.offset, *total, {}};
  wire::Frames frames = wire::Encode(wire::Kind::kFetchReply, head);
  SendCounted(who.data(), who.size(), true, queued);
  SendCounted(frames[0].data(), frames[0].size(), true, queued);
  SendCounted(frames[1].data(), frames[1].size(), true, queued);
  so_.router->send(chunk, zmq::send_flags::none);  // zero-copy, counted
  ++counters_.chunks_served;
  counters_.bytes_served += len;
}

// Every reply on the ROUTER goes through here, so counters_.router_queued_bytes
// knows what waits for slow clients. (Error frames are counted apart, against
// kMaxRouterErrorBytes. The counters outlive the thread: libzmq frees the last
// messages when the context ends.)
void Replicator::Reactor::SendCounted(const void* data, size_t n, bool more,
                                      std::atomic<uint64_t>* queued) {
  zmq::message_t m = CountedMessage(n, queued);
  if (n) std::memcpy(m.data(), data, n);
  so_.router->send(m, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

void Replicator::Reactor::SendReply(const zmq::message_t& who, const wire::Frames& frames,
                                    std::atomic<uint64_t>* queued) {
  SendCounted(who.data(), who.size(), true, queued);
  for (size_t i = 0; i < frames.size(); ++i) {
    SendCounted(frames[i].data(), frames[i].size(), i + 1 < frames.size(), queued);
  }
}

void Replicator::Reactor::ReplyError(const zmq::message_t& who, Status::Code code,
                                     const std::string& reason) {
  std::atomic<uint64_t>& error_bytes = counters_.router_error_bytes;
  if (error_bytes.load() >= kMaxRouterErrorBytes) return;  // nobody reads them
  SendReply(who, wire::Encode(wire::Kind::kError, wire::ErrorReply{code, reason}), &error_bytes);
}

bool Replicator::Reactor::RouterHasRoom(const zmq::message_t& who, const char* what) {
  const uint64_t queued = counters_.router_queued_bytes.load();
  if (queued < kMaxRouterQueueBytes) return true;
  ++counters_.router_refused;
  const std::string why = std::string(what) + " refused: " + std::to_string(queued) +
                          " bytes of replies are queued for clients that do not read them " +
                          "(limit " + std::to_string(kMaxRouterQueueBytes) + "); retry later";
  Complain("a client of the snapshot socket", why);
  ReplyError(who, Status::Code::kBusy, why);
  return false;
}

}  // namespace vineyard
