// Logging for every module: one line per call, printf-style, to one destination
// chosen once at start-up (the daemon's `log=` option, DESIGN.md §2 and README):
//
//   stderr   the default in the foreground (-f) and in tests
//   syslog   ident "vineyardfs", facility daemon; syslog stamps the time and keeps the level
//   a file   appended to (created 0640), one write(2) per line so that lines from
//            several threads and a log rotation by copytruncate never interleave
//
// On stderr and in a file every line reads
//
//   2026-12-01T20:03:20.123Z vineyardfs[4242]: info: mounted vineyard on /vineyard
//
// (UTC, milliseconds, the pid, the level). Thread-safe: the destination is set before
// the threads start (LogTo*, SetLogEcho and CaptureStderr are called from main).
#pragma once

#include <string>

#include "meta/status.h"

namespace vineyard {

enum class LogLevel { kError = 3, kWarning = 4, kInfo = 6, kDebug = 7 };

// "error", "warning", "info", "debug".
const char* LogLevelName(LogLevel level);

// Switches output to stderr (the default).
void LogToStderr();
// Switches output to syslog (ident "vineyardfs").
void LogToSyslog();
// Switches output to the file at `path` (appended to, created 0640 if missing).
Status LogToFile(const std::string& path);
// Where the log goes, as the `log=` option spells it: "stderr", "syslog" or the path.
std::string LogDestination();

// While on, errors and warnings also go to stderr (in the same format) when the log
// goes elsewhere: the terminal of `vineyardfs`, which waits for the daemon to mount,
// sees why a mount failed whatever the log's destination. Default: off.
void SetLogEcho(bool on);
// Writes `text` as it is to stderr (the original fd 2, not the capture pipe).
void PrintToStderr(const std::string& text);
// Once the daemon has detached: points stderr (the original fd 2, not the capture
// pipe) at /dev/null unless it is the log's destination, so that the daemon keeps no
// terminal or pipe of its starter open.
void CloseLogStderr();

// Turns this process's fd 2 into a pipe read by a thread that logs each line written
// to it: libfuse reports its errors ("fuse: ...", logged as errors) and, with -d, its
// request trace (logged at debug level) on stderr, and they get timestamps and
// levels like every other line. Log output to stderr goes to the original fd 2.
// Call once, from main, before other threads start.
Status CaptureStderr();
// Puts the original fd 2 back and waits until every captured line is logged (the
// last lines of a failing daemon are often libfuse's reason). Call before exit.
void EndStderrCapture();

// Messages above this level are dropped. Default: kInfo.
void SetLogLevel(LogLevel level);
void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// The line Log() writes for `message` at `level` with the current time (no newline).
std::string FormatLogLine(LogLevel level, const std::string& message);

}  // namespace vineyard

#define VY_LOG_ERROR(...) ::vineyard::Log(::vineyard::LogLevel::kError, __VA_ARGS__)
#define VY_LOG_WARN(...) ::vineyard::Log(::vineyard::LogLevel::kWarning, __VA_ARGS__)
#define VY_LOG_INFO(...) ::vineyard::Log(::vineyard::LogLevel::kInfo, __VA_ARGS__)
#define VY_LOG_DEBUG(...) ::vineyard::Log(::vineyard::LogLevel::kDebug, __VA_ARGS__)
