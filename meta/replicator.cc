// The replicator: opening its sockets, the API other threads call, and the reactor's
// loop with the node's own events (outbox, timer, ZAP). See meta/replicator_reactor.h
// for which file handles which event.
#include "meta/replicator.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "meta/curve.h"
#include "meta/log.h"
#include "meta/replicator_reactor.h"

namespace vineyard {

namespace {

constexpr int kSndHwm = 200000;  // updates queued for one slow subscriber, then a gap
constexpr int kMaxPollMs = 100;  // the loop looks at stop_ at least this often

}  // namespace

namespace replication {

int64_t SteadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

uint64_t NowNs() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

bool SendFrames(zmq::socket_t& s, const wire::Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const bool more = i + 1 < frames.size();
    auto r =
        s.send(zmq::buffer(frames[i]), (more ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                                           zmq::send_flags::dontwait);
    if (!r) return false;
  }
  return true;
}

bool RecvParts(zmq::socket_t& s, std::vector<zmq::message_t>* parts) {
  parts->clear();
  for (;;) {
    zmq::message_t m;
    auto r = s.recv(m, parts->empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
    if (!r) return false;
    bool more = m.more();
    parts->push_back(std::move(m));
    if (!more) return true;
  }
}

wire::Frames ToFrames(const std::vector<zmq::message_t>& parts, size_t from) {
  wire::Frames f;
  for (size_t i = from; i < parts.size(); ++i) f.push_back(parts[i].to_string());
  return f;
}

}  // namespace replication

using namespace replication;

// ---- Opening ----

Replicator::Replicator(const ClusterOptions& opts, ObjectTable* table, PayloadReader reader)
    : opts_(opts), table_(table), reader_(std::move(reader)) {}

Result<std::unique_ptr<Replicator>> Replicator::Start(const ClusterOptions& opts,
                                                      ObjectTable* table, PayloadReader reader) {
  std::unique_ptr<Replicator> r(new Replicator(opts, table, std::move(reader)));
  VY_RETURN_IF_ERROR(r->Open());
  Replicator* self = r.get();
  table->SetChangeSink([self](std::vector<wire::Change>&& c) { self->Publish(std::move(c)); });
  r->thread_ = std::thread([self] { self->Loop(); });
  return r;
}

Status Replicator::Open() {
  if (opts_.curve_secret.empty() != opts_.curve_peers.empty()) {
    return Status::InvalidArgument("curve_secret= and curve_peers= go together");
  }
  if (!opts_.curve_secret.empty()) {
    auto curve = Curve::Load(opts_.curve_secret, opts_.curve_peers);
    if (!curve.ok()) return curve.status();
    curve_ = std::move(*curve);
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::FromErrno("eventfd", errno);
  sockets_ = std::make_unique<Sockets>();
  try {
    // The ZAP handler must be bound before any CURVE server socket.
    if (curve()) sockets_->zap = Curve::BindZap(sockets_->ctx);
    if (!opts_.listen.empty()) VY_RETURN_IF_ERROR(OpenServer(opts_.listen));
    for (const std::string& text : opts_.peers) VY_RETURN_IF_ERROR(OpenPeer(text));
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument(std::string("cluster sockets: ") + e.what());
  }
  MutexLock lock(&mu_);
  shown_.resize(peers_.size());
  return Status::OK();
}

// The PUB and the ROUTER of listen=.
Status Replicator::OpenServer(const std::string& listen) {
  auto ep = ParseEndpoint(listen);
  if (!ep.ok()) return Status::InvalidArgument("listen: " + ep.status().message());
  if (!ep->loopback && !curve()) {
    VY_LOG_WARN(
        "listening on %s without CURVE: any host that reaches it can read and "
        "feed this node's metadata (set curve_secret= and curve_peers=)",
        ep->pub.c_str());
  }
  auto server = [&](zmq::socket_type type) {
    auto s = std::make_unique<zmq::socket_t>(sockets_->ctx, type);
    s->set(zmq::sockopt::linger, 0);
    if (curve_) curve_->MakeServer(*s);
    return s;
  };
  sockets_->pub = server(zmq::socket_type::pub);
  sockets_->pub->set(zmq::sockopt::sndhwm, kSndHwm);
  sockets_->router = server(zmq::socket_type::router);
  sockets_->router->set(zmq::sockopt::router_mandatory, 0);
  // A snapshot is sent whole, however large: no high-water mark on the ROUTER.
  // What it holds is bounded in bytes instead (replicator_serve.cc).
  sockets_->router->set(zmq::sockopt::sndhwm, 0);
  sockets_->pub->bind(ep->pub);
  sockets_->router->bind(ep->router);
  return Status::OK();
}

// The SUB and the DEALER of one peer=.
Status Replicator::OpenPeer(const std::string& text) {
  auto ep = ParseEndpoint(text);
  if (!ep.ok()) return Status::InvalidArgument("peer: " + ep.status().message());
  auto p = std::make_unique<Peer>();
  p->index = peers_.size();
  p->ep = *ep;
  p->given = text;
  if (curve_) {
    p->server_key = curve_->ServerKeyOf(ep->pub);
    if (p->server_key.empty()) {
      return Status::InvalidArgument("curve_peers has no key for peer " + ep->pub +
                                     " (its .pub file names the endpoint it listens on)");
    }
  }
  p->sub = std::make_unique<zmq::socket_t>(sockets_->ctx, zmq::socket_type::sub);
  p->sub->set(zmq::sockopt::linger, 0);
  p->sub->set(zmq::sockopt::rcvhwm, kSndHwm);
  if (curve_) curve_->MakeClient(*p->sub, p->server_key);
  p->sub->set(zmq::sockopt::subscribe, wire::Header(wire::Kind::kUpdate));
  p->sub->set(zmq::sockopt::subscribe, wire::Header(wire::Kind::kHeartbeat));
  p->sub->connect(ep->pub);
  p->dealer = ConnectDealer(sockets_->ctx, ep->router, p->server_key);
  peers_.push_back(std::move(p));
  return Status::OK();
}

std::unique_ptr<zmq::socket_t> Replicator::ConnectDealer(zmq::context_t& ctx,
                                                         const std::string& endpoint,
                                                         const std::string& server_key) const {
  auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  s->set(zmq::sockopt::linger, 0);
  s->set(zmq::sockopt::rcvhwm, 0);  // a snapshot arrives whole
  if (curve_) curve_->MakeClient(*s, server_key);
  s->connect(endpoint);
  return s;
}

Replicator::~Replicator() {
  table_->SetChangeSink(nullptr);
  stop_ = true;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  for (auto& p : peers_) {
    p->sub.reset();
    p->dealer.reset();
  }
  sockets_.reset();
  if (wake_fd_ >= 0) close(wake_fd_);
}

// ---- Any thread ----

void Replicator::SetListener(Listener listener) {
  MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

void Replicator::Publish(std::vector<wire::Change>&& changes) {
  {
    MutexLock lock(&mu_);
    for (auto& c : changes) outbox_.push_back(std::move(c));
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

std::vector<PeerInfo> Replicator::Peers() const {
  MutexLock lock(&mu_);
  std::vector<PeerInfo> out;
  for (size_t k = 0; k < peers_.size(); ++k) {
    const PeerStatus& st = shown_[k];
    PeerInfo i;
    i.endpoint = peers_[k]->ep.pub;
    i.instance = st.instance;
    i.reason = st.reason;
    i.last_heard_ms = st.last_heard_wall;
    i.applied_seq = st.applied;
    i.published_seq = st.published;
    i.snapshots = st.snapshots;
    i.status = st.refused         ? "refused"
               : st.instance == 0 ? "connecting"
               : !st.up           ? "down"
               : st.syncing       ? "syncing"
                                  : "up";
    out.push_back(std::move(i));
  }
  return out;
}

bool Replicator::IsUp(InstanceId instance) const {
  MutexLock lock(&mu_);
  for (const PeerStatus& st : shown_) {
    if (st.instance == instance && !st.refused) return st.up;
  }
  return false;
}

void Replicator::Loop() { Reactor(*this).Run(); }

// ---- The reactor: its loop and the node's own events ----

Replicator::Reactor::Reactor(Replicator& r)
    : r_(r), so_(*r.sockets_), counters_(r.counters_), self_(r.opts_.instance) {}

void Replicator::Reactor::Run() {
  while (!r_.stop_) {
    if (!PollOnce()) break;
  }
}

bool Replicator::Reactor::PollOnce() {
  std::vector<zmq::pollitem_t> items;
  items.push_back({nullptr, r_.wake_fd_, ZMQ_POLLIN, 0});
  if (so_.router) items.push_back({so_.router->handle(), 0, ZMQ_POLLIN, 0});
  if (so_.zap) items.push_back({so_.zap->handle(), 0, ZMQ_POLLIN, 0});
  std::vector<std::pair<Peer*, bool>> owners;  // per item after the fixed ones: (peer, is_sub)
  for (auto& p : r_.peers_) {
    if (p->st.refused) continue;
    items.push_back({p->sub->handle(), 0, ZMQ_POLLIN, 0});
    owners.emplace_back(p.get(), true);
    items.push_back({p->dealer->handle(), 0, ZMQ_POLLIN, 0});
    owners.emplace_back(p.get(), false);
  }
  const long wait = std::max<long>(0, static_cast<long>(next_heartbeat_ - SteadyMs()));
  try {
    zmq::poll(items.data(), items.size(),
              std::chrono::milliseconds(std::min<long>(wait, kMaxPollMs)));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return true;
    VY_LOG_ERROR("cluster: poll: %s", e.what());
    return false;
  }
  try {
    size_t i = 0;
    if (items[i++].revents & ZMQ_POLLIN) {
      uint64_t n;
      (void)!read(r_.wake_fd_, &n, sizeof n);
    }
    OnOutbox();  // whatever woke us: publish what the table committed
    if (so_.router && (items[i++].revents & ZMQ_POLLIN)) OnRouter();
    if (so_.zap && (items[i++].revents & ZMQ_POLLIN)) OnZap();
    for (size_t k = 0; k < owners.size(); ++k, ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      Peer& p = *owners[k].first;
      if (p.st.refused) continue;
      if (owners[k].second) {
        OnSub(p);
      } else {
        OnDealer(p);
      }
    }
    if (SteadyMs() >= next_heartbeat_) OnTimer();
  } catch (const zmq::error_t& e) {
    VY_LOG_ERROR("cluster: %s", e.what());
  }
  return true;
}

void Replicator::Reactor::OnOutbox() {
  std::deque<wire::Change> out;
  {
    MutexLock lock(&r_.mu_);
    out.swap(r_.outbox_);
  }
  for (auto& c : out) {
    if (so_.pub) SendFrames(*so_.pub, wire::Encode(wire::Kind::kUpdate, c));
    ++counters_.published;
  }
}

void Replicator::Reactor::OnTimer() {
  const ClusterOptions& o = r_.opts_;
  const int64_t now = SteadyMs();
  next_heartbeat_ = now + o.heartbeat_ms;
  if (so_.pub) {
    wire::Heartbeat h{self_, r_.table_->published_seq(), NowNs()};
    // The sequence number is read after draining the outbox, so a peer never hears
    // of a change before the change itself.
    MutexLock lock(&r_.mu_);
    if (r_.outbox_.empty()) {
      SendFrames(*so_.pub, wire::Encode(wire::Kind::kHeartbeat, h));
      ++counters_.heartbeats;
    } else {
      next_heartbeat_ = now;  // publish the outbox first
    }
  }
  for (auto& p : r_.peers_) {
    if (p->st.refused || p->st.instance == 0) continue;
    if (p->st.up && now - p->last_heard > int64_t{o.down_after} * o.heartbeat_ms) {
      p->st.up = false;
      Show(*p);
      VY_LOG_WARN("cluster: instance %u (%s) is down: no heartbeat for %d ms", p->st.instance,
                  p->ep.pub.c_str(), o.down_after * o.heartbeat_ms);
    }
    if (p->st.syncing && p->st.up && now - p->sync_progress > o.snapshot_timeout_ms) {
      // The request or its answer was lost (the peer restarted): ask again on a
      // fresh socket, so a late half of the old answer cannot mix in.
      p->dealer = r_.ConnectDealer(so_.ctx, p->ep.router, p->server_key);
      RequestSnapshot(*p);
    }
  }
}

void Replicator::Reactor::OnZap() {
  r_.curve_->ServeZap(*so_.zap, [this](const std::string& key, const std::string& address) {
    ++counters_.auth_refused;
    if (!key.empty()) Complain("curve", "a client with unknown key " + key + " from " + address);
  });
}

void Replicator::Reactor::Complain(const std::string& who, const std::string& what) {
  const int64_t now = SteadyMs();
  auto& t = last_logged_[who];
  if (now - t >= 1000) {
    t = now;
    VY_LOG_WARN("cluster: %s: %s (dropped)", who.c_str(), what.c_str());
  }
}

void Replicator::Reactor::Show(const Peer& p) {
  MutexLock lock(&r_.mu_);
  r_.shown_[p.index] = p.st;
}

}  // namespace vineyard
