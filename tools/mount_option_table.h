// The `-o` options of the vineyardfs daemon, declared once (DESIGN.md §2).
//
// Each row names one key and says how to parse its value into MountConfig, what
// status.json's `options` shows for it and what `--help` says. tools/mount_options.cc
// turns the rows into libfuse's fuse_opt templates (argv and -o), reads config=FILE
// lines through the same rows and prints --help from them: an option added here is
// parsed, documented and shown, with nothing else to change.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "meta/status.h"
#include "tools/mount_options.h"

namespace vineyard {

// status.json's `options`: key -> value as text.
using ShownOptions = std::map<std::string, std::string>;

struct MountOption {
  const char* key;  // the -o / config key, and status.json's
  const char* arg;  // the value's name in --help ("SIZE"), "" for a flag
  // Parses `value` (has_value: "key=value" rather than "key") into the member.
  // Errors name the key and the value. nullptr: handled by the parser itself (config=).
  Status (*parse)(MountConfig* c, const std::string& value, bool has_value);
  // Adds the effective value(s) to status.json's options (nothing when unset).
  // nullptr: not shown there (or shown by the daemon itself: instance=).
  void (*show)(const MountConfig& c, ShownOptions* out);
  const char* default_text;  // --help's "(default: ...)", "" for none
  const char* help;          // --help's text; nullptr: accepted, not listed
};

// Every option, in --help's order.
const std::vector<MountOption>& MountOptionTable();
// The row of `key`, or nullptr.
const MountOption* FindMountOption(const std::string& key);

}  // namespace vineyard
