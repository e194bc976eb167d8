#include "tools/mount_options.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

namespace vineyard {

namespace {

// Generic mount(8) options: passed to the kernel where FUSE knows them, otherwise
// accepted and ignored (they are for mount(8) and fstab, not for us).
const std::set<std::string> kKernelOpts = {"ro",   "rw",     "nosuid",  "suid",    "nodev",
                                           "dev",  "noexec", "exec",    "noatime", "atime",
                                           "sync", "async",  "dirsync", "relatime"};
const std::set<std::string> kIgnoredOpts = {"defaults", "auto",  "noauto",  "user",
                                            "nouser",   "users", "_netdev", "nofail"};

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

struct Pending {
  std::vector<std::pair<std::string, std::string>> given;  // from -o, in order
  std::string config;
};

Status Apply(MountConfig* c, const std::string& key, const std::string& value, bool has_value) {
  auto need = [&]() -> Status {
    if (!has_value || value.empty())
      return Status::InvalidArgument("option '" + key + "' needs a value");
    return Status::OK();
  };
  if (key == "size") {
    VY_RETURN_IF_ERROR(need());
    auto v = ParseSize(value);
    if (!v.ok()) return v.status();
    c->store.size = *v;
  } else if (key == "reserve") {
    VY_RETURN_IF_ERROR(need());
    if (value == "0") {
      c->store.reserve = 0;
    } else {
      auto v = ParseSize(value);
      if (!v.ok()) return v.status();
      c->store.reserve = *v;
    }
  } else if (key == "arena") {
    VY_RETURN_IF_ERROR(need());
    c->store.arena = value;
  } else if (key == "state") {
    VY_RETURN_IF_ERROR(need());
    c->store.state = value;
  } else if (key == "durability") {
    if (value == "none") {
      c->store.durability = Durability::kNone;
    } else if (value == "async") {
      c->store.durability = Durability::kAsync;
    } else if (value == "sync") {
      c->store.durability = Durability::kSync;
    } else {
      return Status::InvalidArgument("durability must be none, async or sync, not '" + value + "'");
    }
  } else if (key == "instance") {
    VY_RETURN_IF_ERROR(need());
    char* end = nullptr;
    long v = std::strtol(value.c_str(), &end, 10);
    if (*end || v < 1 || v > static_cast<long>(kMaxInstance)) {
      return Status::InvalidArgument("instance must be 1..32767, not '" + value + "'");
    }
    c->instance = static_cast<InstanceId>(v);
  } else if (key == "plugins") {
    VY_RETURN_IF_ERROR(need());
    c->plugins = value;
  } else if (key == "builtin_plugins") {
    VY_RETURN_IF_ERROR(need());
    c->builtin_plugins = value;
  } else if (key == "listen" || key == "peer") {
    VY_RETURN_IF_ERROR(need());
    auto ep = ParseEndpoint(value);
    if (!ep.ok()) return Status::InvalidArgument(key + ": " + ep.status().message());
    if (key == "listen") {
      c->cluster.listen = value;
    } else {
      for (auto& p : c->cluster.peers) {
        if (ParseEndpoint(p)->pub == ep->pub) {
          return Status::InvalidArgument("peer " + ep->pub + " is given twice");
        }
      }
      c->cluster.peers.push_back(value);
    }
  } else if (key == "curve_secret") {
    VY_RETURN_IF_ERROR(need());
    c->cluster.curve_secret = value;
  } else if (key == "curve_peers") {
    VY_RETURN_IF_ERROR(need());
    c->cluster.curve_peers = value;
  } else if (key == "heartbeat_ms") {
    VY_RETURN_IF_ERROR(need());
    char* end = nullptr;
    long v = std::strtol(value.c_str(), &end, 10);
    if (*end || v < 10 || v > 60000) {
      return Status::InvalidArgument("heartbeat_ms must be 10..60000, not '" + value + "'");
    }
    c->cluster.heartbeat_ms = static_cast<int>(v);
  } else if (key == "remote") {
    if (value != "fetch" && value != "error") {
      return Status::InvalidArgument("remote must be fetch or error, not '" + value + "'");
    }
    c->remote = value;
  } else if (key == "passthrough") {
    if (value != "on" && value != "off" && value != "auto") {
      return Status::InvalidArgument("passthrough must be on, off or auto, not '" + value + "'");
    }
    c->passthrough = value;
  } else if (key == "passthrough_min") {
    VY_RETURN_IF_ERROR(need());
    if (value == "0") {
      c->passthrough_min = 0;  // passthrough for every payload
    } else {
      auto v = ParseSize(value);
      if (!v.ok()) return Status::InvalidArgument("passthrough_min: " + v.status().message());
      c->passthrough_min = *v;
    }
  } else if (key == "new_ttl") {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end || !(v >= 0 && v <= 30 * 86400)) {
      return Status::InvalidArgument("new_ttl must be 0..2592000 seconds, not '" + value + "'");
    }
    c->new_ttl = v;
  } else if (key == "huge") {
    if (value != "never" && value != "always" && value != "within_size" && value != "advise") {
      return Status::InvalidArgument("huge must be never, always, within_size or advise");
    }
    c->store.huge = value;
  } else if (key == "log") {
    VY_RETURN_IF_ERROR(need());
    c->log = value;
  } else if (key == "allow_other") {
    c->allow_other = true;
  } else if (key == "default_permissions") {
    // Always on: ownership and the sticky directories are enforced by the kernel.
  } else if (kKernelOpts.count(key)) {
    c->fuse_opts.push_back(key);
  } else if (kIgnoredOpts.count(key) || key.rfind("x-", 0) == 0 || key == "comment") {
    // for mount(8)/fstab only
  } else {
    return Status::InvalidArgument("unknown option '" + key + "' (see vineyardfs --help)");
  }
  return Status::OK();
}

Status SplitOpts(const std::string& text, Pending* p) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "config") {
      p->config = value;
    } else {
      p->given.emplace_back(item, value);
    }
  }
  return Status::OK();
}

Status ReadConfig(const std::string& path, std::vector<std::pair<std::string, std::string>>* out) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read config file '" + path + "'");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    std::string key = Trim(line.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : Trim(line.substr(eq + 1));
    if (key.empty()) return Status::InvalidArgument(path + ":" + std::to_string(n) + ": no key");
    out->emplace_back(eq == std::string::npos ? key : key + "=" + value, value);
  }
  return Status::OK();
}

uint64_t HalfOfRam() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 2
                               : uint64_t{1} << 30;
}

}  // namespace

Result<uint64_t> ParseSize(const std::string& text) {
  std::string t = Trim(text);
  if (t.empty() || !std::isdigit(static_cast<unsigned char>(t[0]))) {
    return Status::InvalidArgument("size '" + text + "' is not a number (e.g. 512M, 8G)");
  }
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  std::string unit = end;
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (unit == "B") unit.clear();
  if (unit.size() == 3 && unit.substr(1) == "IB") unit = unit.substr(0, 1);
  if (unit.size() == 2 && unit[1] == 'B') unit = unit.substr(0, 1);
  double mult = 1;
  if (unit == "K") {
    mult = 1024.0;
  } else if (unit == "M") {
    mult = 1024.0 * 1024;
  } else if (unit == "G") {
    mult = 1024.0 * 1024 * 1024;
  } else if (unit == "T") {
    mult = 1024.0 * 1024 * 1024 * 1024;
  } else if (!unit.empty()) {
    return Status::InvalidArgument("size '" + text + "' has an unknown unit (use K, M, G or T)");
  }
  double bytes = v * mult;
  if (bytes < 4096) return Status::InvalidArgument("size '" + text + "' is below 4 KiB");
  return static_cast<uint64_t>(bytes);
}

const char* MountUsage() {
  return "usage: vineyardfs <source> <mountpoint> [-f] [-d] [-o opt[=val],...]\n"
         "\n"
         "Mounts a vineyardfs object store. Returns once the mount is ready.\n"
         "\n"
         "  -f                 stay in the foreground, log to stderr unless log= is given\n"
         "  -d                 debug lines and a trace of every FUSE request in the log\n"
         "                     (implies -f)\n"
         "  -h, --help         this text\n"
         "  -V, --version      the version\n"
         "\n"
         "options (-o, or one key=value per line in a config=FILE):\n"
         "  size=SIZE          arena capacity, e.g. 512M, 8G (default: half of RAM)\n"
         "  reserve=SIZE       arena memory kept written ahead for fetched, reloaded and\n"
         "                     built payloads, at most size/2 (default: 0)\n"
         "  arena=DIR          payload directory; as root a tmpfs is mounted there\n"
         "                     (default: /run/vineyardfs/<instance> as root,\n"
         "                      /dev/shm/vineyardfs-<instance> otherwise)\n"
         "  state=DIR|none     RocksDB directory (default: /var/lib/vineyardfs/<instance>\n"
         "                     as root, ~/.local/state/vineyardfs/<instance> otherwise)\n"
         "  durability=MODE    none | async | sync (default: async)\n"
         "  instance=N         this node's id, 1..32767 (default: stored, else 1)\n"
         "  huge=POLICY        arena tmpfs huge pages: never|within_size|always|advise\n"
         "                     (default: within_size, payloads collapsed after the seal)\n"
         "  listen=ENDPOINT    cluster: tcp://HOST:PORT (or PORT for 127.0.0.1) to publish\n"
         "                     on; PORT+1 serves snapshots and payloads\n"
         "  peer=ENDPOINT      a peer's listen endpoint; repeat once per peer\n"
         "  curve_secret=FILE  this node's CURVE secret key (vyctl keygen); with\n"
         "  curve_peers=DIR    the public keys of the nodes allowed in (and their endpoints)\n"
         "  heartbeat_ms=N     heartbeat period; a peer silent for 5 is down (default: 200)\n"
         "  plugins=DIR        plugin directory, shown as resolvers/ and watched\n"
         "                     (default: <state>/resolvers, <arena>/resolvers if state=none)\n"
         "  builtin_plugins=DIR|none  the builtin plugins (numpy, json, csv)\n"
         "  remote=fetch|error reading a payload that lives on another node\n"
         "  passthrough=MODE   on | off | auto: FUSE passthrough for payloads and uploads\n"
         "                     (auto: when the kernel and CAP_SYS_ADMIN allow; default)\n"
         "  passthrough_min=SIZE  payloads of at most SIZE go through the page cache\n"
         "                     instead (a warm open+mmap: one request; default: 1M)\n"
         "  new_ttl=SECONDS    how long new/<file> stays a link after its seal, so that\n"
         "                     the name can be written again (default: 60; 0: until rm)\n"
         "  allow_other        let other users in (default: on when root)\n"
         "  log=DEST           syslog | stderr | FILE (an absolute path): where the log goes\n"
         "                     (default: stderr with -f, else syslog when /dev/log exists,\n"
         "                      else <state>/vineyardfs.log, <arena>.log with state=none)\n"
         "  config=FILE        read options from FILE\n"
         "  ro,nosuid,nodev,noexec,...  passed to the kernel; fstab-only options\n"
         "                     (defaults, noauto, _netdev, nofail, x-*) are ignored\n";
}

std::string DefaultLog(bool foreground, bool have_syslog, const std::string& state,
                       const std::string& arena) {
  if (foreground) return "stderr";
  if (have_syslog) return "syslog";
  if (state == "none") return arena + ".log";
  return state + "/vineyardfs.log";
}

std::string BuiltinPluginDir(const std::string& given) {
  if (given == "none") return "";
  if (!given.empty()) return given;
  // The build tree keeps them beside the daemon; an install under <libdir>, found
  // relative to the daemon first (a package extracted into another root).
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::string dir(exe);
    const std::string bindir = dir.substr(0, dir.rfind('/'));
    struct stat st;
    for (const std::string& d : {bindir + "/plugins", bindir + "/" + VINEYARDFS_PLUGIN_RELDIR}) {
      if (stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        char real[PATH_MAX];
        return realpath(d.c_str(), real) ? std::string(real) : d;
      }
    }
  }
  return VINEYARDFS_PLUGIN_DIR;
}

Result<MountConfig> ParseMountArgs(int argc, char** argv) {
  MountConfig c;
  const char* base = std::strrchr(argv[0], '/');
  base = base ? base + 1 : argv[0];
  const bool helper = std::strncmp(base, "mount.", 6) == 0;  // run by mount(8)
  Pending pending;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      c.help = true;
    } else if (a == "-V" || a == "--version") {
      c.version = true;
    } else if (a == "-o") {
      if (++i == argc) return Status::InvalidArgument("-o needs an argument");
      VY_RETURN_IF_ERROR(SplitOpts(argv[i], &pending));
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2) {
      VY_RETURN_IF_ERROR(SplitOpts(a.substr(2), &pending));
    } else if (helper && a == "-t") {
      ++i;  // the type; we know it
    } else if (helper && a.size() > 1 && a[0] == '-' &&
               a.find_first_not_of("sfnv", 1) == std::string::npos) {
      if (a.find('f') != std::string::npos) c.fake = true;  // mount -f: fake
    } else if (a == "-f") {
      c.foreground = true;
    } else if (a == "-d") {
      c.debug = c.foreground = true;
    } else if (!a.empty() && a[0] == '-') {
      return Status::InvalidArgument("unknown argument '" + a + "' (see --help)");
    } else {
      positional.push_back(a);
    }
  }
  if (c.help || c.version) return c;
  if (positional.size() != 2) {
    return Status::InvalidArgument("expected <source> <mountpoint> (see --help)");
  }
  c.source = positional[0];
  c.mountpoint = positional[1];

  std::vector<std::pair<std::string, std::string>> all;
  if (!pending.config.empty()) VY_RETURN_IF_ERROR(ReadConfig(pending.config, &all));
  all.insert(all.end(), pending.given.begin(), pending.given.end());
  for (auto& [item, value] : all) {
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    VY_RETURN_IF_ERROR(Apply(&c, key, value, eq != std::string::npos));
  }

  const bool root = geteuid() == 0;
  if (root) c.allow_other = true;
  const std::string inst = std::to_string(c.instance ? c.instance : 1);
  if (c.store.size == 0) c.store.size = HalfOfRam();
  if (c.store.arena.empty()) {
    c.store.arena = root ? "/run/vineyardfs/" + inst : "/dev/shm/vineyardfs-" + inst;
  }
  if (c.store.state.empty()) {
    const char* home = std::getenv("HOME");
    c.store.state = root ? "/var/lib/vineyardfs/" + inst
                         : std::string(home ? home : "/tmp") + "/.local/state/vineyardfs/" + inst;
  }
  if (!pending.config.empty()) c.shown["config"] = pending.config;
  c.shown["size"] = std::to_string(c.store.size);
  if (c.store.reserve > c.store.size / 2) {
    return Status::InvalidArgument("reserve=" + std::to_string(c.store.reserve) +
                                   " is more than half of size=" + std::to_string(c.store.size));
  }
  c.shown["reserve"] = std::to_string(c.store.reserve);
  c.shown["arena"] = c.store.arena;
  c.shown["state"] = c.store.state;
  c.shown["durability"] = DurabilityName(c.store.durability);
  c.shown["huge"] = c.store.huge;
  c.shown["remote"] = c.remote;
  c.shown["passthrough"] = c.passthrough;
  c.shown["passthrough_min"] = std::to_string(c.passthrough_min);
  {
    char ttl[32];
    std::snprintf(ttl, sizeof ttl, "%g", c.new_ttl);
    c.shown["new_ttl"] = ttl;
  }
  c.shown["allow_other"] = c.allow_other ? "1" : "0";
  c.shown["default_permissions"] = "1";
  if (c.cluster.curve_secret.empty() != c.cluster.curve_peers.empty()) {
    return Status::InvalidArgument("curve_secret= and curve_peers= go together");
  }
  if (!c.cluster.listen.empty()) {
    const std::string own = ParseEndpoint(c.cluster.listen)->pub;
    for (auto& p : c.cluster.peers) {
      if (ParseEndpoint(p)->pub == own) {
        return Status::InvalidArgument("peer " + own + " is this node's own listen endpoint");
      }
    }
    c.shown["listen"] = own;
  }
  for (size_t i = 0; i < c.cluster.peers.size(); ++i) {
    c.shown["peer." + std::to_string(i)] = ParseEndpoint(c.cluster.peers[i])->pub;
  }
  if (!c.cluster.curve_secret.empty()) {
    c.shown["curve_secret"] = c.cluster.curve_secret;
    c.shown["curve_peers"] = c.cluster.curve_peers;
  }
  if (!c.cluster.listen.empty() || !c.cluster.peers.empty()) {
    c.shown["heartbeat_ms"] = std::to_string(c.cluster.heartbeat_ms);
  }
  if (c.plugins.empty()) {
    c.plugins = (c.store.state == "none" ? c.store.arena : c.store.state) + "/resolvers";
  }
  if (c.log.empty()) {
    struct stat dev_log;
    c.log = DefaultLog(c.foreground, stat("/dev/log", &dev_log) == 0, c.store.state, c.store.arena);
  } else if (c.log != "stderr" && c.log != "syslog" && c.log[0] != '/') {
    return Status::InvalidArgument("log must be syslog, stderr or an absolute file path, not '" +
                                   c.log + "'");
  } else if (c.log == "syslog") {
    struct stat dev_log;
    if (stat("/dev/log", &dev_log) != 0) {
      return Status::InvalidArgument(
          "log=syslog, but no syslog daemon listens here (/dev/log does not exist): "
          "use log=FILE or log=stderr");
    }
  }
  c.shown["log"] = c.log;
  c.shown["plugins"] = c.plugins;
  c.builtin_plugins = BuiltinPluginDir(c.builtin_plugins);
  c.shown["builtin_plugins"] = c.builtin_plugins.empty() ? "none" : c.builtin_plugins;
  return c;
}

}  // namespace vineyard
