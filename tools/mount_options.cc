#include "tools/mount_options.h"

#include <fuse_opt.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "tools/mount_option_table.h"

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

// One option as given: "key=value" (has_value) or "key".
struct Item {
  std::string key, value;
  bool has_value;
};

Item SplitItem(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos) return {text, "", false};
  return {text.substr(0, eq), text.substr(eq + 1), true};
}

// Applies one option through its row of the table; generic mount options go to the
// kernel or are ignored; anything else is an unknown option.
Status Apply(MountConfig* c, const Item& item) {
  const MountOption* row = FindMountOption(item.key);
  if (row && row->parse) return row->parse(c, item.value, item.has_value);
  if (kKernelOpts.count(item.key)) {
    c->fuse_opts.push_back(item.key);
  } else if (kIgnoredOpts.count(item.key) || item.key.rfind("x-", 0) == 0 ||
             item.key == "comment") {
    // for mount(8)/fstab only
  } else {
    return Status::InvalidArgument("unknown option '" + item.key + "' (see vineyardfs --help)");
  }
  return Status::OK();
}

Status ReadConfig(const std::string& path, std::vector<Item>* out) {
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
    if (key.empty()) return Status::InvalidArgument(path + ":" + std::to_string(n) + ": no key");
    if (eq == std::string::npos) {
      out->push_back({key, "", false});
    } else {
      out->push_back({key, Trim(line.substr(eq + 1)), true});
    }
  }
  return Status::OK();
}

// ---- the command line, through libfuse's fuse_opt ------------------------------

// fuse_opt keys of the command-line flags; a row of the table is kRow + its index.
enum Key : int { kHelp, kVersion, kForeground, kDebug, kType, kConfig, kRow = 100 };

// What the fuse_opt callback collects; the -o options are applied after the config
// file, once the whole command line is read.
struct ArgState {
  MountConfig* c;
  bool helper;              // run as mount.fuse.vineyardfs by mount(8)
  std::vector<Item> given;  // from -o, in order
  std::vector<std::string> positional;
  Status error;  // the first bad argument
};

// The templates: -h/--help, -V/--version, -f, -d, -t TYPE, then every row of the
// table as "key" and "key=" (fuse_opt splits -o at commas; "\," is a comma).
const std::vector<fuse_opt>& FuseOpts() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const MountOption& o : MountOptionTable()) {
      n.push_back(o.key);
      n.push_back(std::string(o.key) + "=");
    }
    return n;
  }();
  static const std::vector<fuse_opt> opts = [] {
    std::vector<fuse_opt> v = {FUSE_OPT_KEY("-h", kHelp),       FUSE_OPT_KEY("--help", kHelp),
                               FUSE_OPT_KEY("-V", kVersion),    FUSE_OPT_KEY("--version", kVersion),
                               FUSE_OPT_KEY("-f", kForeground), FUSE_OPT_KEY("-d", kDebug),
                               FUSE_OPT_KEY("-t ", kType)};
    for (size_t i = 0; i < names.size(); ++i) {
      const bool config = std::string(MountOptionTable()[i / 2].key) == "config";
      v.push_back(FUSE_OPT_KEY(names[i].c_str(), config ? kConfig : kRow + int(i / 2)));
    }
    v.push_back(FUSE_OPT_END);
    return v;
  }();
  return opts;
}

// An argument that no template matched: mount(8)'s -sfnv, an unknown flag, or an -o
// option that is no row of the table (ro, nosuid, ..., or a misspelt one).
int OtherArg(ArgState* s, const std::string& arg) {
  if (arg.empty()) return 0;  // "-o a,,b"
  if (arg[0] != '-') {
    s->given.push_back(SplitItem(arg));
    return 0;
  }
  if (s->helper && arg.size() > 1 && arg.find_first_not_of("sfnv", 1) == std::string::npos) {
    if (arg.find('f') != std::string::npos) s->c->fake = true;  // mount -f: fake
    return 0;
  }
  s->error = Status::InvalidArgument("unknown argument '" + arg + "' (see --help)");
  return -1;
}

int OnArg(void* data, const char* text, int key, fuse_args*) {
  auto* s = static_cast<ArgState*>(data);
  const std::string arg = text;
  switch (key) {
    case FUSE_OPT_KEY_NONOPT:
      s->positional.push_back(arg);
      return 0;
    case FUSE_OPT_KEY_OPT:
      return OtherArg(s, arg);
    case kHelp:
      s->c->help = true;
      return 0;
    case kVersion:
      s->c->version = true;
      return 0;
    case kForeground:
      (s->helper ? s->c->fake : s->c->foreground) = true;  // mount -f: fake
      return 0;
    case kDebug:
      s->c->debug = s->c->foreground = true;
      return 0;
    case kType:
      if (s->helper) return 0;  // the type; we know it
      s->error = Status::InvalidArgument("unknown argument '-t' (see --help)");
      return -1;
    case kConfig:
      s->c->config = SplitItem(arg).value;
      return 0;
    default:
      s->given.push_back(SplitItem(arg));
      return 0;
  }
}

Status ParseArgv(int argc, char** argv, ArgState* state) {
  // fuse_opt would print its own message for a trailing -o.
  if (argc > 1 && std::strcmp(argv[argc - 1], "-o") == 0) {
    return Status::InvalidArgument("-o needs an argument");
  }
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  const int rc = fuse_opt_parse(&args, state, FuseOpts().data(), OnArg);
  fuse_opt_free_args(&args);
  if (!state->error.ok()) return state->error;
  if (rc != 0) return Status::InvalidArgument("bad command line (see --help)");
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

namespace {

// The defaults that depend on the user, the instance and the other options.
void FillDefaults(MountConfig* c) {
  const bool root = geteuid() == 0;
  if (root) c->allow_other = true;
  const std::string inst = std::to_string(c->instance ? c->instance : 1);
  if (c->store.size == 0) c->store.size = HalfOfRam();
  if (c->store.arena.empty()) {
    c->store.arena = root ? "/run/vineyardfs/" + inst : "/dev/shm/vineyardfs-" + inst;
  }
  if (c->store.state.empty()) {
    const char* home = std::getenv("HOME");
    c->store.state = root ? "/var/lib/vineyardfs/" + inst
                          : std::string(home ? home : "/tmp") + "/.local/state/vineyardfs/" + inst;
  }
  if (c->plugins.empty()) {
    c->plugins = (c->store.state == "none" ? c->store.arena : c->store.state) + "/resolvers";
  }
}

// The checks that involve more than one option, and the log's destination.
Status CheckTogether(MountConfig* c) {
  if (c->store.reserve > c->store.size / 2) {
    return Status::InvalidArgument("reserve=" + std::to_string(c->store.reserve) +
                                   " is more than half of size=" + std::to_string(c->store.size));
  }
  if (c->cluster.curve_secret.empty() != c->cluster.curve_peers.empty()) {
    return Status::InvalidArgument("curve_secret= and curve_peers= go together");
  }
  if (!c->cluster.listen.empty()) {
    const std::string own = ParseEndpoint(c->cluster.listen)->pub;
    for (auto& p : c->cluster.peers) {
      if (ParseEndpoint(p)->pub == own) {
        return Status::InvalidArgument("peer " + own + " is this node's own listen endpoint");
      }
    }
  }
  struct stat dev_log;
  if (c->log.empty()) {
    c->log =
        DefaultLog(c->foreground, stat("/dev/log", &dev_log) == 0, c->store.state, c->store.arena);
  } else if (c->log != "stderr" && c->log != "syslog" && c->log[0] != '/') {
    return Status::InvalidArgument("log must be syslog, stderr or an absolute file path, not '" +
                                   c->log + "'");
  } else if (c->log == "syslog" && stat("/dev/log", &dev_log) != 0) {
    return Status::InvalidArgument(
        "log=syslog, but no syslog daemon listens here (/dev/log does not exist): "
        "use log=FILE or log=stderr");
  }
  return Status::OK();
}

// "  key=ARG  help (default: ...)", wrapped at 80 columns under the help's column.
void AppendOptionHelp(const MountOption& o, std::string* out) {
  constexpr size_t kColumn = 21, kWidth = 80;
  std::string line = "  " + std::string(o.key) + (*o.arg ? "=" + std::string(o.arg) : "");
  line += line.size() < kColumn ? std::string(kColumn - line.size(), ' ') : "  ";
  std::string text = o.help;
  if (*o.default_text) text += " (default: " + std::string(o.default_text) + ")";
  size_t pos = 0, column = line.size();
  while (pos < text.size()) {
    size_t space = text.find(' ', pos);
    std::string word = text.substr(pos, space == std::string::npos ? space : space - pos);
    pos = space == std::string::npos ? text.size() : space + 1;
    if (column > kColumn && column + word.size() + 1 > kWidth) {
      *out += line + "\n";
      line = std::string(kColumn, ' ');
      column = kColumn;
    }
    line += (column > kColumn && line.back() != ' ' ? " " : "") + word;
    column = line.size();
  }
  *out += line + "\n";
}

}  // namespace

std::string MountUsage() {
  std::string text =
      "usage: vineyardfs <source> <mountpoint> [-f] [-d] [-o opt[=val],...]\n"
      "\n"
      "Mounts a vineyardfs object store. Returns once the mount is ready.\n"
      "\n"
      "  -f                 stay in the foreground, log to stderr unless log= is given\n"
      "  -d                 debug lines and a trace of every FUSE request in the log\n"
      "                     (implies -f)\n"
      "  -h, --help         this text\n"
      "  -V, --version      the version\n"
      "\n"
      "options (-o, or one key=value per line in a config=FILE):\n";
  for (const MountOption& o : MountOptionTable()) {
    if (o.help) AppendOptionHelp(o, &text);
  }
  text +=
      "  ro,nosuid,nodev,noexec,...  passed to the kernel; fstab-only options\n"
      "                     (defaults, noauto, _netdev, nofail, x-*) are ignored\n";
  return text;
}

Result<MountConfig> ParseMountArgs(int argc, char** argv) {
  MountConfig c;
  const char* base = std::strrchr(argv[0], '/');
  base = base ? base + 1 : argv[0];
  ArgState state{&c, std::strncmp(base, "mount.", 6) == 0, {}, {}, Status::OK()};
  VY_RETURN_IF_ERROR(ParseArgv(argc, argv, &state));
  if (c.help || c.version) return c;
  if (state.positional.size() != 2) {
    return Status::InvalidArgument("expected <source> <mountpoint> (see --help)");
  }
  c.source = state.positional[0];
  c.mountpoint = state.positional[1];

  std::vector<Item> all;
  if (!c.config.empty()) VY_RETURN_IF_ERROR(ReadConfig(c.config, &all));
  all.insert(all.end(), state.given.begin(), state.given.end());
  for (const Item& item : all) VY_RETURN_IF_ERROR(Apply(&c, item));
  FillDefaults(&c);
  VY_RETURN_IF_ERROR(CheckTogether(&c));
  c.builtin_plugins = BuiltinPluginDir(c.builtin_plugins);
  for (const MountOption& o : MountOptionTable()) {
    if (o.show) o.show(c, &c.shown);
  }
  return c;
}

}  // namespace vineyard
