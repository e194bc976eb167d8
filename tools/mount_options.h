// Command line and `-o` options of the vineyardfs daemon / mount helper (DESIGN.md §2):
//
//   vineyardfs <source> <mountpoint> [-f] [-d] [-o opt[=val],...]
//   mount.fuse.vineyardfs <source> <mountpoint> [-sfnv] [-o opts]   (from mount(8))
//
// The same keys are accepted in `-o`, in `config=FILE` (one `key=value` per line, `#`
// comments) and shown in status.json. Options given with -o win over the config file.
// Each key is declared once, in tools/mount_option_table.cc: its parser, its
// status.json value, its default and its --help text.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "meta/object_id.h"
#include "meta/replicator.h"
#include "meta/status.h"
#include "store/options.h"

namespace vineyard {

struct MountConfig {
  std::string source;       // shown as the mount's fsname. Default: "vineyard".
  std::string mountpoint;   // required
  bool foreground = false;  // -f: stay attached (and log to stderr unless log= says otherwise)
  bool debug = false;       // -d: debug lines and libfuse's request trace in the log (implies -f)
  bool fake = false;        // mount helper -f: do everything but mount
  bool help = false, version = false;
  bool allow_other = false;  // Default: on when root
  InstanceId instance = 0;   // 0: not given (the state's, else 1)
  StoreOptions store;
  ClusterOptions cluster;            // listen=, peer= (repeated), curve_*=, heartbeat_ms=
  std::string plugins;               // user plugin directory. Default: <state>/resolvers
                                     // (<arena>/resolvers with state=none)
  std::string builtin_plugins;       // builtin plugins ("none": none). Default: beside the
                                     // daemon (build tree) or <libdir>/vineyardfs/plugins
  std::string remote = "fetch";      // fetch | error
  std::string passthrough = "auto";  // on | off | auto
  uint64_t passthrough_min = 1 << 20;  // payloads up to this size use the page cache
  double new_ttl = 60;  // seconds a sealed upload's link stays in new/ (0: until removed)
  // log=: "stderr", "syslog" or an absolute file path. Default: stderr with -f, else
  // syslog when /dev/log exists, else <state>/vineyardfs.log (<arena>.log with
  // state=none). See DefaultLog().
  std::string log;
  std::string config;                        // config=FILE, "" when not given
  std::vector<std::string> fuse_opts;        // passed to the kernel (ro, nosuid, ...)
  std::map<std::string, std::string> shown;  // effective options for status.json
};

// Parses argv. Fills defaults that depend on the user and the instance.
Result<MountConfig> ParseMountArgs(int argc, char** argv);
// "512M", "8G", "4096" -> bytes (binary units).
Result<uint64_t> ParseSize(const std::string& text);
// --help's text, the options' part from the option table.
std::string MountUsage();
// Where the log goes by default: "stderr" in the foreground, else "syslog" when a
// syslog daemon listens (`have_syslog`: /dev/log exists), else a file under the state
// directory (beside the arena with state=none).
std::string DefaultLog(bool foreground, bool have_syslog, const std::string& state,
                       const std::string& arena);
// The builtin plugins' directory: `given`, "" for "none", else the default.
std::string BuiltinPluginDir(const std::string& given);

}  // namespace vineyard
