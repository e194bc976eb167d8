#include "meta/log.h"

#include <syslog.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace vineyard {
namespace {
std::atomic<bool> g_syslog{false};
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
}  // namespace

void LogToSyslog() {
  openlog("vineyardfs", LOG_PID, LOG_DAEMON);
  g_syslog = true;
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

void Log(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) > g_level) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (g_syslog) {
    syslog(static_cast<int>(level), "%s", buf);
  } else {
    static const char* const kTags[] = {"", "", "", "error", "warning", "", "info", "debug"};
    std::fprintf(stderr, "vineyardfs: %s: %s\n", kTags[static_cast<int>(level)], buf);
  }
}

}  // namespace vineyard
