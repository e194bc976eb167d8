#include "tools/mount_option_table.h"

#include <cstdio>
#include <cstdlib>

namespace vineyard {

namespace {

Status NeedValue(const char* key, const std::string& value, bool has_value) {
  if (!has_value || value.empty()) {
    return Status::InvalidArgument("option '" + std::string(key) + "' needs a value");
  }
  return Status::OK();
}

// A row's parser for a text member that takes any non-empty value.
Status SetText(std::string* member, const char* key, const std::string& value, bool has_value) {
  VY_RETURN_IF_ERROR(NeedValue(key, value, has_value));
  *member = value;
  return Status::OK();
}

// `value` is one of `allowed`; else `error` (which names the key and the choices).
Status OneOf(const std::string& value, std::initializer_list<const char*> allowed,
             const std::string& error) {
  for (const char* a : allowed) {
    if (value == a) return Status::OK();
  }
  return Status::InvalidArgument(error);
}

// A whole number in [lo, hi], else "<key> must be lo..hi, not '<value>'".
Result<long> ParseRange(const char* key, const std::string& value, long lo, long hi) {
  char* end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (*end || v < lo || v > hi) {
    return Status::InvalidArgument(std::string(key) + " must be " + std::to_string(lo) + ".." +
                                   std::to_string(hi) + ", not '" + value + "'");
  }
  return v;
}

Status ParsePeer(MountConfig* c, const std::string& value, bool has_value) {
  VY_RETURN_IF_ERROR(NeedValue("peer", value, has_value));
  auto ep = ParseEndpoint(value);
  if (!ep.ok()) return Status::InvalidArgument("peer: " + ep.status().message());
  for (auto& p : c->cluster.peers) {
    if (ParseEndpoint(p)->pub == ep->pub) {
      return Status::InvalidArgument("peer " + ep->pub + " is given twice");
    }
  }
  c->cluster.peers.push_back(value);
  return Status::OK();
}

Status ParseListen(MountConfig* c, const std::string& value, bool has_value) {
  VY_RETURN_IF_ERROR(NeedValue("listen", value, has_value));
  auto ep = ParseEndpoint(value);
  if (!ep.ok()) return Status::InvalidArgument("listen: " + ep.status().message());
  c->cluster.listen = value;
  return Status::OK();
}

Status ParseDurability(MountConfig* c, const std::string& value, bool) {
  if (value == "none") {
    c->store.durability = Durability::kNone;
  } else if (value == "async") {
    c->store.durability = Durability::kAsync;
  } else if (value == "sync") {
    c->store.durability = Durability::kSync;
  } else {
    return Status::InvalidArgument("durability must be none, async or sync, not '" + value + "'");
  }
  return Status::OK();
}

Status ParseNewTtl(MountConfig* c, const std::string& value, bool) {
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end || !(v >= 0 && v <= 30 * 86400)) {
    return Status::InvalidArgument("new_ttl must be 0..2592000 seconds, not '" + value + "'");
  }
  c->new_ttl = v;
  return Status::OK();
}

std::string FormatTtl(double ttl) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", ttl);
  return text;
}

bool InCluster(const MountConfig& c) {
  return !c.cluster.listen.empty() || !c.cluster.peers.empty();
}

// clang-format off
const std::vector<MountOption> kTable = {
  {"size", "SIZE",
   [](MountConfig* c, const std::string& v, bool has) {
     VY_RETURN_IF_ERROR(NeedValue("size", v, has));
     auto size = ParseSize(v);
     if (!size.ok()) return size.status();
     c->store.size = *size;
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["size"] = std::to_string(c.store.size); },
   "half of RAM", "arena capacity, e.g. 512M, 8G"},
  {"reserve", "SIZE",
   [](MountConfig* c, const std::string& v, bool has) {
     VY_RETURN_IF_ERROR(NeedValue("reserve", v, has));
     if (v == "0") {
       c->store.reserve = 0;
       return Status::OK();
     }
     auto size = ParseSize(v);
     if (!size.ok()) return size.status();
     c->store.reserve = *size;
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["reserve"] = std::to_string(c.store.reserve); },
   "0", "arena memory kept written ahead for fetched, reloaded and built payloads, at most "
   "size/2"},
  {"arena", "DIR",
   [](MountConfig* c, const std::string& v, bool has) {
     return SetText(&c->store.arena, "arena", v, has);
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["arena"] = c.store.arena; },
   "/run/vineyardfs/<instance> as root, /dev/shm/vineyardfs-<instance> otherwise",
   "payload directory; as root a tmpfs is mounted there"},
  {"state", "DIR|none",
   [](MountConfig* c, const std::string& v, bool has) {
     return SetText(&c->store.state, "state", v, has);
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["state"] = c.store.state; },
   "/var/lib/vineyardfs/<instance> as root, ~/.local/state/vineyardfs/<instance> otherwise",
   "RocksDB directory; none keeps nothing across restarts"},
  {"durability", "MODE", ParseDurability,
   [](const MountConfig& c, ShownOptions* o) {
     (*o)["durability"] = DurabilityName(c.store.durability);
   },
   "async", "none | async | sync"},
  {"instance", "N",
   [](MountConfig* c, const std::string& v, bool has) {
     VY_RETURN_IF_ERROR(NeedValue("instance", v, has));
     auto n = ParseRange("instance", v, 1, kMaxInstance);
     if (!n.ok()) return n.status();
     c->instance = static_cast<InstanceId>(*n);
     return Status::OK();
   },
   nullptr,  // the daemon shows the instance it runs as (stored, else 1)
   "stored, else 1", "this node's id, 1..32767"},
  {"huge", "POLICY",
   [](MountConfig* c, const std::string& v, bool) {
     VY_RETURN_IF_ERROR(OneOf(v, {"never", "always", "within_size", "advise"},
                              "huge must be never, always, within_size or advise"));
     c->store.huge = v;
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["huge"] = c.store.huge; },
   "within_size", "arena tmpfs huge pages: never | within_size | always | advise; payloads "
   "are collapsed after the seal"},
  {"listen", "ENDPOINT", ParseListen,
   [](const MountConfig& c, ShownOptions* o) {
     if (!c.cluster.listen.empty()) (*o)["listen"] = ParseEndpoint(c.cluster.listen)->pub;
   },
   "", "cluster: tcp://HOST:PORT (or PORT for 127.0.0.1) to publish on; PORT+1 serves "
   "snapshots and payloads"},
  {"peer", "ENDPOINT", ParsePeer,
   [](const MountConfig& c, ShownOptions* o) {
     for (size_t i = 0; i < c.cluster.peers.size(); ++i) {
       (*o)["peer." + std::to_string(i)] = ParseEndpoint(c.cluster.peers[i])->pub;
     }
   },
   "", "a peer's listen endpoint; repeat once per peer"},
  {"curve_secret", "FILE",
   [](MountConfig* c, const std::string& v, bool has) {
     return SetText(&c->cluster.curve_secret, "curve_secret", v, has);
   },
   [](const MountConfig& c, ShownOptions* o) {
     if (!c.cluster.curve_secret.empty()) (*o)["curve_secret"] = c.cluster.curve_secret;
   },
   "", "this node's CURVE secret key (vyctl keygen); with"},
  {"curve_peers", "DIR",
   [](MountConfig* c, const std::string& v, bool has) {
     return SetText(&c->cluster.curve_peers, "curve_peers", v, has);
   },
   [](const MountConfig& c, ShownOptions* o) {
     if (!c.cluster.curve_secret.empty()) (*o)["curve_peers"] = c.cluster.curve_peers;
   },
   "", "the public keys of the nodes allowed in (and their endpoints)"},
  {"heartbeat_ms", "N",
   [](MountConfig* c, const std::string& v, bool has) {
     VY_RETURN_IF_ERROR(NeedValue("heartbeat_ms", v, has));
     auto n = ParseRange("heartbeat_ms", v, 10, 60000);
     if (!n.ok()) return n.status();
     c->cluster.heartbeat_ms = static_cast<int>(*n);
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) {
     if (InCluster(c)) (*o)["heartbeat_ms"] = std::to_string(c.cluster.heartbeat_ms);
   },
   "200", "heartbeat period; a peer silent for 5 is down"},
  {"peer_buffer", "SIZE",
   [](MountConfig* c, const std::string& v, bool has) {
     VY_RETURN_IF_ERROR(NeedValue("peer_buffer", v, has));
     auto size = ParseSize(v);
     if (!size.ok()) return size.status();
     if (*size < (64u << 10)) return Status::InvalidArgument("peer_buffer must be at least 64K");
     c->cluster.peer_buffer = *size;
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) {
     if (InCluster(c)) (*o)["peer_buffer"] = std::to_string(c.cluster.peer_buffer);
   },
   "1G", "records held per peer while syncing with it; past it they are dropped"},
  {"plugins", "DIR",
   [](MountConfig* c, const std::string& v, bool has) {
     return SetText(&c->plugins, "plugins", v, has);
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["plugins"] = c.plugins; },
   "<state>/resolvers, <arena>/resolvers if state=none",
   "plugin directory, shown as resolvers/ and watched"},
  {"builtin_plugins", "DIR|none",
   [](MountConfig* c, const std::string& v, bool has) {
     return SetText(&c->builtin_plugins, "builtin_plugins", v, has);
   },
   [](const MountConfig& c, ShownOptions* o) {
     (*o)["builtin_plugins"] = c.builtin_plugins.empty() ? "none" : c.builtin_plugins;
   },
   "beside the daemon in a build tree, else <libdir>/vineyardfs/plugins",
   "the builtin plugins (numpy, json, csv)"},
  {"remote", "fetch|error",
   [](MountConfig* c, const std::string& v, bool) {
     VY_RETURN_IF_ERROR(OneOf(v, {"fetch", "error"},
                              "remote must be fetch or error, not '" + v + "'"));
     c->remote = v;
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["remote"] = c.remote; },
   "fetch", "reading a payload that lives on another node"},
  {"passthrough", "MODE",
   [](MountConfig* c, const std::string& v, bool) {
     VY_RETURN_IF_ERROR(OneOf(v, {"on", "off", "auto"},
                              "passthrough must be on, off or auto, not '" + v + "'"));
     c->passthrough = v;
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["passthrough"] = c.passthrough; },
   "auto", "on | off | auto: FUSE passthrough for payloads and uploads; auto: when the "
   "kernel and CAP_SYS_ADMIN allow"},
  {"passthrough_min", "SIZE",
   [](MountConfig* c, const std::string& v, bool has) {
     VY_RETURN_IF_ERROR(NeedValue("passthrough_min", v, has));
     if (v == "0") {
       c->passthrough_min = 0;  // passthrough for every payload
       return Status::OK();
     }
     auto size = ParseSize(v);
     if (!size.ok()) return Status::InvalidArgument("passthrough_min: " + size.status().message());
     c->passthrough_min = *size;
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) {
     (*o)["passthrough_min"] = std::to_string(c.passthrough_min);
   },
   "1M", "payloads of at most SIZE go through the page cache instead of passthrough "
   "(a warm open+mmap: one request); 0: passthrough for every payload"},
  {"new_ttl", "SECONDS", ParseNewTtl,
   [](const MountConfig& c, ShownOptions* o) { (*o)["new_ttl"] = FormatTtl(c.new_ttl); },
   "60", "how long new/<file> stays a link after its seal, so that the name can be "
   "written again; 0: until rm"},
  {"allow_other", "",
   [](MountConfig* c, const std::string&, bool) {
     c->allow_other = true;
     return Status::OK();
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["allow_other"] = c.allow_other ? "1" : "0"; },
   "on when root", "let other users in"},
  // Always on: ownership and the sticky directories are enforced by the kernel.
  {"default_permissions", "",
   [](MountConfig*, const std::string&, bool) { return Status::OK(); },
   [](const MountConfig&, ShownOptions* o) { (*o)["default_permissions"] = "1"; },
   "", nullptr},
  {"log", "DEST",
   [](MountConfig* c, const std::string& v, bool has) {
     return SetText(&c->log, "log", v, has);
   },
   [](const MountConfig& c, ShownOptions* o) { (*o)["log"] = c.log; },
   "stderr with -f, else syslog when /dev/log exists, else <state>/vineyardfs.log, "
   "<arena>.log with state=none",
   "syslog | stderr | FILE (an absolute path): where the log goes"},
  {"config", "FILE", nullptr,
   [](const MountConfig& c, ShownOptions* o) {
     if (!c.config.empty()) (*o)["config"] = c.config;
   },
   "", "read options from FILE, one key=value per line (# comments); -o wins"},
};
// clang-format on

}  // namespace

const std::vector<MountOption>& MountOptionTable() { return kTable; }

const MountOption* FindMountOption(const std::string& key) {
  for (const MountOption& o : kTable) {
    if (key == o.key) return &o;
  }
  return nullptr;
}

}  // namespace vineyard
