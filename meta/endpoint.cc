#include "meta/endpoint.h"

#include <cstdlib>

namespace vineyard {

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

}  // namespace vineyard
