#include "meta/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "meta/mutex.h"

namespace vineyard {
namespace {

enum class Dest { kStderr, kSyslog, kFile };

// Set from main before other threads start; read by every thread.
std::atomic<Dest> g_dest{Dest::kStderr};
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_stderr_fd{2};  // "stderr": fd 2, or its copy once fd 2 is captured
std::atomic<int> g_file_fd{-1};
std::atomic<bool> g_echo{false};
Mutex g_path_mu;
std::string g_path GUARDED_BY(g_path_mu);
std::thread g_pump;  // reads the capture pipe; set and joined from main only
std::atomic<bool> g_pump_done{false};

void WriteLine(int fd, const std::string& line) {
  std::string out = line + "\n";
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = write(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere left to report it
    done += static_cast<size_t>(n);
  }
}

void Emit(LogLevel level, const std::string& message) {
  if (static_cast<int>(level) > g_level) return;
  const Dest dest = g_dest;
  if (dest == Dest::kSyslog) {
    syslog(static_cast<int>(level), "%s", message.c_str());
  } else {
    WriteLine(dest == Dest::kFile ? g_file_fd.load() : g_stderr_fd.load(),
              FormatLogLine(level, message));
  }
  if (dest != Dest::kStderr && g_echo && level <= LogLevel::kWarning) {
    WriteLine(g_stderr_fd, FormatLogLine(level, message));
  }
}

// Reads what is written to fd 2 and logs it line by line (see CaptureStderr).
void PumpStderr(int fd) {
  std::string pending;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.empty()) continue;
      // libfuse prefixes its errors with "fuse: "; the rest is its -d trace (or a
      // stray print of a plugin): debug lines when debugging, else kept as info.
      LogLevel level = line.rfind("fuse: ", 0) == 0                    ? LogLevel::kError
                       : g_level >= static_cast<int>(LogLevel::kDebug) ? LogLevel::kDebug
                                                                       : LogLevel::kInfo;
      Emit(level, line);
    }
  }
  close(fd);
  g_pump_done = true;
}

}  // namespace

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
}

std::string FormatLogLine(LogLevel level, const std::string& message) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm utc;
  gmtime_r(&tv.tv_sec, &utc);
  char stamp[40];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  char head[96];
  std::snprintf(head, sizeof head, "%s.%03dZ vineyardfs[%d]: %s: ", stamp,
                static_cast<int>(tv.tv_usec / 1000), static_cast<int>(getpid()),
                LogLevelName(level));
  return head + message;
}

void LogToStderr() { g_dest = Dest::kStderr; }

void LogToSyslog() {
  openlog("vineyardfs", LOG_PID, LOG_DAEMON);
  g_dest = Dest::kSyslog;
}

Status LogToFile(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Status::FromErrno("open log file " + path, errno);
  int old = g_file_fd.exchange(fd);
  g_dest = Dest::kFile;
  if (old >= 0) close(old);
  MutexLock lock(&g_path_mu);
  g_path = path;
  return Status::OK();
}

std::string LogDestination() {
  switch (g_dest.load()) {
    case Dest::kStderr:
      return "stderr";
    case Dest::kSyslog:
      return "syslog";
    case Dest::kFile:
      break;
  }
  MutexLock lock(&g_path_mu);
  return g_path;
}

void SetLogEcho(bool on) { g_echo = on; }

void PrintToStderr(const std::string& text) { WriteLine(g_stderr_fd, text); }

void CloseLogStderr() {
  if (g_dest == Dest::kStderr) return;
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null < 0) return;
  dup2(null, g_stderr_fd);
  close(null);
}

Status CaptureStderr() {
  int saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
  if (saved < 0) return Status::FromErrno("dup stderr", errno);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    close(saved);
    return Status::FromErrno("pipe for stderr", errno);
  }
  if (dup2(fds[1], 2) < 0) {
    int err = errno;
    close(saved);
    close(fds[0]);
    close(fds[1]);
    return Status::FromErrno("dup2 stderr", err);
  }
  close(fds[1]);
  g_stderr_fd = saved;
  g_pump = std::thread(PumpStderr, fds[0]);
  return Status::OK();
}

void EndStderrCapture() {
  if (!g_pump.joinable()) return;
  dup2(g_stderr_fd, 2);  // closes our write end of the pipe: the pump reads EOF
  // ...unless a child we started still holds it: then give up after a second.
  for (int i = 0; i < 100 && !g_pump_done; ++i) usleep(10000);
  if (g_pump_done) {
    g_pump.join();
  } else {
    g_pump.detach();
  }
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

void Log(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) > g_level) return;
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  Emit(level, buf);
}

}  // namespace vineyard
