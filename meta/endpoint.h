// Cluster endpoints as listen= and peer= give them (DESIGN.md §7): a node publishes
// on PORT and serves snapshots and payloads on PORT+1.
#pragma once

#include <string>

#include "meta/status.h"

namespace vineyard {

// A parsed endpoint: the PUB (given) and ROUTER (port + 1) addresses.
struct Endpoint {
  std::string pub, router;
  std::string host;
  bool loopback = false;
};
// "7000" -> tcp://127.0.0.1:7000; "tcp://HOST:PORT" as given (HOST may be "*").
// InvalidArgument for anything else, or a port outside 1..65534.
Result<Endpoint> ParseEndpoint(const std::string& text);

}  // namespace vineyard
