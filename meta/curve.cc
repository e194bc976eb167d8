#include "meta/curve.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <zmq.hpp>

#include "meta/endpoint.h"

namespace vineyard {

namespace {

constexpr size_t kZ85KeyLength = 40;  // 32 bytes in Z85
constexpr size_t kRawKeyLength = 32;

bool IsZ85Key(const std::string& k) {
  if (k.size() != kZ85KeyLength) return false;
  uint8_t raw[kRawKeyLength];
  return zmq_z85_decode(raw, k.c_str()) != nullptr;
}

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  *ok = static_cast<bool>(in) || in.eof();
  return ss.str();
}

// Creates `path` (it must not exist) holding `text`; 0 or the errno of the failure,
// in which case nothing is left behind.
int WriteNew(const std::string& path, const std::string& text, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  ssize_t n = write(fd, text.data(), text.size());
  int err = n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : EIO);
  if (close(fd) != 0 && err == 0) err = errno;
  if (err != 0) unlink(path.c_str());
  return err;
}

// One file of curve_peers=; InvalidArgument naming it if it is not a key file.
Result<PeerKey> ParsePeerKey(const std::string& dir, const std::string& name,
                             const std::string& text) {
  std::istringstream in(text);
  PeerKey k;
  k.file = name;
  in >> k.public_key >> k.endpoint;
  if (!IsZ85Key(k.public_key)) {
    return Status::InvalidArgument("curve_peers: " + dir + "/" + name +
                                   " does not start with a Z85 public key");
  }
  if (!k.endpoint.empty()) {
    auto ep = ParseEndpoint(k.endpoint);
    if (!ep.ok()) {
      return Status::InvalidArgument("curve_peers: " + dir + "/" + name + ": " +
                                     ep.status().message());
    }
    k.endpoint = ep->pub;
  }
  return k;
}

}  // namespace

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
    auto k = ParsePeerKey(dir, name, text);
    if (!k.ok()) {
      bad = k.status();
      break;
    }
    keys.push_back(std::move(*k));
  }
  closedir(d);
  if (!bad.ok()) return bad;
  std::sort(keys.begin(), keys.end(),
            [](const PeerKey& a, const PeerKey& b) { return a.file < b.file; });
  return keys;
}

Result<KeyPairFiles> WriteKeyPair(const std::string& path, const std::string& endpoint) {
  char pub[kZ85KeyLength + 1], secret[kZ85KeyLength + 1];
  if (zmq_curve_keypair(pub, secret) != 0) {
    return Status::NotSupported(std::string(zmq_strerror(errno)) +
                                " (libzmq was built without CURVE?)");
  }
  KeyPairFiles files{path + ".key", path + ".pub"};
  if (int err = WriteNew(files.secret_file, std::string(secret) + "\npublic " + pub + "\n", 0600)) {
    return Status::FromErrno(files.secret_file, err);
  }
  std::string line = pub;
  if (!endpoint.empty()) line += " " + endpoint;
  if (int err = WriteNew(files.public_file, line + "\n", 0644)) {
    unlink(files.secret_file.c_str());
    return Status::FromErrno(files.public_file, err);
  }
  return files;
}

Result<std::unique_ptr<Curve>> Curve::Load(const std::string& secret_file,
                                           const std::string& peers_dir) {
  std::unique_ptr<Curve> c(new Curve());
  auto secret = LoadSecretKey(secret_file);
  if (!secret.ok()) return secret.status();
  c->secret_key_ = *secret;
  char pub[kZ85KeyLength + 1];
  if (zmq_curve_public(pub, c->secret_key_.c_str()) != 0) {
    return Status::InvalidArgument("curve_secret: not a usable key (is libzmq built with CURVE?)");
  }
  c->public_key_ = pub;
  auto keys = LoadPeerKeys(peers_dir);
  if (!keys.ok()) return keys.status();
  c->keys_ = std::move(*keys);
  return c;
}

std::string Curve::ServerKeyOf(const std::string& pub_endpoint) const {
  std::string key;
  for (auto& k : keys_) {
    if (k.endpoint == pub_endpoint) key = k.public_key;  // the last file naming it
  }
  return key;
}

void Curve::MakeServer(zmq::socket_t& s) const {
  s.set(zmq::sockopt::curve_server, 1);
  s.set(zmq::sockopt::curve_secretkey, secret_key_);
  s.set(zmq::sockopt::zap_domain, "vineyardfs");
}

void Curve::MakeClient(zmq::socket_t& s, const std::string& server_key) const {
  s.set(zmq::sockopt::curve_serverkey, server_key);
  s.set(zmq::sockopt::curve_publickey, public_key_);
  s.set(zmq::sockopt::curve_secretkey, secret_key_);
}

std::unique_ptr<zmq::socket_t> Curve::BindZap(zmq::context_t& ctx) {
  auto zap = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::rep);
  zap->bind("inproc://zeromq.zap.01");
  return zap;
}

void Curve::ServeZap(zmq::socket_t& zap, const Refused& refused) const {
  std::vector<zmq::message_t> parts;
  for (;;) {
    // One whole request, without waiting for the first part.
    parts.clear();
    for (bool more = true; more;) {
      zmq::message_t m;
      if (!zap.recv(m, parts.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none)) return;
      more = m.more();
      parts.push_back(std::move(m));
    }
    // ZAP 1.0 (RFC 27): version, request id, domain, address, identity, mechanism,
    // then the CURVE client key (32 bytes).
    std::string status = "400", text = "unknown key";
    if (parts.size() >= 7 && parts[5].to_string() == "CURVE" && parts[6].size() == kRawKeyLength) {
      char z85[kZ85KeyLength + 1];
      zmq_z85_encode(z85, static_cast<const uint8_t*>(parts[6].data()), kRawKeyLength);
      for (auto& k : keys_) {
        if (k.public_key == z85) {
          status = "200";
          text = "OK";
        }
      }
      if (status != "200") refused(z85, parts[3].to_string());
    } else {
      refused("", parts.size() > 3 ? parts[3].to_string() : "");
    }
    const std::string req_id = parts.size() > 1 ? parts[1].to_string() : "";
    const std::string reply[] = {"1.0", req_id, status, text, "", ""};
    for (size_t i = 0; i < 6; ++i) {
      auto flags = (i + 1 < 6 ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                   zmq::send_flags::dontwait;
      if (!zap.send(zmq::buffer(reply[i]), flags)) break;
    }
  }
}

}  // namespace vineyard
