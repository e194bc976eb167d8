// Sending and receiving whole multipart messages of the replication wire format
// (meta/wire.h) on a real ZeroMQ socket, for the tests that play a peer themselves.
#ifndef VINEYARDFS_TESTS_INTEGRATION_WIRE_IO_H_
#define VINEYARDFS_TESTS_INTEGRATION_WIRE_IO_H_

#include <chrono>
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

}  // namespace vyit

#endif  // VINEYARDFS_TESTS_INTEGRATION_WIRE_IO_H_
