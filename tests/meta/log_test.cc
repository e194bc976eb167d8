// meta/log.cc: the line format, a log file, the level filter, the destination's name.
#include "meta/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

namespace vineyard {
namespace {

TEST(Log, EveryLineHasAUtcTimestampThePidAndTheLevel) {
  const std::string line = FormatLogLine(LogLevel::kWarning, "arena 90% full");
  EXPECT_TRUE(std::regex_match(
      line,
      std::regex(
          R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z vineyardfs\[(\d+)\]: warning: arena 90% full)")))
      << line;
  EXPECT_NE(line.find("[" + std::to_string(getpid()) + "]"), std::string::npos) << line;
  EXPECT_STREQ(LogLevelName(LogLevel::kError), "error");
  EXPECT_STREQ(LogLevelName(LogLevel::kDebug), "debug");
}

TEST(Log, AFileGetsOneLinePerMessageAboveTheLevel) {
  char tmpl[] = "/tmp/vy-log-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/daemon.log";
  ASSERT_TRUE(LogToFile(path).ok());
  EXPECT_EQ(LogDestination(), path);
  SetLogLevel(LogLevel::kInfo);
  VY_LOG_INFO("mounted %s", "/vineyard");
  VY_LOG_DEBUG("dropped at info level");
  VY_LOG_ERROR("seal of %s failed", "new/x");
  SetLogLevel(LogLevel::kDebug);
  VY_LOG_DEBUG("kept at debug level");
  SetLogLevel(LogLevel::kInfo);
  LogToStderr();
  EXPECT_EQ(LogDestination(), "stderr");

  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("info: mounted /vineyard"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("error: seal of new/x failed"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("debug: kept at debug level"), std::string::npos) << lines[2];
  unlink(path.c_str());
  rmdir(tmpl);
}

TEST(Log, AnUnwritableFileIsAnError) {
  Status s = LogToFile("/nonexistent-dir/vineyardfs.log");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("/nonexistent-dir/vineyardfs.log"), std::string::npos);
  EXPECT_EQ(LogDestination(), "stderr") << "a failed switch keeps the old destination";
}

}  // namespace
}  // namespace vineyard
