// vineyardfs: the daemon and mount helper. main() follows libfuse's hello_ll.c:
// parse, build the filesystem, create the session, install signal handlers, mount,
// daemonize, loop, unmount — each step's failure undoing the ones before.
//
// Unlike fuse_daemonize(), the fork happens first: RocksDB and the store start
// threads, which a later fork would lose. The parent waits on a pipe until the child
// has mounted (or failed), so `vineyardfs` returns when the mount is ready, with the
// child's exit status.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "fs/fs.h"
#include "meta/log.h"
#include "meta/object_table.h"
#include "meta/replicator.h"
#include "store/store.h"
#include "tools/mount_options.h"

namespace vineyard {
namespace {

// Forks; the parent waits for one status byte from the child and exits with it.
// Returns the write end of the pipe in the child.
int ForkAndWait() {
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("vineyardfs: pipe");
    std::exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("vineyardfs: fork");
    std::exit(1);
  }
  if (pid > 0) {
    close(fds[1]);
    char status = 1;
    ssize_t n;
    do {
      n = read(fds[0], &status, 1);
    } while (n < 0 && errno == EINTR);
    std::exit(n == 1 ? status : 1);
  }
  close(fds[0]);
  setsid();
  return fds[1];
}

void Detach(int pipe_fd) {
  (void)chdir("/");
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
  LogToSyslog();
  char ok = 0;
  (void)write(pipe_fd, &ok, 1);
  close(pipe_fd);
}

// The kernel's "major:minor" of the mount at `mountpoint` (from mountinfo).
std::string MountDevice(const std::string& mountpoint) {
  char real[PATH_MAX];
  if (!realpath(mountpoint.c_str(), real)) return {};
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point == real && line.find("fuse.vineyardfs") != std::string::npos) found = dev;
  }
  return found;
}

// Receives and handles one request: the kernel's INIT, which comes first.
bool ProcessInit(fuse_session* se) {
  fuse_buf buf{};
  int n = fuse_session_receive_buf(se, &buf);
  if (n <= 0) return false;
  fuse_session_process_buf(se, &buf);
  free(buf.mem);
  return true;
}

// Raises the FUSE mount's read-ahead (for the cached path: one READ per MiB).
void SetReadAhead(const std::string& device, int kb) {
  if (device.empty()) return;
  std::string path = "/sys/class/bdi/" + device + "/read_ahead_kb";
  std::ofstream out(path);
  out << kb;
  if (!out) VY_LOG_INFO("could not set %s (not root?)", path.c_str());
}

// mkdir -p, mode 0755 (root owns it as root: a plugin is code the daemon runs).
bool MakePluginDir(const std::string& dir) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    std::string cur = dir.substr(0, pos);
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

int Run(int argc, char** argv) {
  auto parsed = ParseMountArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "vineyardfs: %s\n", parsed.status().message().c_str());
    return 2;
  }
  MountConfig& cfg = *parsed;
  if (cfg.help) {
    std::fputs(MountUsage(), stdout);
    return 0;
  }
  if (cfg.version) {
    std::printf("vineyardfs %s (libfuse %s)\n", VINEYARDFS_VERSION, fuse_pkgversion());
    return 0;
  }
  if (cfg.fake) return 0;
  int pipe_fd = cfg.foreground ? -1 : ForkAndWait();
  auto fail = [&](const std::string& what) {
    VY_LOG_ERROR("%s", what.c_str());
    if (pipe_fd >= 0) {
      char bad = 1;
      (void)write(pipe_fd, &bad, 1);
    }
    return 1;
  };

  InstanceId instance = cfg.instance;
  auto store = Store::Open(cfg.store, &instance);
  if (!store.ok()) return fail(store.status().ToString());
  ObjectTable table(instance, (*store)->journal());
  std::vector<std::string> warnings;
  Status s = table.Load(&warnings);
  if (!s.ok()) return fail("loading the object table: " + s.ToString());
  for (auto& w : warnings) VY_LOG_WARN("recovery: %s", w.c_str());
  std::vector<std::pair<ObjectID, uint64_t>> blobs;
  for (uint64_t after = 0;;) {
    auto ids = table.ListObjects(after, 65536);
    if (ids.empty()) break;
    for (ObjectID id : ids) {
      // Other nodes' blobs have no payload here to recover (cached copies are not kept).
      if (id.is_blob() && id.instance() == instance)
        table.With(id, [&](const ObjectRecord& r) { blobs.emplace_back(id, r.size); });
    }
    after = ids.back().raw();
  }
  std::vector<ObjectID> lost = (*store)->Recover(blobs);
  if (!lost.empty()) {
    VY_LOG_WARN("recovery: %zu blob(s) had no durable payload and are gone", lost.size());
    s = table.DropLost(lost);
    if (!s.ok()) return fail("recovery: " + s.ToString());
  }
  ObjectTable::Counts counts = table.counts();
  VY_LOG_INFO("instance %u: %llu objects, %llu names recovered", instance,
              static_cast<unsigned long long>(counts.objects),
              static_cast<unsigned long long>(counts.names));

  std::unique_ptr<Replicator> cluster;
  if (!cfg.cluster.listen.empty() || !cfg.cluster.peers.empty()) {
    cfg.cluster.instance = instance;
    Store* st = store->get();
    auto reader = [st, &table](ObjectID id, uint64_t offset, char* buf,
                               uint32_t* len) -> Result<uint64_t> {
      // Only persisted payloads leave the node: a transient blob is nobody else's business
      // (and ids are easy to guess).
      bool persisted = false;
      table.With(id, [&](const ObjectRecord& r) { persisted = !r.transient; });
      if (id.instance() != st->instance() || !persisted) {
        return Status::NotFound(id.ToString() + " is not a persisted blob of this node");
      }
      auto fd = st->OpenBlob(id);
      if (!fd.ok()) return fd.status();
      struct stat sb;
      Status s = fstat(*fd, &sb) == 0 ? Status::OK() : Status::FromErrno("stat payload", errno);
      uint64_t total = static_cast<uint64_t>(sb.st_size), want = *len;
      *len = 0;
      if (s.ok() && offset > total) {
        s = Status::InvalidArgument("offset " + std::to_string(offset) + " is past the end of " +
                                    id.ToString() + " (" + std::to_string(total) + " bytes)");
      }
      while (s.ok() && offset + *len < total && *len < want) {
        ssize_t n = pread(*fd, buf + *len, want - *len, static_cast<off_t>(offset + *len));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          s = n < 0 ? Status::FromErrno("read payload", errno) : Status::IOError("short payload");
          break;
        }
        *len += static_cast<uint32_t>(n);
      }
      close(*fd);
      st->CloseBlob(id);
      if (!s.ok()) return s;
      return total;
    };
    auto started = Replicator::Start(cfg.cluster, &table, reader);
    if (!started.ok()) return fail("cluster: " + started.status().ToString());
    cluster = std::move(*started);
    Replicator* rep = cluster.get();
    const bool fetch = cfg.remote == "fetch";
    Store::Remote remote;
    remote.size = [&table, fetch](ObjectID id) -> Result<uint64_t> {
      auto r = table.Get(id);
      if (!r || !r->is_blob()) return Status::NotFound("no blob " + id.ToString());
      if (!fetch) {
        return Status::Remote("the payload of " + id.ToString() + " is on instance " +
                              std::to_string(r->instance) + " and remote=error");
      }
      return r->size;
    };
    remote.fetch = [rep](ObjectID id, uint64_t size, const Store::Remote::Sink& append) {
      return rep->Fetch(id, size, append);
    };
    (*store)->SetRemote(std::move(remote));
  }

  FsOptions fs_opts;
  fs_opts.cluster = cluster.get();
  fs_opts.shown_options = cfg.shown;
  fs_opts.shown_options["instance"] = std::to_string(instance);
  char real[PATH_MAX];
  fs_opts.mountpoint = realpath(cfg.mountpoint.c_str(), real) ? real : cfg.mountpoint;
  fs_opts.passthrough = cfg.passthrough == "on"    ? PassthroughMode::kOn
                        : cfg.passthrough == "off" ? PassthroughMode::kOff
                                                   : PassthroughMode::kAuto;
  fs_opts.plugins = cfg.plugins;
  fs_opts.builtin_plugins = cfg.builtin_plugins;
  if (!MakePluginDir(cfg.plugins)) return fail("cannot create the plugin directory " + cfg.plugins);
  VineyardFs fs(store->get(), &table, fs_opts);

  std::string opts = "fsname=" + cfg.source + ",subtype=vineyardfs,default_permissions";
  if (cfg.allow_other) opts += ",allow_other";
  for (auto& o : cfg.fuse_opts) opts += "," + o;
  std::vector<const char*> fargv = {argv[0], "-o", opts.c_str()};
  if (cfg.debug) fargv.push_back("-d");
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fargv.size()), const_cast<char**>(fargv.data()));
  fuse_session* se = fuse_session_new(&args, &fs.ops(), sizeof(fuse_lowlevel_ops), fs.userdata());
  if (!se) return fail("could not create the FUSE session (bad mount options?)");
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return fail("could not install signal handlers");
  }
  if (fuse_session_mount(se, cfg.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return fail("could not mount on " + cfg.mountpoint);
  }
  fs.options().device = MountDevice(cfg.mountpoint);
  // INIT is handled here, before the loop, so that the passthrough probe (which needs
  // the kernel to have accepted INIT) decides the I/O path before the mount is
  // reported ready.
  std::string why;
  s = fs.InstallPassthrough(se);
  if (s.ok() && !ProcessInit(se)) s = Status::IOError("no INIT request from the kernel");
  if (s.ok() && !fs.ProbePassthrough(cfg.store.arena, &why)) {
    s = Status::NotSupported("passthrough=on but " + why);
  }
  if (!s.ok()) {
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return fail(s.ToString());
  }
  VY_LOG_INFO("I/O path: %s", why.c_str());
  SetReadAhead(fs.options().device, 1024);
  fs.Attach(se);
  VY_LOG_INFO("mounted %s on %s (arena %s, state %s)", cfg.source.c_str(), cfg.mountpoint.c_str(),
              cfg.store.arena.c_str(), cfg.store.state.c_str());
  if (pipe_fd >= 0) Detach(pipe_fd);

  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(loop, 0);
  fuse_loop_cfg_set_max_threads(loop, 16);
  int rc = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);

  fs.Detach();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  VY_LOG_INFO("unmounted %s", cfg.mountpoint.c_str());
  // libfuse reports the signal that ended the loop (SIGTERM, SIGINT, SIGHUP): a clean
  // stop, not a failure.
  return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}

}  // namespace
}  // namespace vineyard

int main(int argc, char** argv) { return vineyard::Run(argc, argv); }
