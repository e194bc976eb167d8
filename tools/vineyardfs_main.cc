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
#include <vector>

#include "fs/fs.h"
#include "meta/log.h"
#include "meta/replicator.h"
#include "store/objects.h"
#include "tools/malloc_tuning.h"
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

// What the daemon serves, destroyed in reverse: the filesystem, then the cluster,
// then the objects (the table, then the Store, which finishes its durable writes),
// then the state's lock.
struct Daemon {
  std::unique_ptr<StateLock> lock;
  std::unique_ptr<ObjectStore> objects;
  std::unique_ptr<Replicator> cluster;
  std::unique_ptr<VineyardFs> fs;
};

// The FUSE session, undone in reverse by Close() or the destructor: unmount, signal
// handlers, the session itself.
class Session {
 public:
  ~Session() { Close(); }
  // Creates the session for `fs` with the mount options of `cfg`.
  bool Create(const MountConfig& cfg, const char* argv0, VineyardFs* fs) {
    opts_ = "fsname=" + cfg.source + ",subtype=vineyardfs,default_permissions";
    if (cfg.allow_other) opts_ += ",allow_other";
    for (auto& o : cfg.fuse_opts) opts_ += "," + o;
    argv_ = {argv0, "-o", opts_.c_str()};
    if (cfg.debug) argv_.push_back("-d");
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv_.size()), const_cast<char**>(argv_.data()));
    se_ = fuse_session_new(&args, &fs->ops(), sizeof(fuse_lowlevel_ops), fs->userdata());
    return se_ != nullptr;
  }
  bool SetSignalHandlers() { return handlers_ = fuse_set_signal_handlers(se_) == 0; }
  bool Mount(const std::string& point) {
    return mounted_ = fuse_session_mount(se_, point.c_str()) == 0;
  }
  // Serves requests until unmounted or signalled; returns libfuse's result.
  int Loop() {
    fuse_loop_config* loop = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(loop, 0);
    fuse_loop_cfg_set_max_threads(loop, 16);
    int rc = fuse_session_loop_mt(se_, loop);
    fuse_loop_cfg_destroy(loop);
    return rc;
  }
  void Close() {
    if (mounted_) fuse_session_unmount(se_);
    if (handlers_) fuse_remove_signal_handlers(se_);
    if (se_) fuse_session_destroy(se_);
    se_ = nullptr;
    mounted_ = handlers_ = false;
  }
  fuse_session* get() const { return se_; }

 private:
  std::string opts_;
  std::vector<const char*> argv_;
  fuse_session* se_ = nullptr;
  bool handlers_ = false, mounted_ = false;
};

// Parses the command line; exits early for --help, -V and a refused mount point, and
// forks unless in the foreground. Returns -1 to go on, else the exit status.
int Parse(int argc, char** argv, MountConfig* cfg, int* pipe_fd) {
  auto parsed = ParseMountArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "vineyardfs: %s\n", parsed.status().message().c_str());
    return 2;
  }
  *cfg = std::move(*parsed);
  if (cfg->help) {
    std::fputs(MountUsage().c_str(), stdout);
    return 0;
  }
  if (cfg->version) {
    std::printf("vineyardfs %s (libfuse %s)\n", VINEYARDFS_VERSION, fuse_pkgversion());
    return 0;
  }
  if (cfg->fake) return 0;
  // Before anything is created: a missing mount point or one that is a vineyardfs
  // mount already (live, or dead after kill -9) is refused here.
  Status s = CheckMountPoint(cfg->mountpoint);
  if (!s.ok()) {
    std::fprintf(stderr, "vineyardfs: %s\n", s.message().c_str());
    return 1;
  }
  if (!cfg->foreground) *pipe_fd = ForkAndWait();
  return -1;
}

// The log, the state's lock, the arena's directory, then the objects (recovered).
Status OpenState(MountConfig& cfg, MountUndo* undo, Daemon* d, InstanceId* instance) {
  Status s;
  if (!cfg.store.stateless()) {  // first: the default log file lives there, and it is 0700
    s = undo->MakeDirs(cfg.store.state, 0700);
    if (!s.ok()) return Status::IOError("state: " + s.ToString());
  }
  s = OpenLog(cfg.log, undo);
  if (!s.ok()) return Status::IOError("log=" + cfg.log + ": " + s.ToString());
  VY_LOG_INFO("vineyardfs %s (libfuse %s) mounting %s on %s, log: %s", VINEYARDFS_VERSION,
              fuse_pkgversion(), cfg.source.c_str(), cfg.mountpoint.c_str(), cfg.log.c_str());
  // The state is one daemon's: a second one is refused at once, naming the first.
  if (!cfg.store.stateless()) {
    auto locked = StateLock::Acquire(cfg.store.state, cfg.mountpoint);
    if (!locked.ok()) return Status::IOError(locked.status().message());
    d->lock = std::move(*locked);
  }
  s = undo->MakeDirs(cfg.store.arena, 0700);
  if (!s.ok()) return Status::IOError("arena: " + s.ToString());
  undo->NoteArena(cfg.store.arena);
  *instance = cfg.instance;
  auto objects = ObjectStore::Open(cfg.store, instance);
  if (!objects.ok()) return Status::IOError(objects.status().ToString());
  d->objects = std::move(*objects);
  return Status::OK();
}

// Joins the cluster when one is configured: peers read this node's payloads, and
// its store fetches theirs.
Status StartCluster(MountConfig& cfg, InstanceId instance, Daemon* d) {
  if (cfg.cluster.listen.empty() && cfg.cluster.peers.empty()) return Status::OK();
  cfg.cluster.instance = instance;
  ObjectStore* objects = d->objects.get();
  auto reader = [objects](ObjectID id, uint64_t offset, char* buf, uint32_t* len) {
    return objects->ServePayload(id, offset, buf, len);
  };
  auto started = Replicator::Start(cfg.cluster, objects->table(), reader);
  if (!started.ok()) return Status::IOError("cluster: " + started.status().ToString());
  d->cluster = std::move(*started);
  Replicator* rep = d->cluster.get();
  objects->SetRemote(cfg.remote == "fetch",
                     [rep](ObjectID id, uint64_t size, const Store::Remote::Sink& append) {
                       return rep->Fetch(id, size, append);
                     });
  return Status::OK();
}

// The filesystem over the objects, with the options tools/ knows.
Status MakeFs(const MountConfig& cfg, InstanceId instance, MountUndo* undo, Daemon* d) {
  FsOptions fs_opts;
  fs_opts.cluster = d->cluster.get();
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
  Status s = undo->MakeDirs(cfg.plugins, 0755);
  if (!s.ok()) return Status::IOError("the plugin directory: " + s.ToString());
  d->fs = std::make_unique<VineyardFs>(d->objects->store(), d->objects->table(), fs_opts);
  return Status::OK();
}

// After fuse_session_mount: INIT is handled here, before the loop, so that the
// passthrough probe (which needs the kernel to have accepted INIT) decides the I/O
// path before the mount is reported ready. Then the filesystem starts its threads.
Status FinishMount(const MountConfig& cfg, VineyardFs* fs, fuse_session* se) {
  fs->options().device = MountDevice(fs->options().mountpoint);
  std::string why;
  Status s = fs->InstallPassthrough(se);
  if (s.ok() && !ProcessInit(se)) s = Status::IOError("no INIT request from the kernel");
  if (s.ok() && !fs->ProbePassthrough(cfg.store.arena, &why)) {
    s = Status::NotSupported("passthrough=on but " + why);
  }
  if (!s.ok()) return Status::IOError(s.ToString());
  VY_LOG_INFO("I/O path: %s", why.c_str());
  SetReadAhead(fs->options().device, 1024);
  fs->Attach(se);
  VY_LOG_INFO("mounted %s on %s (arena %s, state %s, log %s)", cfg.source.c_str(),
              cfg.mountpoint.c_str(), cfg.store.arena.c_str(), cfg.store.state.c_str(),
              cfg.log.c_str());
  return Status::OK();
}

// Runs the daemon in hello_ll.c's order: parse, (open the state and build the
// filesystem), create the session, install signal handlers, mount, daemonize, loop,
// unmount. *pipe_fd is the write end of the pipe to a waiting parent (-1 in the
// foreground), reported to and closed once the mount is ready. Everything Run() made
// is destroyed when it returns, before main reports a failure to the parent.
int Run(int argc, char** argv, int* pipe_fd) {
  MountConfig cfg;
  if (int rc = Parse(argc, argv, &cfg, pipe_fd); rc >= 0) return rc;
  auto fail = [&](const std::string& what) {
    VY_LOG_ERROR("%s", what.c_str());
    return 1;
  };
  // libfuse's messages (and its -d trace) become log lines with timestamps and levels.
  Status s = CaptureStderr();
  if (!s.ok()) return fail(s.ToString());
  if (cfg.debug) SetLogLevel(LogLevel::kDebug);

  MountUndo undo;  // declared first, destroyed last: undoes this attempt unless it mounts
  Daemon d;
  InstanceId instance = 0;
  s = OpenState(cfg, &undo, &d, &instance);
  if (s.ok()) s = StartCluster(cfg, instance, &d);
  if (s.ok()) s = MakeFs(cfg, instance, &undo, &d);
  if (!s.ok()) return fail(s.message());

  Session se;  // destroyed before `d`: unmounted before the filesystem goes
  if (!se.Create(cfg, argv[0], d.fs.get())) {
    return fail("could not create the FUSE session (bad mount options?)");
  }
  if (!se.SetSignalHandlers()) return fail("could not install signal handlers");
  if (!se.Mount(cfg.mountpoint)) return fail("could not mount on " + cfg.mountpoint);
  s = FinishMount(cfg, d.fs.get(), se.get());
  if (!s.ok()) return fail(s.message());

  undo.Commit();
  if (*pipe_fd >= 0) {
    // The starter learns where the log is (the daemon's own lines go there).
    if (cfg.log != "stderr") PrintToStderr("vineyardfs: log: " + cfg.log);
    Detach(pipe_fd);
  }
  sd_notifyf(0, "READY=1\nSTATUS=serving %s", cfg.mountpoint.c_str());

  int rc = se.Loop();

  sd_notify(0, "STOPPING=1");
  d.fs->Detach();
  se.Close();
  // The next daemon on this state may start now; it waits (a bounded time) for
  // RocksDB's lock while this one finishes its durable writes.
  d.lock.reset();
  VY_LOG_INFO("unmounted %s", cfg.mountpoint.c_str());
  // libfuse reports the signal that ended the loop (SIGTERM, SIGINT, SIGHUP): a clean
  // stop, not a failure.
  return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}

}  // namespace
}  // namespace vineyard

int main(int argc, char** argv) {
  vineyard::ReexecWithHugePageMalloc(argv);  // tools/malloc_tuning.h
  int pipe_fd = -1;
  int rc = vineyard::Run(argc, argv, &pipe_fd);
  vineyard::EndStderrCapture();
  // A failed mount: everything Run() made is undone by now; the parent may return.
  vineyard::ReportToParent(&pipe_fd, static_cast<char>(rc));
  return rc;
}
