// Process helpers shared by the fixture's sources (mount_fixture.cc,
// mount_fixture_files.cc, and cluster_node.cc): reading a pipe, waiting for a child, running a function in a
// child and taking its bytes back. Only those three files include it.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "mount_fixture.h"

namespace vyit {

namespace {

// Reads everything from fd until EOF.
// Reads `fd` to its end; a read error stops it and is stored in *err (if given).
inline std::string Drain(int fd, int* err = nullptr) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && err) *err = errno;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

inline bool WriteFull(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// waitpid with a deadline; returns the status or -1 on timeout.
inline int WaitWithTimeout(pid_t pid, int timeout_ms) {
  int status = -1;
  bool done = PollUntil(
      [&] {
        pid_t r = waitpid(pid, &status, WNOHANG);
        return r == pid || (r < 0 && errno == ECHILD);
      },
      timeout_ms);
  return done ? status : -1;
}

inline int DecodeStatus(int status) {
  if (status == -1) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Forks a child that runs fn and sends its bytes back on a pipe; the first 4
// bytes are the errno (0 for success).
inline std::string ChildTransfer(const std::function<std::string(int*)>& fn, int* err) {
  int fds[2];
  if (pipe(fds) != 0) {
    *err = errno;
    return {};
  }
  pid_t pid = ForkOutsideUploads();
  if (pid == 0) {
    close(fds[0]);
    int e = 0;
    std::string data = fn(&e);
    int32_t e32 = e;
    WriteFull(fds[1], reinterpret_cast<const char*>(&e32), sizeof e32);
    if (e == 0) WriteFull(fds[1], data.data(), data.size());
    _exit(0);
  }
  close(fds[1]);
  std::string all = Drain(fds[0]);
  close(fds[0]);
  int status = WaitWithTimeout(pid, 30000);
  if (status == -1 || all.size() < 4) {
    *err = -1;
    return {};
  }
  int32_t e32;
  std::memcpy(&e32, all.data(), 4);
  *err = e32;
  return e32 == 0 ? all.substr(4) : std::string();
}

}  // namespace

}  // namespace vyit
