#include "meta/replicator.h"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <zmq.hpp>

#include "meta/log.h"

namespace vineyard {

namespace {

int64_t SteadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

uint64_t NowNs() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

constexpr int kSndHwm = 200000;  // updates queued for one slow subscriber, then a gap
constexpr size_t kFetchWindow = 8;  // chunks in flight per fetch
constexpr size_t kBatch = 4096;  // updates applied per journal commit, at most
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

bool IsZ85Key(const std::string& k) {
  if (k.size() != 40) return false;
  uint8_t raw[32];
  return zmq_z85_decode(raw, k.c_str()) != nullptr;
}

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  *ok = static_cast<bool>(in) || in.eof();
  return ss.str();
}

// Sends frames as one multipart message (non-blocking: a full queue drops it).
bool SendFrames(zmq::socket_t& s, const wire::Frames& frames, bool more_after = false) {
  for (size_t i = 0; i < frames.size(); ++i) {
    bool more = more_after || i + 1 < frames.size();
    auto r =
        s.send(zmq::buffer(frames[i]), (more ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                                           zmq::send_flags::dontwait);
    if (!r) return false;
  }
  return true;
}

// Receives one whole multipart message without waiting; false if there is none.
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

void SetCurveClient(zmq::socket_t& s, const std::string& server, const std::string& pub,
                    const std::string& secret) {
  if (secret.empty()) return;
  s.set(zmq::sockopt::curve_serverkey, server);
  s.set(zmq::sockopt::curve_publickey, pub);
  s.set(zmq::sockopt::curve_secretkey, secret);
}

}  // namespace

Result<Endpoint> ParseEndpoint(const std::string& text) {
  std::string host, port;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    host = "127.0.0.1";
    port = text;
  } else if (text.rfind("tcp://", 0) == 0) {
    std::string rest = text.substr(6);
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return Status::InvalidArgument("endpoint '" + text + "' has no host:port");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    return Status::InvalidArgument("endpoint '" + text +
                                   "' must be tcp://HOST:PORT or a port number");
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || p < 1 || p > 65534) {
    return Status::InvalidArgument("endpoint '" + text + "': port must be 1..65534 (PORT+1 " +
                                   "serves snapshots and payloads)");
  }
  Endpoint e;
  e.host = host;
  e.pub = "tcp://" + host + ":" + std::to_string(p);
  e.router = "tcp://" + host + ":" + std::to_string(p + 1);
  e.loopback = host == "localhost" || host.rfind("127.", 0) == 0 || host == "[::1]" ||
               host == "::1" || host == "lo";
  return e;
}

Result<std::string> LoadSecretKey(const std::string& file) {
  bool ok = false;
  std::string text = ReadFile(file, &ok);
  if (!ok) return Status::InvalidArgument("curve_secret: cannot read " + file);
  std::istringstream in(text);
  std::string key;
  in >> key;
  if (!IsZ85Key(key)) {
    return Status::InvalidArgument("curve_secret: " + file +
                                   " does not start with a Z85 secret key (vyctl keygen)");
  }
  return key;
}

Result<std::vector<PeerKey>> LoadPeerKeys(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return Status::InvalidArgument("curve_peers: cannot open directory " + dir);
  std::vector<PeerKey> keys;
  Status bad;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name[0] == '.') continue;
    bool ok = false;
    std::string text = ReadFile(dir + "/" + name, &ok);
    if (!ok) continue;  // a subdirectory
    std::istringstream in(text);
    PeerKey k;
    k.file = name;
    in >> k.public_key >> k.endpoint;
    if (!IsZ85Key(k.public_key)) {
      bad = Status::InvalidArgument("curve_peers: " + dir + "/" + name +
                                    " does not start with a Z85 public key");
      break;
    }
    if (!k.endpoint.empty()) {
      auto ep = ParseEndpoint(k.endpoint);
      if (!ep.ok()) {
        bad = Status::InvalidArgument("curve_peers: " + dir + "/" + name + ": " +
                                      ep.status().message());
        break;
      }
      k.endpoint = ep->pub;
    }
    keys.push_back(std::move(k));
  }
  closedir(d);
  if (!bad.ok()) return bad;
  std::sort(keys.begin(), keys.end(),
            [](const PeerKey& a, const PeerKey& b) { return a.file < b.file; });
  return keys;
}

// ---- The replicator's state ----

struct Replicator::Peer {
  Endpoint ep;
  std::string given;  // the peer= text
  std::string server_key;
  std::unique_ptr<zmq::socket_t> sub, dealer;  // the thread's; null once refused
  // Below: written by the thread under mu_, read by Peers().
  InstanceId instance = 0;
  bool refused = false;
  std::string reason;
  int64_t last_heard = 0;  // steady ms
  int64_t last_heard_wall = 0;
  bool up = false;
  uint64_t applied = 0, published = 0, snapshots = 0;
  // The thread's alone.
  bool syncing = false;
  int64_t sync_progress = 0;  // steady ms of the last snapshot message
  std::vector<wire::Change> snap;
  std::deque<wire::Change> buffered;
};

struct Replicator::Sockets {
  zmq::context_t ctx;
  std::unique_ptr<zmq::socket_t> pub, router, zap;
};

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
    auto secret = LoadSecretKey(opts_.curve_secret);
    if (!secret.ok()) return secret.status();
    secret_key_ = *secret;
    char pub[41];
    if (zmq_curve_public(pub, secret_key_.c_str()) != 0) {
      return Status::InvalidArgument(
          "curve_secret: not a usable key (is libzmq built with CURVE?)");
    }
    public_key_ = pub;
    auto keys = LoadPeerKeys(opts_.curve_peers);
    if (!keys.ok()) return keys.status();
    keys_ = std::move(*keys);
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::FromErrno("eventfd", errno);
  sockets_ = std::make_unique<Sockets>();
  auto& ctx = sockets_->ctx;
  try {
    if (curve()) {
      // The ZAP handler must be bound before any CURVE server socket.
      sockets_->zap = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::rep);
      sockets_->zap->bind("inproc://zeromq.zap.01");
    }
    if (!opts_.listen.empty()) {
      auto ep = ParseEndpoint(opts_.listen);
      if (!ep.ok()) return Status::InvalidArgument("listen: " + ep.status().message());
      if (!ep->loopback && !curve()) {
        VY_LOG_WARN(
            "listening on %s without CURVE: any host that reaches it can read and "
            "feed this node's metadata (set curve_secret= and curve_peers=)",
            ep->pub.c_str());
      }
      auto server = [&](zmq::socket_type type) {
        auto s = std::make_unique<zmq::socket_t>(ctx, type);
        s->set(zmq::sockopt::linger, 0);
        if (curve()) {
          s->set(zmq::sockopt::curve_server, 1);
          s->set(zmq::sockopt::curve_secretkey, secret_key_);
          s->set(zmq::sockopt::zap_domain, "vineyardfs");
        }
        return s;
      };
      sockets_->pub = server(zmq::socket_type::pub);
      sockets_->pub->set(zmq::sockopt::sndhwm, kSndHwm);
      sockets_->router = server(zmq::socket_type::router);
      sockets_->router->set(zmq::sockopt::router_mandatory, 0);
      // A snapshot is sent whole, however large: no high-water mark on the ROUTER.
      // What it holds is bounded in bytes instead (kMaxRouterQueueBytes).
      sockets_->router->set(zmq::sockopt::sndhwm, 0);
      sockets_->pub->bind(ep->pub);
      sockets_->router->bind(ep->router);
    }
    for (const std::string& text : opts_.peers) {
      auto ep = ParseEndpoint(text);
      if (!ep.ok()) return Status::InvalidArgument("peer: " + ep.status().message());
      auto p = std::make_unique<Peer>();
      p->ep = *ep;
      p->given = text;
      if (curve()) {
        for (auto& k : keys_) {
          if (k.endpoint == ep->pub) p->server_key = k.public_key;
        }
        if (p->server_key.empty()) {
          return Status::InvalidArgument("curve_peers has no key for peer " + ep->pub +
                                         " (its .pub file names the endpoint it listens on)");
        }
      }
      p->sub = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
      p->sub->set(zmq::sockopt::linger, 0);
      p->sub->set(zmq::sockopt::rcvhwm, kSndHwm);
      SetCurveClient(*p->sub, p->server_key, public_key_, secret_key_);
      p->sub->set(zmq::sockopt::subscribe, wire::Header(wire::Kind::kUpdate));
      p->sub->set(zmq::sockopt::subscribe, wire::Header(wire::Kind::kHeartbeat));
      p->sub->connect(ep->pub);
      p->dealer = ConnectDealer(ctx, ep->router, p->server_key);
      peers_.push_back(std::move(p));
    }
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument(std::string("cluster sockets: ") + e.what());
  }
  return Status::OK();
}

std::unique_ptr<zmq::socket_t> Replicator::ConnectDealer(zmq::context_t& ctx,
                                                         const std::string& endpoint,
                                                         const std::string& server_key) const {
  auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  s->set(zmq::sockopt::linger, 0);
  s->set(zmq::sockopt::rcvhwm, 0);  // a snapshot arrives whole
  SetCurveClient(*s, server_key, public_key_, secret_key_);
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

void Replicator::SetListener(Listener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(listener);
}

void Replicator::Publish(std::vector<wire::Change>&& changes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : changes) outbox_.push_back(std::move(c));
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

std::vector<PeerInfo> Replicator::Peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PeerInfo> out;
  for (auto& p : peers_) {
    PeerInfo i;
    i.endpoint = p->ep.pub;
    i.instance = p->instance;
    i.reason = p->reason;
    i.last_heard_ms = p->last_heard_wall;
    i.applied_seq = p->applied;
    i.published_seq = p->published;
    i.snapshots = p->snapshots;
    i.status = p->refused         ? "refused"
               : p->instance == 0 ? "connecting"
               : !p->up           ? "down"
               : p->syncing       ? "syncing"
                                  : "up";
    out.push_back(std::move(i));
  }
  return out;
}

bool Replicator::IsUp(InstanceId instance) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& p : peers_) {
    if (p->instance == instance && !p->refused) return p->up;
  }
  return false;
}

// ---- The thread ----

void Replicator::Loop() {
  Sockets& so = *sockets_;
  const InstanceId self = opts_.instance;
  std::vector<zmq::message_t> parts;
  int64_t next_heartbeat = 0;
  // One line per kind of trouble per peer and second at most, so a hostile peer
  // cannot flood the log; every occurrence is counted.
  std::map<std::string, int64_t> last_logged;
  auto complain = [&](const std::string& who, const std::string& what) {
    int64_t now = SteadyMs();
    auto& t = last_logged[who];
    if (now - t >= 1000) {
      t = now;
      VY_LOG_WARN("cluster: %s: %s (dropped)", who.c_str(), what.c_str());
    }
  };
  // Records a peer sent that the table refused: logged and answered with an Error
  // frame on the DEALER to that peer's ROUTER, so its operator sees why (both at most
  // once a second per peer; every refusal is counted). Messages that do not decode
  // are only logged and counted (`complain`).
  auto refuse_input = [&](Peer& p, const std::string& what) {
    int64_t now = SteadyMs();
    auto& t = last_logged[p.ep.pub + " refused"];
    if (now - t < 1000) return;
    t = now;
    VY_LOG_WARN("cluster: %s (instance %u): %s (refused)", p.ep.pub.c_str(), p.instance,
                what.c_str());
    if (p.dealer) {
      SendFrames(*p.dealer,
                 wire::Encode(wire::Kind::kError, wire::ErrorReply{EINVAL, wire::OneLine(what)}));
    }
  };
  auto notify = [&](Peer& p, const ObjectTable::Applied& a) {
    counters_.rejected += a.rejected.size();
    if (!a.rejected.empty()) refuse_input(p, a.rejected.front());
    Listener l;
    {
      std::lock_guard<std::mutex> lock(mu_);
      l = listener_;
    }
    if (l && (!a.objects.empty() || !a.names.empty())) l(a);
  };
  auto request_snapshot = [&](Peer& p) {
    p.syncing = true;
    p.sync_progress = SteadyMs();
    p.snap.clear();
    wire::SnapshotRequest req{p.instance, self};
    SendFrames(*p.dealer, wire::Encode(wire::Kind::kSnapshotRequest, req));
  };
  auto refuse = [&](Peer& p, const std::string& why) {
    VY_LOG_ERROR("cluster: peer %s refused: %s", p.ep.pub.c_str(), why.c_str());
    std::lock_guard<std::mutex> lock(mu_);
    p.refused = true;
    p.reason = why;
    p.up = false;
    p.sub.reset();
    p.dealer.reset();
    ++counters_.refused_peers;
  };
  // Applies in-order updates of `p` from `pending`; a gap starts a snapshot and
  // keeps the rest.
  auto apply_updates = [&](Peer& p, std::deque<wire::Change>& pending) {
    std::vector<wire::Change> batch;
    auto flush = [&] {
      if (batch.empty()) return;
      auto applied = table_->ApplyRemote(batch);
      if (!applied.ok()) {
        VY_LOG_ERROR("cluster: applying updates of %u: %s", p.instance,
                     applied.status().ToString().c_str());
      } else {
        counters_.applied += batch.size();
        notify(p, *applied);
      }
      std::lock_guard<std::mutex> lock(mu_);
      p.applied = batch.back().seq;
      batch.clear();
    };
    uint64_t next = p.applied + 1;
    while (!pending.empty()) {
      wire::Change& c = pending.front();
      if (c.seq < next) {
        pending.pop_front();  // older than what we have
        continue;
      }
      if (c.seq > next) {
        flush();
        ++counters_.gaps;
        VY_LOG_INFO(
            "cluster: gap in the updates of instance %u (expected %llu, got %llu): "
            "taking a snapshot",
            p.instance, static_cast<unsigned long long>(next),
            static_cast<unsigned long long>(c.seq));
        request_snapshot(p);
        p.buffered.insert(p.buffered.end(), std::make_move_iterator(pending.begin()),
                          std::make_move_iterator(pending.end()));
        pending.clear();
        return;
      }
      batch.push_back(std::move(c));
      pending.pop_front();
      ++next;
      if (batch.size() >= kBatch) flush();
    }
    flush();
  };
  // The first message of a peer names it; it must not be us or another peer.
  auto identify = [&](Peer& p, InstanceId origin) -> bool {
    if (p.instance == origin) return true;
    if (p.instance != 0) {
      ++counters_.malformed;
      complain(p.ep.pub, "a message for instance " + std::to_string(origin) + " from instance " +
                             std::to_string(p.instance));
      return false;
    }
    if (origin == self) {
      refuse(p, "it claims instance " + std::to_string(origin) + ", which is this node's own id");
      return false;
    }
    for (auto& q : peers_) {
      if (q.get() != &p && q->instance == origin && !q->refused) {
        refuse(p, "it claims instance " + std::to_string(origin) + ", already used by peer " +
                      q->ep.pub);
        return false;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      p.instance = origin;
    }
    VY_LOG_INFO("cluster: peer %s is instance %u", p.ep.pub.c_str(), origin);
    request_snapshot(p);
    return true;
  };
  auto heard = [&](Peer& p) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!p.up && p.instance != 0) VY_LOG_INFO("cluster: instance %u is up", p.instance);
    p.up = true;
    p.last_heard = SteadyMs();
    p.last_heard_wall = NowMs();
  };

  auto on_sub = [&](Peer& p) {
    std::deque<wire::Change> updates;
    for (int n = 0; n < 10000 && p.sub && RecvParts(*p.sub, &parts); ++n) {
      auto m = wire::Decode(ToFrames(parts, 0));
      if (!m.ok()) {
        ++counters_.malformed;
        complain(p.ep.pub, m.status().message());
        continue;
      }
      if (m->kind == wire::Kind::kUpdate) {
        auto& c = std::get<wire::Change>(m->body);
        if (!identify(p, c.origin)) continue;
        heard(p);
        updates.push_back(std::move(c));
      } else if (m->kind == wire::Kind::kHeartbeat) {
        auto& h = std::get<wire::Heartbeat>(m->body);
        if (!identify(p, h.origin)) continue;
        heard(p);
        {
          std::lock_guard<std::mutex> lock(mu_);
          p.published = h.last_seq;
        }
        if (!p.syncing && updates.empty() && h.last_seq != p.applied) {
          // Missed the last updates (or the origin's state was reset): resync.
          ++counters_.gaps;
          request_snapshot(p);
        }
      } else {
        ++counters_.malformed;
        complain(p.ep.pub, "a message of kind " + std::string(1, static_cast<char>(m->kind)) +
                               " on the update stream");
      }
    }
    if (p.refused || updates.empty()) return;
    if (p.syncing) {
      p.buffered.insert(p.buffered.end(), std::make_move_iterator(updates.begin()),
                        std::make_move_iterator(updates.end()));
    } else {
      apply_updates(p, updates);
    }
  };

  auto on_dealer = [&](Peer& p) {
    for (int n = 0; n < 10000 && p.dealer && RecvParts(*p.dealer, &parts); ++n) {
      auto m = wire::Decode(ToFrames(parts, 0));
      if (!m.ok()) {
        ++counters_.malformed;
        complain(p.ep.router, m.status().message());
        continue;
      }
      if (!p.syncing) continue;  // a late answer to a request already given up
      p.sync_progress = SteadyMs();
      if (m->kind == wire::Kind::kSnapshotRecord) {
        auto& c = std::get<wire::Change>(m->body);
        if (c.origin != p.instance) {
          ++counters_.malformed;
          complain(p.ep.router, "a snapshot record of instance " + std::to_string(c.origin));
          continue;
        }
        p.snap.push_back(std::move(c));
      } else if (m->kind == wire::Kind::kSnapshotEnd) {
        auto& e = std::get<wire::SnapshotEnd>(m->body);
        if (e.origin != p.instance || e.count != p.snap.size()) {
          ++counters_.malformed;
          complain(p.ep.router, "a snapshot end for instance " + std::to_string(e.origin) +
                                    " with " + std::to_string(e.count) + " records, " +
                                    std::to_string(p.snap.size()) + " received: asking again");
          request_snapshot(p);
          continue;
        }
        auto applied = table_->ApplySnapshot(p.instance, p.snap);
        p.snap.clear();
        p.snap.shrink_to_fit();
        if (!applied.ok()) {
          VY_LOG_ERROR("cluster: snapshot of %u: %s", p.instance,
                       applied.status().ToString().c_str());
        } else {
          notify(p, *applied);
        }
        ++counters_.snapshots_taken;
        p.syncing = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          p.applied = e.seq;
          ++p.snapshots;
        }
        std::deque<wire::Change> rest;
        rest.swap(p.buffered);
        apply_updates(p, rest);
      } else if (m->kind == wire::Kind::kError) {
        auto& x = std::get<wire::ErrorReply>(m->body);
        complain(p.ep.router, "snapshot refused: " + x.reason);
      } else {
        ++counters_.malformed;
        complain(p.ep.router, "an unexpected message on the snapshot socket");
      }
    }
  };

  // Every reply on the ROUTER goes through here, so counters_.router_queued_bytes
  // knows what waits for slow clients.
  // (Error frames are counted apart, against kMaxRouterErrorBytes. The counters
  // outlive the thread: libzmq frees the last messages when the context ends.)
  std::atomic<uint64_t>& error_bytes = counters_.router_error_bytes;
  auto send_counted = [&](const void* data, size_t n, bool more, std::atomic<uint64_t>* queued) {
    zmq::message_t m = CountedMessage(n, queued);
    if (n) std::memcpy(m.data(), data, n);
    so.router->send(m, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
  };
  auto send_reply = [&](const zmq::message_t& who, const wire::Frames& frames,
                        std::atomic<uint64_t>* queued) {
    send_counted(who.data(), who.size(), true, queued);
    for (size_t i = 0; i < frames.size(); ++i) {
      send_counted(frames[i].data(), frames[i].size(), i + 1 < frames.size(), queued);
    }
  };
  auto reply_error = [&](const zmq::message_t& who, int code, const std::string& reason) {
    if (error_bytes.load() >= kMaxRouterErrorBytes) return;  // nobody reads them
    send_reply(who, wire::Encode(wire::Kind::kError, wire::ErrorReply{code, reason}), &error_bytes);
  };
  // Whether the ROUTER's queue leaves room for another reply; if not, the request is
  // refused (an Error frame, a log line at most once a second, a count).
  auto router_has_room = [&](const zmq::message_t& who, const char* what) {
    const uint64_t queued = counters_.router_queued_bytes.load();
    if (queued < kMaxRouterQueueBytes) return true;
    ++counters_.router_refused;
    const std::string why = std::string(what) + " refused: " + std::to_string(queued) +
                            " bytes of replies are queued for clients that do not read them " +
                            "(limit " + std::to_string(kMaxRouterQueueBytes) + "); retry later";
    complain("a client of the snapshot socket", why);
    reply_error(who, EBUSY, why);
    return false;
  };
  auto on_router = [&] {
    for (int n = 0; n < 1000 && RecvParts(*so.router, &parts); ++n) {
      if (parts.size() < 2) {
        ++counters_.malformed;
        continue;
      }
      auto m = wire::Decode(ToFrames(parts, 1));
      if (!m.ok()) {
        ++counters_.malformed;
        complain("a client of the snapshot socket", m.status().message());
        reply_error(parts[0], EINVAL, m.status().message());
        continue;
      }
      if (m->kind == wire::Kind::kError) {
        // A peer refused something this node sent (its log says more): no answer.
        complain("a peer's DEALER",
                 "it refused our input: " + std::get<wire::ErrorReply>(m->body).reason);
        continue;
      }
      if (m->kind == wire::Kind::kSnapshotRequest) {
        auto& r = std::get<wire::SnapshotRequest>(m->body);
        if (r.origin != self) {
          reply_error(
              parts[0], ENOENT,
              "this is instance " + std::to_string(self) + ", not " + std::to_string(r.origin));
          continue;
        }
        if (!router_has_room(parts[0], "a snapshot request")) continue;
        std::vector<wire::Change> records;
        uint64_t seq = table_->Snapshot(&records);
        std::atomic<uint64_t>* queued = &counters_.router_queued_bytes;
        for (auto& c : records) {
          send_reply(parts[0], wire::Encode(wire::Kind::kSnapshotRecord, c), queued);
        }
        send_reply(
            parts[0],
            wire::Encode(wire::Kind::kSnapshotEnd, wire::SnapshotEnd{self, seq, records.size()}),
            queued);
        ++counters_.snapshots_served;
      } else if (m->kind == wire::Kind::kFetchRequest) {
        auto& f = std::get<wire::FetchRequest>(m->body);
        if (f.blob.instance() != self) {
          reply_error(parts[0], ENOENT, f.blob.ToString() + " is not made by this node");
          continue;
        }
        if (!router_has_room(parts[0], "a fetch request")) continue;
        zmq::message_t chunk = CountedMessage(f.length, &counters_.router_queued_bytes);
        uint32_t len = f.length;
        auto total = reader_(f.blob, f.offset, static_cast<char*>(chunk.data()), &len);
        if (!total.ok()) {
          const Status::Code code = total.status().code();
          reply_error(parts[0],
                      code == Status::Code::kNotFound          ? ENOENT
                      : code == Status::Code::kInvalidArgument ? EINVAL
                                                               : EIO,
                      total.status().message());
          continue;
        }
        if (len < f.length) {
          zmq::message_t shorter = CountedMessage(len, &counters_.router_queued_bytes);
          std::memcpy(shorter.data(), chunk.data(), len);
          chunk = std::move(shorter);
        }
        wire::FetchReply head{f.blob, f.offset, *total, {}};
        wire::Frames frames = wire::Encode(wire::Kind::kFetchReply, head);
        std::atomic<uint64_t>* queued = &counters_.router_queued_bytes;
        send_counted(parts[0].data(), parts[0].size(), true, queued);
        send_counted(frames[0].data(), frames[0].size(), true, queued);
        send_counted(frames[1].data(), frames[1].size(), true, queued);
        so.router->send(chunk, zmq::send_flags::none);  // zero-copy, counted
        ++counters_.chunks_served;
        counters_.bytes_served += len;
      } else {
        ++counters_.malformed;
        reply_error(parts[0], EINVAL, "not a request");
      }
    }
  };

  auto on_zap = [&] {
    while (RecvParts(*so.zap, &parts)) {
      // ZAP 1.0 (RFC 27): version, request id, domain, address, identity, mechanism,
      // then the CURVE client key (32 bytes).
      std::string status = "400", text = "unknown key";
      if (parts.size() >= 7 && parts[5].to_string() == "CURVE" && parts[6].size() == 32) {
        char z85[41];
        zmq_z85_encode(z85, static_cast<const uint8_t*>(parts[6].data()), 32);
        for (auto& k : keys_) {
          if (k.public_key == z85) {
            status = "200";
            text = "OK";
          }
        }
        if (status != "200") {
          ++counters_.auth_refused;
          complain("curve", std::string("a client with unknown key ") + z85 + " from " +
                                parts[3].to_string());
        }
      } else {
        ++counters_.auth_refused;
      }
      std::string req_id = parts.size() > 1 ? parts[1].to_string() : "";
      wire::Frames reply = {"1.0", req_id, status, text, "", ""};
      SendFrames(*so.zap, reply);
    }
  };

  while (!stop_) {
    std::vector<zmq::pollitem_t> items;
    items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
    if (so.router) items.push_back({so.router->handle(), 0, ZMQ_POLLIN, 0});
    if (so.zap) items.push_back({so.zap->handle(), 0, ZMQ_POLLIN, 0});
    std::vector<std::pair<Peer*, bool>> owners;  // per item after the fixed ones: (peer, is_sub)
    for (auto& p : peers_) {
      if (p->refused) continue;
      items.push_back({p->sub->handle(), 0, ZMQ_POLLIN, 0});
      owners.emplace_back(p.get(), true);
      items.push_back({p->dealer->handle(), 0, ZMQ_POLLIN, 0});
      owners.emplace_back(p.get(), false);
    }
    int64_t now = SteadyMs();
    long wait = std::max<long>(0, static_cast<long>(next_heartbeat - now));
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(std::min<long>(wait, 100)));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      VY_LOG_ERROR("cluster: poll: %s", e.what());
      break;
    }
    try {
      size_t i = 0;
      if (items[i++].revents & ZMQ_POLLIN) {
        uint64_t n;
        (void)!read(wake_fd_, &n, sizeof n);
      }
      // Publish what the table committed.
      std::deque<wire::Change> out;
      {
        std::lock_guard<std::mutex> lock(mu_);
        out.swap(outbox_);
      }
      for (auto& c : out) {
        if (so.pub) SendFrames(*so.pub, wire::Encode(wire::Kind::kUpdate, c));
        ++counters_.published;
      }
      if (so.router && (items[i++].revents & ZMQ_POLLIN)) on_router();
      if (so.zap && (items[i++].revents & ZMQ_POLLIN)) on_zap();
      for (size_t k = 0; k < owners.size(); ++k, ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        Peer& p = *owners[k].first;
        if (p.refused) continue;
        if (owners[k].second) {
          on_sub(p);
        } else {
          on_dealer(p);
        }
      }
      now = SteadyMs();
      if (now >= next_heartbeat) {
        next_heartbeat = now + opts_.heartbeat_ms;
        if (so.pub) {
          wire::Heartbeat h{self, table_->published_seq(), NowNs()};
          // The sequence number is read after draining the outbox above, so a peer
          // never hears of a change before the change itself.
          std::lock_guard<std::mutex> lock(mu_);
          if (outbox_.empty()) {
            SendFrames(*so.pub, wire::Encode(wire::Kind::kHeartbeat, h));
            ++counters_.heartbeats;
          } else {
            next_heartbeat = now;  // publish the outbox first
          }
        }
        for (auto& p : peers_) {
          if (p->refused || p->instance == 0) continue;
          if (p->up && now - p->last_heard > int64_t{opts_.down_after} * opts_.heartbeat_ms) {
            std::lock_guard<std::mutex> lock(mu_);
            p->up = false;
            VY_LOG_WARN("cluster: instance %u (%s) is down: no heartbeat for %d ms", p->instance,
                        p->ep.pub.c_str(), opts_.down_after * opts_.heartbeat_ms);
          }
          if (p->syncing && p->up && now - p->sync_progress > opts_.snapshot_timeout_ms) {
            // The request or its answer was lost (the peer restarted): ask again on a
            // fresh socket, so a late half of the old answer cannot mix in.
            p->dealer = ConnectDealer(so.ctx, p->ep.router, p->server_key);
            request_snapshot(*p);
          }
        }
      }
    } catch (const zmq::error_t& e) {
      VY_LOG_ERROR("cluster: %s", e.what());
    }
  }
}

// ---- Payload fetch (any thread) ----

Status Replicator::Fetch(ObjectID id, uint64_t size, const Sink& append) {
  const InstanceId owner = id.instance();
  std::string router, server_key;
  bool known = false, up = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& p : peers_) {
      if (p->instance == owner && !p->refused) {
        known = true;
        up = p->up;
        router = p->ep.router;
        server_key = p->server_key;
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
  auto fail = [&](Status s) {
    ++counters_.fetch_errors;
    return s;
  };
  if (size == 0) return Status::OK();
  try {
    std::unique_ptr<zmq::socket_t> dealer = ConnectDealer(sockets_->ctx, router, server_key);
    zmq::socket_t& s = *dealer;
    // Chunks are requested in order, several at a time, and handed to `append` in
    // order: a reply that comes early waits in `early` (at most kFetchWindow chunks).
    // Each reply must answer a request still outstanding, exactly.
    uint64_t next = 0, delivered = 0;
    std::map<uint64_t, uint32_t> outstanding;  // offset -> length requested
    std::map<uint64_t, zmq::message_t> early;
    std::vector<zmq::message_t> parts;
    while (delivered < size) {
      while (outstanding.size() < kFetchWindow && next < size) {
        uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(wire::kMaxChunk, size - next));
        SendFrames(s, wire::Encode(wire::Kind::kFetchRequest, wire::FetchRequest{id, next, len}));
        outstanding.emplace(next, len);
        next += len;
      }
      zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(opts_.fetch_timeout_ms)) == 0) {
        return fail(Status::Unavailable("instance " + std::to_string(owner) +
                                        " did not answer a fetch of " + id.ToString() + " within " +
                                        std::to_string(opts_.fetch_timeout_ms) + " ms"));
      }
      if (!RecvParts(s, &parts)) continue;
      // The chunk frame is validated by size only: copying 4 MiB into a string for
      // Decode would cost more than the network.
      if (parts.size() == 3 && parts[0].to_string() == wire::Header(wire::Kind::kFetchReply)) {
        wire::Frames head = {parts[0].to_string(), parts[1].to_string(), std::string()};
        auto m = wire::Decode(head);
        if (!m.ok())
          return fail(Status::IOError("fetch of " + id.ToString() + ": " + m.status().message()));
        auto& r = std::get<wire::FetchReply>(m->body);
        auto asked = outstanding.find(r.offset);
        if (r.blob != id || r.total != size || asked == outstanding.end() ||
            parts[2].size() != asked->second) {
          return fail(Status::IOError("fetch of " + id.ToString() + ": a reply that does not fit"));
        }
        outstanding.erase(asked);
        counters_.fetch_bytes += parts[2].size();
        early.emplace(r.offset, std::move(parts[2]));
        for (auto it = early.begin(); it != early.end() && it->first == delivered;
             it = early.erase(it)) {
          Status w = append(static_cast<const char*>(it->second.data()), it->second.size());
          if (!w.ok()) return fail(w);
          delivered += it->second.size();
        }
        continue;
      }
      auto m = wire::Decode(ToFrames(parts, 0));
      if (m.ok() && m->kind == wire::Kind::kError) {
        auto& x = std::get<wire::ErrorReply>(m->body);
        if (x.code == ENOENT) {
          return fail(Status::NotFound("instance " + std::to_string(owner) + ": " + x.reason));
        }
        return fail(Status::IOError("instance " + std::to_string(owner) + ": " + x.reason));
      }
      ++counters_.malformed;
      return fail(Status::IOError("fetch of " + id.ToString() + ": a malformed reply"));
    }
  } catch (const zmq::error_t& e) {
    return fail(Status::IOError(std::string("fetch: ") + e.what()));
  }
  return Status::OK();
}

}  // namespace vineyard
