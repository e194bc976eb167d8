// Internals shared by plugin_host.cc (loading, the registry, the watcher) and
// plugin_calls.cc (the vy_host functions plugins call, resolve and build).
#pragma once

#include <sys/stat.h>

#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/plugin_host.h"
#include "meta/typename.h"
#include "vineyardfs/plugin.h"

namespace vineyard {

// What makes a plugin file "the same file": loading again only when it changes.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
};

// A loaded plugin: dlclose()d when the last registry or call holding it lets go.
struct PluginHost::Plugin {
  std::string file;  // "numpy.so"
  std::string path;  // where it was loaded from
  bool builtin = false;
  FileIdentity identity;
  uint64_t size = 0;
  void* handle = nullptr;
  int memfd = -1;  // holds the code: the path may change under us
  ~Plugin();
};

struct ResolverReg {
  std::string prefix, view;
  vy_resolve_fn fn = nullptr;
  void* arg = nullptr;
  std::shared_ptr<PluginHost::Plugin> plugin;
};

struct BuilderReg {
  std::string name, suffix, magic;
  vy_build_fn fn = nullptr;
  void* arg = nullptr;
  std::shared_ptr<PluginHost::Plugin> plugin;
};

// An immutable snapshot of what is loaded and what was refused.
struct PluginHost::Registry {
  std::vector<ResolverReg> resolvers;
  std::vector<BuilderReg> builders;
  std::map<std::string, std::shared_ptr<Plugin>> loaded;  // file -> plugin
  struct Refused {
    std::string path, error;
    bool builtin = false;
    FileIdentity identity;
    uint64_t size = 0;
  };
  std::map<std::string, Refused> refused;  // file -> why
  // view name -> typename prefix -> index in `resolvers` (Vineyard's longest-prefix
  // rule, meta/typename.h). Rebuilt by Index() whenever `resolvers` changes.
  std::map<std::string, PrefixMatcher<size_t>> by_view;
  void Index() {
    by_view.clear();
    for (size_t i = 0; i < resolvers.size(); ++i)
      by_view[resolvers[i].view].Add(resolvers[i].prefix, i);
  }
};

}  // namespace vineyard

// The registrations a plugin makes during vy_plugin_register.
struct vy_registry {
  std::vector<vineyard::ResolverReg> resolvers;
  std::vector<vineyard::BuilderReg> builders;
  std::string error;  // the first malformed registration
};

// One resolve or build call: what the host handed out lives here until it returns.
struct vy_call {
  vineyard::ObjectStore* objects = nullptr;
  std::string error;                       // set_error
  std::deque<std::string> strings;         // returned char pointers
  std::map<vy_id, nlohmann::json> metas;   // parsed meta.json by id
  std::vector<vineyard::PinnedBlob> maps;  // map_blob
  // Resolving: the view being described.
  vineyard::ResolvedView* view = nullptr;
  // Building: the upload and what the call created, in order.
  bool building = false;
  int upload_fd = -1;
  uint64_t upload_size = 0;
  vineyard::Owner owner;
  std::vector<vineyard::ObjectID> created;
  bool no_space = false;  // a creation failed for want of arena space

  ~vy_call();  // unmaps what map_blob mapped
};

namespace vineyard {
extern const vy_host kVyHost;
std::string PluginLogPrefix();
}  // namespace vineyard
