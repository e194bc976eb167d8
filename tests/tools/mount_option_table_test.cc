// tools/mount_option_table.cc: each -o key is declared once, and its row gives the
// daemon's parsing (fuse_opt and config=FILE), --help and status.json's options.
#include "tools/mount_option_table.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace vineyard {
namespace {

// Runs ParseMountArgs on "vineyardfs vineyard /mnt ARGS...".
Result<MountConfig> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), {"vineyardfs", "vineyard", "/tmp/vy-option-table-test"});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseMountArgs(static_cast<int>(argv.size()), argv.data());
}

TEST(MountOptionTable, HelpListsEveryRowWithItsValueAndDefault) {
  const std::string help = MountUsage();
  for (const MountOption& o : MountOptionTable()) {
    if (!o.help) continue;
    std::string synopsis = "\n  " + std::string(o.key) + (*o.arg ? "=" + std::string(o.arg) : "");
    EXPECT_NE(help.find(synopsis), std::string::npos) << o.key << " missing in:\n" << help;
    std::string first_words = std::string(o.help).substr(0, std::string(o.help).find(' '));
    EXPECT_NE(help.find(first_words, help.find(synopsis)), std::string::npos) << o.key;
  }
  EXPECT_NE(help.find("(default: async)"), std::string::npos) << help;
}

TEST(MountOptionTable, HelpShowsTheDefaultsTheDaemonUses) {
  auto c = Parse({"-o", "listen=7000"});  // heartbeat_ms is shown in a cluster
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  for (const char* key :
       {"reserve", "durability", "huge", "heartbeat_ms", "remote", "passthrough", "new_ttl"}) {
    const MountOption* row = FindMountOption(key);
    ASSERT_NE(row, nullptr) << key;
    ASSERT_EQ(c->shown.count(key), 1u) << key;
    EXPECT_EQ(c->shown.at(key), row->default_text) << key;
  }
}

TEST(MountOptionTable, EveryShownOptionHasARow) {
  auto c = Parse({"-o", "listen=7000,peer=7002,peer=7004,curve_secret=/k,curve_peers=/d"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  for (const auto& [key, value] : c->shown) {
    EXPECT_NE(FindMountOption(key.substr(0, key.find('.'))), nullptr) << key << "=" << value;
  }
  EXPECT_EQ(c->shown.at("peer.1"), "tcp://127.0.0.1:7004");
  EXPECT_EQ(c->shown.at("default_permissions"), "1");
}

TEST(MountOptionTable, ConfigFileAndDashOGoThroughTheSameRows) {
  char dir[] = "/tmp/vy-option-table-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string conf = std::string(dir) + "/vineyardfs.conf";
  std::ofstream(conf) << "size = 64M\ndurability=sync  # a comment\nnew_ttl=5\n";
  auto c = Parse({"-o", "config=" + conf + ",durability=none"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->store.size, 64u << 20);
  EXPECT_EQ(c->store.durability, Durability::kNone) << "-o wins over the file";
  EXPECT_EQ(c->shown.at("new_ttl"), "5");
  EXPECT_EQ(c->shown.at("config"), conf);

  std::ofstream(conf) << "bogus=1\n";
  auto bad = Parse({"-o", "config=" + conf});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown option 'bogus'"), std::string::npos);
  std::remove(conf.c_str());
  rmdir(dir);
}

TEST(MountOptionTable, FuseOptSplitsDashOAndPassesKernelOptions) {
  auto c = Parse({"-oro,nosuid", "-o", "defaults,x-systemd.automount,,durability=sync", "-f"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->fuse_opts, (std::vector<std::string>{"ro", "nosuid"}));
  EXPECT_EQ(c->store.durability, Durability::kSync);
  EXPECT_TRUE(c->foreground);
  EXPECT_EQ(c->log, "stderr");
}

TEST(MountOptionTable, BadArgumentsSayWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"-o"}, "-o needs an argument"},
      {{"-o", "size"}, "option 'size' needs a value"},
      {{"-o", "instance=40000"}, "instance must be 1..32767, not '40000'"},
      {{"-x"}, "unknown argument '-x'"},
      {{"-t", "fuse"}, "unknown argument '-t'"},  // only mount(8)'s helper takes -t
  };
  for (const Case& c : cases) {
    auto r = Parse(c.args);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace vineyard
