// vineyardfs: the daemon and mount helper. main() follows libfuse's hello_ll.c:
// parse, build the filesystem, create the session, install signal handlers, mount,
// daemonize, loop, unmount — each step's failure undoing the ones before.
//
// Unlike fuse_daemonize(), the fork happens first: RocksDB and the store start
// threads, which a later fork would lose. The parent waits on a pipe until the child
// has mounted (or failed and undone what it did), so `vineyardfs` returns when the
// mount is ready, with the child's exit status. Under systemd (Type=notify, -f) the
// daemon says READY=1 at the same moment.
//
// Nothing is created before the mount point is known to be usable (tools/
// mount_safety.h); a failure after that undoes what the attempt created: the FUSE
// mount, cluster sockets, the arena tmpfs, the state lock, directories and the log
// file it made.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
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
#include "tools/mount_safety.h"
#include "tools/mount_table.h"
#include "vineyardfs/version.h"

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

// Reports the child's exit status to the waiting parent (once).
void ReportToParent(int* pipe_fd, char status) {
  if (*pipe_fd < 0) return;
  (void)write(*pipe_fd, &status, 1);
  close(*pipe_fd);
  *pipe_fd = -1;
}

// The mount is ready: let the parent return, and let go of its terminal. stderr (fd
// 2) stays the log's capture pipe.
void Detach(int* pipe_fd) {
  (void)chdir("/");
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    if (null > 2) close(null);
  }
  SetLogEcho(false);
  CloseLogStderr();
  ReportToParent(pipe_fd, 0);
}

// Sends the log to `dest` (log=), creating a log file's directory if needed.
Status OpenLog(const std::string& dest, MountUndo* undo) {
  if (dest == "stderr") {
    LogToStderr();
    return Status::OK();
  }
  if (dest == "syslog") {
    LogToSyslog();
  } else {
    VY_RETURN_IF_ERROR(undo->MakeDirs(dest.substr(0, dest.rfind('/')), 0755));
    undo->NoteNewFile(dest);
    VY_RETURN_IF_ERROR(LogToFile(dest));
  }
  SetLogEcho(true);  // errors reach the terminal of `vineyardfs` until it returns
  return Status::OK();
}

// The kernel's "major:minor" of the mount at `point` (resolved before the mount):
// from the mount table, since a stat(2) would wait for the INIT that this thread has
// yet to answer.
std::string MountDevice(const std::string& point) {
  auto table = ReadMountTable();
  const MountEntry* top = TopMountAt(table, point);
  return top && top->type == "fuse.vineyardfs" ? top->device : std::string();
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

// Runs the daemon; *pipe_fd is the write end of the pipe to a waiting parent (-1 in
// the foreground), reported to and closed once the mount is ready. Everything Run()
// made is destroyed when it returns, before main reports a failure to the parent.
int Run(int argc, char** argv, int* pipe_fd) {
  auto parsed = ParseMountArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "vineyardfs: %s\n", parsed.status().message().c_str());
    return 2;
  }
  MountConfig& cfg = *parsed;
  if (cfg.help) {
    std::fputs(MountUsage().c_str(), stdout);
    return 0;
  }
  if (cfg.version) {
    std::printf("vineyardfs %s (libfuse %s)\n", VINEYARDFS_VERSION, fuse_pkgversion());
    return 0;
  }
  if (cfg.fake) return 0;
  // Before anything is created: a missing mount point or one that is a vineyardfs
  // mount already (live, or dead after kill -9) is refused here.
  Status s = CheckMountPoint(cfg.mountpoint);
  if (!s.ok()) {
    std::fprintf(stderr, "vineyardfs: %s\n", s.message().c_str());
    return 1;
  }
  if (!cfg.foreground) *pipe_fd = ForkAndWait();
  auto fail = [&](const std::string& what) {
    VY_LOG_ERROR("%s", what.c_str());
    return 1;
  };
  // libfuse's messages (and its -d trace) become log lines with timestamps and levels.
  s = CaptureStderr();
  if (!s.ok()) return fail(s.ToString());
  if (cfg.debug) SetLogLevel(LogLevel::kDebug);

  // Declared first, destroyed last: undoes what this attempt made unless it mounts.
  MountUndo undo;
  if (!cfg.store.stateless()) {  // first: the default log file lives there, and it is 0700
    s = undo.MakeDirs(cfg.store.state, 0700);
    if (!s.ok()) return fail("state: " + s.ToString());
  }
  s = OpenLog(cfg.log, &undo);
  if (!s.ok()) return fail("log=" + cfg.log + ": " + s.ToString());
  VY_LOG_INFO("vineyardfs %s (libfuse %s) mounting %s on %s, log: %s", VINEYARDFS_VERSION,
              fuse_pkgversion(), cfg.source.c_str(), cfg.mountpoint.c_str(), cfg.log.c_str());

  // The state is one daemon's: a second one is refused at once, naming the first.
  std::unique_ptr<StateLock> lock;
  if (!cfg.store.stateless()) {
    auto locked = StateLock::Acquire(cfg.store.state, cfg.mountpoint);
    if (!locked.ok()) return fail(locked.status().message());
    lock = std::move(*locked);
  }
  s = undo.MakeDirs(cfg.store.arena, 0700);
  if (!s.ok()) return fail("arena: " + s.ToString());
  undo.NoteArena(cfg.store.arena);

  InstanceId instance = cfg.instance;
  // How long each step of loading the state takes (logged with the counts below).
  auto t_open = std::chrono::steady_clock::now();
  auto secs_since = [](std::chrono::steady_clock::time_point& t) {
    auto now = std::chrono::steady_clock::now();
    double d = std::chrono::duration<double>(now - t).count();
    t = now;
    return d;
  };
  auto store = Store::Open(cfg.store, &instance);
  if (!store.ok()) return fail(store.status().ToString());
  const double open_s = secs_since(t_open);
  (*store)->StartRecoveryScan();  // overlaps the table's load
  ObjectTable table(instance, (*store)->journal());
  std::vector<std::string> warnings;
  s = table.Load(&warnings);
  const double load_s = secs_since(t_open);
  if (!s.ok()) return fail("loading the object table: " + s.ToString());
  for (auto& w : warnings) VY_LOG_WARN("recovery: %s", w.c_str());
  std::vector<std::pair<ObjectID, uint64_t>> blobs;
  blobs.reserve(table.counts().blobs);
  table.ForEach([&](const ObjectRecord& r) {
    // Other nodes' blobs have no payload here to recover (cached copies are not kept).
    if (r.is_blob() && r.id.instance() == instance) blobs.emplace_back(r.id, r.size);
  });
  std::vector<ObjectID> lost = (*store)->Recover(blobs);
  if (!lost.empty()) {
    VY_LOG_WARN("recovery: %zu blob(s) had no durable payload and are gone", lost.size());
    s = table.DropLost(lost);
    if (!s.ok()) return fail("recovery: " + s.ToString());
  }
  const double recover_s = secs_since(t_open);
  ObjectTable::Counts counts = table.counts();
  VY_LOG_INFO("instance %u: %llu objects, %llu names recovered (RocksDB open %.3f s, table %.3f s, "
              "payloads %.3f s)",
              instance, static_cast<unsigned long long>(counts.objects),
              static_cast<unsigned long long>(counts.names), open_s, load_s, recover_s);

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
  fs_opts.new_ttl = cfg.new_ttl;
  fs_opts.passthrough_min = cfg.passthrough_min;
  fs_opts.builtin_plugins = cfg.builtin_plugins;
  s = undo.MakeDirs(cfg.plugins, 0755);
  if (!s.ok()) return fail("the plugin directory: " + s.ToString());
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
  fs.options().device = MountDevice(fs.options().mountpoint);
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
  VY_LOG_INFO("mounted %s on %s (arena %s, state %s, log %s)", cfg.source.c_str(),
              cfg.mountpoint.c_str(), cfg.store.arena.c_str(), cfg.store.state.c_str(),
              cfg.log.c_str());
  undo.Commit();
  if (*pipe_fd >= 0) {
    // The starter learns where the log is (the daemon's own lines go there).
    if (cfg.log != "stderr") PrintToStderr("vineyardfs: log: " + cfg.log);
    Detach(pipe_fd);
  }
  sd_notifyf(0, "READY=1\nSTATUS=serving %s", cfg.mountpoint.c_str());

  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(loop, 0);
  fuse_loop_cfg_set_max_threads(loop, 16);
  int rc = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);

  sd_notify(0, "STOPPING=1");
  fs.Detach();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  // The next daemon on this state may start now; it waits (a bounded time) for
  // RocksDB's lock while this one finishes its durable writes.
  lock.reset();
  VY_LOG_INFO("unmounted %s", cfg.mountpoint.c_str());
  // libfuse reports the signal that ended the loop (SIGTERM, SIGINT, SIGHUP): a clean
  // stop, not a failure.
  return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}

}  // namespace
}  // namespace vineyard

int main(int argc, char** argv) {
  int pipe_fd = -1;
  int rc = vineyard::Run(argc, argv, &pipe_fd);
  vineyard::EndStderrCapture();
  // A failed mount: everything Run() made is undone by now; the parent may return.
  vineyard::ReportToParent(&pipe_fd, static_cast<char>(rc));
  return rc;
}
