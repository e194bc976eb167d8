// CurveZMQ for the cluster (DESIGN.md §7): the key files, key generation, and the
// ZAP handler that admits only known nodes. The one place that knows CURVE; the
// replicator asks it to configure its sockets.
//
// Key files, as `vyctl keygen PATH` writes them and the daemon reads them:
//   PATH.key  (mode 0600, curve_secret=): line 1 the secret key, 40 Z85 characters;
//             line 2 "public <key>" (for the operator; the daemon derives it)
//   PATH.pub  (mode 0644, one per node in every node's curve_peers= directory): the
//             public key, 40 Z85 characters, then optionally whitespace and the
//             endpoint that node listens on (how a node finds the key of a peer=)
// Files in curve_peers= whose name starts with '.' are skipped.
//
// Thread-safety: a Curve is immutable once loaded; its const methods may be called
// from any thread. ServeZap() uses the ZAP socket, which belongs to one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "meta/status.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace vineyard {

// A key file of curve_peers: the public key (40 Z85 characters) and, optionally after
// whitespace, the endpoint that node listens on (as ParseEndpoint's `pub`).
struct PeerKey {
  std::string file, public_key, endpoint;
};
// The files of `dir`, sorted by name. InvalidArgument naming the first bad file.
Result<std::vector<PeerKey>> LoadPeerKeys(const std::string& dir);
// The secret key of curve_secret= (40 Z85 characters; a "public" line may follow).
Result<std::string> LoadSecretKey(const std::string& file);

// The two files `vyctl keygen PATH [--endpoint E]` makes.
struct KeyPairFiles {
  std::string secret_file;  // PATH.key
  std::string public_file;  // PATH.pub
};
// Generates a key pair and writes PATH.key and PATH.pub; neither may exist yet (then
// IOError "PATH.key: File exists", and nothing is left behind).
Result<KeyPairFiles> WriteKeyPair(const std::string& path, const std::string& endpoint);

class Curve {
 public:
  // Loads this node's secret key and the known nodes' public keys.
  static Result<std::unique_ptr<Curve>> Load(const std::string& secret_file,
                                             const std::string& peers_dir);

  const std::string& public_key() const { return public_key_; }
  // The public key of the node listening on `pub_endpoint`; "" if no file names it.
  std::string ServerKeyOf(const std::string& pub_endpoint) const;
  // A PUB or ROUTER socket: CURVE server, clients checked by the ZAP handler.
  void MakeServer(zmq::socket_t& s) const;
  // A SUB or DEALER socket: CURVE client of the server whose public key is `server_key`.
  void MakeClient(zmq::socket_t& s, const std::string& server_key) const;

  // The ZAP handler's socket (RFC 27), bound in `ctx`; it must exist before any
  // CURVE server socket of `ctx` binds.
  static std::unique_ptr<zmq::socket_t> BindZap(zmq::context_t& ctx);
  // Told of each client refused: its key in Z85 ("" when it did not even offer a
  // CURVE key) and its address.
  using Refused = std::function<void(const std::string& key, const std::string& address)>;
  // Answers the ZAP requests waiting on `zap`, without blocking: 200 for a CURVE
  // client whose key is in curve_peers, 400 for anyone else.
  void ServeZap(zmq::socket_t& zap, const Refused& refused) const;

 private:
  Curve() = default;
  std::string secret_key_, public_key_;  // Z85
  std::vector<PeerKey> keys_;
};

}  // namespace vineyard
