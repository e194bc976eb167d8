// Sending and receiving whole multipart messages of the replication wire format
// (meta/wire.h) on a real ZeroMQ socket, for the tests that play a peer themselves.
#ifndef VINEYARDFS_TESTS_INTEGRATION_WIRE_IO_H_
#define VINEYARDFS_TESTS_INTEGRATION_WIRE_IO_H_

#include <chrono>
#include <set>
#include <string>
#include <zmq.hpp>

#include "meta/wire.h"

namespace vyit {

inline void Send(zmq::socket_t& s, const vineyard::wire::Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    s.send(zmq::buffer(frames[i]),
           i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

// Receives one multipart message within `timeout_ms`; false if none came.
inline bool Recv(zmq::socket_t& s, vineyard::wire::Frames* out, int timeout_ms) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return false;
  out->clear();
  for (;;) {
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::none)) return false;
    out->push_back(m.to_string());
    if (!m.more()) return true;
  }
}

// A peer played by a test: an XPUB and a ROUTER bound on loopback `port` and `port`+1,
// as a node's listen= endpoint binds them.
struct FakePeer {
  FakePeer(zmq::context_t& ctx, int port)
      : pub(ctx, zmq::socket_type::xpub), router(ctx, zmq::socket_type::router) {
    pub.set(zmq::sockopt::linger, 0);
    pub.bind("tcp://127.0.0.1:" + std::to_string(port));
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:" + std::to_string(port + 1));
  }
  // The prefixes subscribed to, once `n` distinct ones came (fewer if a wait of
  // `timeout_ms` saw none). Publish only after this: XPUB drops what nobody heard.
  std::set<std::string> AwaitSubscriptions(size_t n, int timeout_ms) {
    std::set<std::string> subs;
    while (subs.size() < n) {
      vineyard::wire::Frames f;
      if (!Recv(pub, &f, timeout_ms)) break;
      if (!f[0].empty() && f[0][0] == 1) subs.insert(f[0].substr(1));
    }
    return subs;
  }
  zmq::socket_t pub, router;
};

}  // namespace vyit

#endif  // VINEYARDFS_TESTS_INTEGRATION_WIRE_IO_H_
