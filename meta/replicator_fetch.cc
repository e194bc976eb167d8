// Payload fetch (any thread): a remote blob copied in chunks of wire::kMaxChunk over a
// DEALER of its own, several chunks in flight, delivered in order.
#include <algorithm>
#include <map>

#include "meta/replicator_reactor.h"

namespace vineyard {

namespace {

constexpr size_t kFetchWindow = 8;  // chunks in flight per fetch

using replication::RecvParts;
using replication::SendFrames;
using replication::ToFrames;

// One fetch over `s`: chunks are requested in order, several at a time, and handed
// to `append` in order; a reply that comes early waits in `early` (at most
// kFetchWindow chunks). Each reply must answer a request still outstanding, exactly.
class ChunkFetch {
 public:
  ChunkFetch(zmq::socket_t& s, ObjectID id, uint64_t size, const Replicator::Sink& append,
             ClusterCounters& counters)
      : s_(s), id_(id), size_(size), append_(append), counters_(counters) {}

  Status Run(int timeout_ms) {
    const std::string owner = "instance " + std::to_string(id_.instance());
    while (delivered_ < size_) {
      RequestMore();
      zmq::pollitem_t item{s_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) {
        return Status::Unavailable(owner + " did not answer a fetch of " + id_.ToString() +
                                   " within " + std::to_string(timeout_ms) + " ms");
      }
      if (!RecvParts(s_, &parts_)) continue;
      // The chunk frame is validated by size only: copying 4 MiB into a string for
      // Decode would cost more than the network.
      if (parts_.size() == 3 && parts_[0].to_string() == wire::Header(wire::Kind::kFetchReply)) {
        VY_RETURN_IF_ERROR(OnChunk());
        continue;
      }
      auto m = wire::Decode(ToFrames(parts_, 0));
      if (m.ok() && m->kind == wire::Kind::kError) {
        auto& x = std::get<wire::ErrorReply>(m->body);
        if (x.code == Status::Code::kNotFound) return Status::NotFound(owner + ": " + x.reason);
        return Status::IOError(owner + ": " + x.reason);
      }
      ++counters_.malformed;
      return Status::IOError("fetch of " + id_.ToString() + ": a malformed reply");
    }
    return Status::OK();
  }

 private:
  void RequestMore() {
    while (outstanding_.size() < kFetchWindow && next_ < size_) {
      const auto len = static_cast<uint32_t>(std::min<uint64_t>(wire::kMaxChunk, size_ - next_));
      SendFrames(s_, wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{id_, next_, len}));
      outstanding_.emplace(next_, len);
      next_ += len;
    }
  }

  // parts_ is a FetchReply: check it answers a request, deliver what is in order.
  Status OnChunk() {
    wire::Frames head = {parts_[0].to_string(), parts_[1].to_string(), std::string()};
    auto m = wire::Decode(head);
    if (!m.ok()) return Status::IOError("fetch of " + id_.ToString() + ": " + m.status().message());
    auto& r = std::get<wire::FetchReply>(m->body);
    auto asked = outstanding_.find(r.offset);
    if (r.blob != id_ || r.total != size_ || asked == outstanding_.end() ||
        parts_[2].size() != asked->second) {
      return Status::IOError("fetch of " + id_.ToString() + ": a reply that does not fit");
    }
    outstanding_.erase(asked);
    counters_.fetch_bytes += parts_[2].size();
    early_.emplace(r.offset, std::move(parts_[2]));
    for (auto it = early_.begin(); it != early_.end() && it->first == delivered_;
         it = early_.erase(it)) {
      VY_RETURN_IF_ERROR(append_(static_cast<const char*>(it->second.data()), it->second.size()));
      delivered_ += it->second.size();
    }
    return Status::OK();
  }

  zmq::socket_t& s_;
  const ObjectID id_;
  const uint64_t size_;
  const Replicator::Sink& append_;
  ClusterCounters& counters_;
  uint64_t next_ = 0, delivered_ = 0;
  std::map<uint64_t, uint32_t> outstanding_;  // offset -> length requested
  std::map<uint64_t, zmq::message_t> early_;
  std::vector<zmq::message_t> parts_;
};

}  // namespace

Status Replicator::Fetch(ObjectID id, uint64_t size, const Sink& append) {
  const InstanceId owner = id.instance();
  std::string router, server_key;
  bool known = false, up = false;
  {
    MutexLock lock(&mu_);
    for (size_t k = 0; k < peers_.size(); ++k) {
      if (shown_[k].instance == owner && !shown_[k].refused) {
        known = true;
        up = shown_[k].up;
        router = peers_[k]->ep.router;
        server_key = peers_[k]->server_key;
      }
    }
  }
  if (!known) {
    return Status::Unavailable("the payload of " + id.ToString() + " is on instance " +
                               std::to_string(owner) + ", which is not a connected peer");
  }
  if (!up) {
    return Status::Unavailable("the payload of " + id.ToString() + " is on instance " +
                               std::to_string(owner) + ", which is down");
  }
  ++counters_.fetches;
  if (size == 0) return Status::OK();
  Status st;
  try {
    std::unique_ptr<zmq::socket_t> dealer = ConnectDealer(sockets_->ctx, router, server_key);
    st = ChunkFetch(*dealer, id, size, append, counters_).Run(opts_.fetch_timeout_ms);
  } catch (const zmq::error_t& e) {
    st = Status::IOError(std::string("fetch: ") + e.what());
  }
  if (!st.ok()) ++counters_.fetch_errors;
  return st;
}

}  // namespace vineyard
