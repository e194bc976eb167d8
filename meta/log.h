// Logging for every module: to stderr when the daemon runs in the foreground (and in
// tests), to syslog once it has daemonized. printf-style, one line per call.
#pragma once

namespace vineyard {

enum class LogLevel { kError = 3, kWarning = 4, kInfo = 6, kDebug = 7 };

// Switches output to syslog (ident "vineyardfs"). Called once, after daemonizing.
void LogToSyslog();
// Messages above this level are dropped. Default: kInfo.
void SetLogLevel(LogLevel level);
void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace vineyard

#define VY_LOG_ERROR(...) ::vineyard::Log(::vineyard::LogLevel::kError, __VA_ARGS__)
#define VY_LOG_WARN(...) ::vineyard::Log(::vineyard::LogLevel::kWarning, __VA_ARGS__)
#define VY_LOG_INFO(...) ::vineyard::Log(::vineyard::LogLevel::kInfo, __VA_ARGS__)
#define VY_LOG_DEBUG(...) ::vineyard::Log(::vineyard::LogLevel::kDebug, __VA_ARGS__)
