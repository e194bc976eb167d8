// vyctl keygen: a CurveZMQ key pair for a cluster node (DESIGN.md §7).
//
//   vyctl keygen PATH [--endpoint ENDPOINT]
//
// writes PATH.key (mode 0600: the secret key, then "public <key>") for the node's
// curve_secret=, and PATH.pub (mode 0644: the public key, then the endpoint the node
// listens on) to copy into every node's curve_peers= directory. Nothing is
// overwritten.
#include "tools/keygen.h"

#include <fcntl.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace vineyard {

namespace {

int WriteNew(const std::string& path, const std::string& text, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  ssize_t n = write(fd, text.data(), text.size());
  int err = n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : EIO);
  if (close(fd) != 0 && err == 0) err = errno;
  if (err != 0) unlink(path.c_str());
  return err;
}

}  // namespace

int GenerateKeyPair(const std::string& path, const std::string& endpoint) {
  char pub[41], secret[41];
  if (zmq_curve_keypair(pub, secret) != 0) {
    std::cerr << "vyctl: keygen: " << zmq_strerror(errno) << " (libzmq was built without CURVE?)\n";
    return 1;
  }
  const std::string key = path + ".key", shared = path + ".pub";
  if (int err = WriteNew(key, std::string(secret) + "\npublic " + pub + "\n", 0600)) {
    std::cerr << "vyctl: keygen: " << key << ": " << std::strerror(err) << "\n";
    return 1;
  }
  std::string line = pub;
  if (!endpoint.empty()) line += " " + endpoint;
  if (int err = WriteNew(shared, line + "\n", 0644)) {
    std::cerr << "vyctl: keygen: " << shared << ": " << std::strerror(err) << "\n";
    unlink(key.c_str());
    return 1;
  }
  std::cout << "secret key: " << key << "  (curve_secret=" << key << ")\n"
            << "public key: " << shared << "  (copy into every node's curve_peers= directory)\n";
  return 0;
}

}  // namespace vineyard
