// Loading plugins: the directories, dlopen from a memfd, the ABI check, the
// registration and its conflicts, and the inotify watcher of the user directory.
#include "host/plugin_host.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "host/plugin_internal.h"
#include "meta/log.h"

namespace vineyard {

PluginHost::Plugin::~Plugin() {
  if (handle) dlclose(handle);
  if (memfd >= 0) close(memfd);
}

namespace {

std::optional<FileIdentity> Identify(const std::string& path, uint64_t* size) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  *size = static_cast<uint64_t>(st.st_size);
  return FileIdentity{st.st_dev, st.st_ino, st.st_size,
                      int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
}

std::vector<std::string> ListPlugins(const std::string& dir) {
  std::vector<std::string> out;
  if (dir.empty()) return out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (PluginHost::IsPluginFile(e->d_name)) out.push_back(e->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Copies the file into a memfd: the code we run cannot change under us.
Result<int> CopyToMemfd(const std::string& file, const std::string& path) {
  int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::FromErrno("open " + path, errno);
  char magic[4] = {0};
  ssize_t got = pread(in, magic, 4, 0);
  if (got != 4 || std::memcmp(magic,
                              "\x7f"
                              "ELF",
                              4) != 0) {
    close(in);
    return Status::InvalidArgument("not an ELF shared object");
  }
  int fd = memfd_create(file.c_str(), MFD_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    close(in);
    return Status::FromErrno("memfd_create", err);
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(in);
      close(fd);
      return Status::FromErrno("read " + path, err);
    }
    if (n == 0) break;
    if (write(fd, buf, static_cast<size_t>(n)) != n) {
      int err = errno;
      close(in);
      close(fd);
      return Status::FromErrno("copy " + path, err);
    }
  }
  close(in);
  return fd;
}

// The first conflict between `reg` (a plugin being loaded) and `with`.
std::string Conflict(const vy_registry& reg, const PluginHost::Registry& with) {
  for (auto& r : reg.resolvers) {
    for (auto& o : with.resolvers) {
      if (o.prefix == r.prefix && o.view == r.view) {
        return "resolver " + r.prefix + " -> " + r.view + " is already registered by " +
               o.plugin->file;
      }
    }
  }
  for (auto& b : reg.builders) {
    for (auto& o : with.builders) {
      if (!b.suffix.empty() && o.suffix == b.suffix) {
        return "builder for *" + b.suffix + " is already registered by " + o.plugin->file;
      }
      if (!b.magic.empty() && o.magic == b.magic) {
        return "builder for these magic bytes is already registered by " + o.plugin->file;
      }
    }
  }
  return "";
}

// `reg` without anything of plugin `file`.
PluginHost::Registry Without(const PluginHost::Registry& reg, const std::string& file) {
  PluginHost::Registry out;
  for (auto& r : reg.resolvers) {
    if (r.plugin->file != file) out.resolvers.push_back(r);
  }
  for (auto& b : reg.builders) {
    if (b.plugin->file != file) out.builders.push_back(b);
  }
  out.loaded = reg.loaded;
  out.loaded.erase(file);
  out.refused = reg.refused;
  out.refused.erase(file);
  out.Index();
  return out;
}

}  // namespace

bool PluginHost::IsPluginFile(const std::string& name) {
  return name.size() > 3 && name[0] != '.' && name.compare(name.size() - 3, 3, ".so") == 0 &&
         ValidateName(name).ok();
}

PluginHost::PluginHost(ObjectStore* objects, PluginHostOptions opts)
    : objects_(objects),
      opts_(std::move(opts)),
      registry_(std::make_shared<Registry>()) {}

PluginHost::~PluginHost() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof one) < 0)
      VY_LOG_WARN("stop plugin watcher: %s", strerror(errno));
    watcher_.join();
  }
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  MutexLock lock(&mu_);
  views_.clear();
  registry_ = std::make_shared<Registry>();
}

void PluginHost::OnChange(std::function<void()> fn) { on_change_ = std::move(fn); }

std::shared_ptr<const PluginHost::Registry> PluginHost::registry() const {
  MutexLock lock(&mu_);
  return registry_;
}

uint64_t PluginHost::generation() const {
  MutexLock lock(&mu_);
  return generation_;
}

size_t PluginHost::loaded_count() const { return registry()->loaded.size(); }

void PluginHost::Start() {
  {
    MutexLock lock(&load_mu_);
    auto user = ListPlugins(opts_.dir);
    for (auto& f : user) (void)LoadFile(f, opts_.dir + "/" + f, false);
    for (auto& f : ListPlugins(opts_.builtin_dir)) {
      if (std::find(user.begin(), user.end(), f) == user.end()) {
        (void)LoadFile(f, opts_.builtin_dir + "/" + f, true);
      }
    }
  }
  Changed();
  if (opts_.dir.empty()) return;
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (inotify_fd_ < 0 || stop_fd_ < 0 ||
      inotify_add_watch(inotify_fd_, opts_.dir.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0) {
    VY_LOG_WARN("cannot watch %s for plugins: %s", opts_.dir.c_str(), strerror(errno));
    return;
  }
  watcher_ = std::thread([this] { WatchLoop(); });
}

void PluginHost::WatchLoop() {
  alignas(inotify_event) char buf[16384];
  for (;;) {
    pollfd p[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    ssize_t n = read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) continue;
    std::vector<std::string> files;
    for (char* q = buf; q < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(q);
      if (ev->len && IsPluginFile(ev->name) &&
          std::find(files.begin(), files.end(), ev->name) == files.end()) {
        files.push_back(ev->name);
      }
      q += sizeof(inotify_event) + ev->len;
    }
    for (auto& f : files) Refresh(f);
  }
}

void PluginHost::Refresh(const std::string& file) {
  if (!IsPluginFile(file)) return;
  bool changed;
  {
    MutexLock lock(&load_mu_);
    uint64_t gen_before = generation();
    const std::string user = opts_.dir + "/" + file;
    const std::string builtin = opts_.builtin_dir.empty() ? "" : opts_.builtin_dir + "/" + file;
    uint64_t size;
    if (!opts_.dir.empty() && Identify(user, &size)) {
      (void)LoadFile(file, user, false);
    } else {
      Unload(file);
      if (!builtin.empty() && Identify(builtin, &size)) (void)LoadFile(file, builtin, true);
    }
    changed = generation() != gen_before;
  }
  if (changed && on_change_) on_change_();
}

// LoadFile (below, with load_mu_ held) bumps the generation when the registry changes.
namespace {

// Copies `plugin`'s file into a memfd, dlopens it, checks its ABI version and runs its
// registration into `reg`. Returns why it was refused ("" when it may be loaded: its
// registrations do not conflict with `base`).
std::string OpenPlugin(PluginHost::Plugin* plugin, const PluginHost::Registry& base,
                       vy_registry* reg) {
  auto memfd = CopyToMemfd(plugin->file, plugin->path);
  if (!memfd.ok()) return memfd.status().message();
  plugin->memfd = *memfd;
  const std::string fdpath = "/proc/self/fd/" + std::to_string(*memfd);
  plugin->handle = dlopen(fdpath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!plugin->handle) {
    const char* e = dlerror();
    return std::string("dlopen: ") + (e ? e : "unknown error");
  }
  auto* abi = static_cast<const uint32_t*>(dlsym(plugin->handle, "vy_plugin_abi_version"));
  auto* entry = reinterpret_cast<int (*)(const vy_host*, vy_registry*)>(
      dlsym(plugin->handle, "vy_plugin_register"));
  if (!abi) return "missing symbol vy_plugin_abi_version (build it with VY_PLUGIN_ABI)";
  if (*abi != VY_PLUGIN_ABI_VERSION) {
    return "built for plugin ABI version " + std::to_string(*abi) + ", this daemon speaks " +
           std::to_string(VY_PLUGIN_ABI_VERSION);
  }
  if (!entry) return "missing symbol vy_plugin_register";
  int rc;
  try {
    rc = entry(&kVyHost, reg);
  } catch (...) {
    rc = -EIO;
    reg->error = "vy_plugin_register threw an exception";
  }
  if (rc != 0) {
    return "vy_plugin_register returned " + std::to_string(rc) +
           (reg->error.empty() ? "" : ": " + reg->error);
  }
  if (!reg->error.empty()) return reg->error;
  return Conflict(*reg, base);
}

}  // namespace

Status PluginHost::LoadFile(const std::string& file, const std::string& path, bool builtin) {
  uint64_t size = 0;
  auto identity = Identify(path, &size);
  auto current = registry();
  if (!identity) {
    Unload(file);
    return Status::NotFound(path);
  }
  auto loaded = current->loaded.find(file);
  if (loaded != current->loaded.end() && loaded->second->path == path &&
      loaded->second->identity == *identity) {
    return Status::OK();  // already this very file
  }
  auto refused = current->refused.find(file);
  if (refused != current->refused.end() && refused->second.path == path &&
      refused->second.identity == *identity) {
    return Status::InvalidArgument(refused->second.error);
  }

  auto plugin = std::make_shared<Plugin>();
  plugin->file = file;
  plugin->path = path;
  plugin->builtin = builtin;
  plugin->identity = *identity;
  plugin->size = size;
  vy_registry reg;
  Registry base = Without(*current, file);  // a new version replaces the old one
  std::string error = OpenPlugin(plugin.get(), base, &reg);

  auto next = std::make_shared<Registry>(std::move(base));
  if (error.empty()) {
    for (auto& r : reg.resolvers) {
      r.plugin = plugin;
      next->resolvers.push_back(r);
    }
    for (auto& b : reg.builders) {
      b.plugin = plugin;
      next->builders.push_back(b);
    }
    next->loaded[file] = plugin;
    next->Index();
    VY_LOG_INFO("plugin %s loaded from %s: %zu resolvers, %zu builders", file.c_str(), path.c_str(),
                reg.resolvers.size(), reg.builders.size());
  } else {
    next->refused[file] = Registry::Refused{path, error, builtin, *identity, size};
    VY_LOG_WARN("plugin %s refused: %s", file.c_str(), error.c_str());
  }
  {
    MutexLock lock(&mu_);
    registry_ = std::move(next);
    ++generation_;
    views_.clear();
    views_bytes_ = 0;
  }
  // `plugin` (if refused) and `reg` go here: a refused plugin is closed at once.
  if (!error.empty()) return Status::InvalidArgument(error);
  return Status::OK();
}

void PluginHost::Unload(const std::string& file) {
  auto current = registry();
  if (!current->loaded.count(file) && !current->refused.count(file)) return;
  auto next = std::make_shared<Registry>(Without(*current, file));
  if (current->loaded.count(file)) VY_LOG_INFO("plugin %s unloaded", file.c_str());
  MutexLock lock(&mu_);
  registry_ = std::move(next);
  ++generation_;
  views_.clear();
  views_bytes_ = 0;
}

void PluginHost::Changed() {
  if (on_change_) on_change_();
}

std::vector<PluginHost::Entry> PluginHost::List() const {
  auto reg = registry();
  std::vector<Entry> out;
  for (auto& [file, p] : reg->loaded) {
    out.push_back(Entry{file, p->builtin, true, "", p->size, p->path});
  }
  for (auto& [file, r] : reg->refused) {
    out.push_back(Entry{file, r.builtin, false, r.error, r.size, r.path});
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.file < b.file; });
  return out;
}

std::optional<PluginHost::Entry> PluginHost::Find(const std::string& file) const {
  for (auto& e : List()) {
    if (e.file == file) return e;
  }
  return std::nullopt;
}

}  // namespace vineyard
