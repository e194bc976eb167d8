// MountTest: a gtest fixture that mounts the real vineyardfs daemon in a temp dir.
//
// Each test gets /tmp/vyit.XXXXXX/{mnt,arena,state}. SetUp() mounts with
// DefaultOptions() (a derived fixture overrides it to change size=, durability=...);
// a test may also call Mount(opts) again itself (after Unmount() or Crash()).
//
// The daemon runs in the foreground (-f) as a child of the test process, so the
// fixture owns its pid: it never signals any other process. Its stderr goes to
// <tmp>/daemon.log, which is printed when a mount fails.
//
// Cleanup runs in TearDown(), also after a failed assertion: lazy unmount, wait for
// the daemon to exit (SIGKILL after 10 s), lazy unmount of the arena tmpfs the daemon
// mounted as root, then removal of the temp dir (skipped if anything is still
// mounted under it, so a stuck mount never makes us delete through it).
//
// Helpers that can fail report through ADD_FAILURE() and return an empty value;
// tests assert on the value (an id is never empty).
#ifndef VINEYARDFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_
#define VINEYARDFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

namespace vyit {

// Sorted entries of a directory (no . and ..); empty if it cannot be opened.
std::vector<std::string> ListDirectory(const std::string& path);

// "o" + 16 lowercase hex digits.
bool IsObjectId(const std::string& s);
bool IsBlobId(const std::string& s);
// Deterministic pseudo-random bytes.
std::string RandomBytes(size_t n, uint64_t seed);
// Context switches (voluntary + involuntary) of every thread of `pid`, by tid.
std::map<int, long> SwitchesByThread(pid_t pid);
// The largest and the second largest growth of one thread's switches.
std::pair<long, long> TopTwo(const std::map<int, long>& before, const std::map<int, long>& after);

// The text of a new/<x>.batch upload: a List of `tensors` one-byte Tensors, each with
// its blob (2 * tensors + 1 objects; 20,000 seal in some 0.5-1 s).
std::string ListOfTensorsBatch(size_t tensors);
// Creates `path` (O_EXCL) and writes all of `body`; returns the fd, still open (an
// upload in new/ seals at its close), or -1 with errno set.
int OpenUpload(const std::string& path, const std::string& body);

// Result of running a command: exit code (or 128+signal) and stdout+stderr.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
// fork+exec argv[0] with argv (no shell), collecting its output; killed after
// `timeout_s` seconds.
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_s = 20);

// fork() copies every descriptor of the test process: a child forked while another
// thread has new/<x> open for writing holds that file until it execs or exits, and the
// upload is rightly not sealed at the writer's close() (DESIGN.md §4: the last close of
// any process seals). The fixtures' writers of new/ hold UploadWriteGuard() from open
// to close and their forks use ForkOutsideUploads(), so no child inherits an upload
// being written.
std::shared_lock<std::shared_mutex> UploadWriteGuard();
pid_t ForkOutsideUploads();

// Polls `pred` every 10 ms until it is true or `timeout_ms` passed.
bool PollUntil(const std::function<bool()>& pred, int timeout_ms = 5000);

// The errno of the failed seal of the upload at `path` (its user.vineyard.errno, e.g.
// "EINVAL"), or 0 if it has none. close() returns only what it can check; a seal that
// follows the last reference records its failure there (DESIGN.md §4).
int SealErrno(const std::string& path);

// How long a daemon may take to exit after its mount is detached (it drains its
// durable writer first) before a test calls it stuck and kills it.
constexpr int kExitAfterUnmountMs = 60000;

// True if some mount point in /proc/mounts equals or lies under `path`.
bool IsMounted(const std::string& path);

// Starts the daemon in the foreground on `mnt` with `-o opts`, as our child (killed if
// the test process dies), stdout and stderr appended to `log`. Returns its pid (-1 and
// ADD_FAILURE if fork failed).
pid_t SpawnDaemon(const std::string& mnt, const std::string& opts, const std::string& log);
// The file at `path` (a daemon log), its last `max` bytes at most.
std::string LogTail(const std::string& path, size_t max);
// Waits up to 10 s for <mnt>/status.json. If the daemon exits first (it is reaped and
// *pid becomes -1) or does not mount in time, reports "<what> failed", the cause and
// the tail of `log` (ADD_FAILURE) and returns false; a daemon still running is then
// the caller's to stop.
bool WaitMounted(pid_t* pid, const std::string& mnt, const std::string& log,
                 const std::string& what);

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Options SetUp() mounts with, on top of arena=,state= and size=256M.
  virtual std::string DefaultOptions() const { return ""; }

  // Mounts (daemon in the foreground, our child) with arena=, state= of this test,
  // size=256M unless `opts` has size= or config=, then `opts` ("k=v,k=v").
  // Returns once <mnt>/status.json exists (10 s limit). Returns false on failure.
  bool Mount(const std::string& opts);
  // Mounts again with the options of the last Mount().
  bool Remount() { return Mount(last_opts_); }
  // Lazy unmount and wait for the daemon to exit.
  void Unmount();
  // kill -9 the daemon, then lazily unmount the dead mount.
  void Crash();
  // Unmounts the arena tmpfs (its files are gone) and empties the arena dir.
  void WipeArena();
  // Crash() + WipeArena(), as a reboot would.
  void Reboot() {
    Crash();
    WipeArena();
  }

  // Paths.
  std::string Path(const std::string& rel) const { return mnt_ + "/" + rel; }
  std::string ObjPath(const std::string& id, const std::string& file = "") const {
    return file.empty() ? Path("objects/" + id) : Path("objects/" + id + "/" + file);
  }
  const std::string& mnt() const { return mnt_; }
  const std::string& tmp() const { return tmp_; }
  const std::string& arena() const { return arena_; }
  const std::string& state() const { return state_; }
  pid_t daemon_pid() const { return pid_; }
  // Forgets the daemon pid (after the test stopped it by other means, e.g. SIGTERM
  // and waitpid). Returns the pid.
  pid_t ReleaseDaemon();

  // Writes `bytes` to new/<name> with write() and closes; expects close() == 0
  // and new/<name> to be a link to ../objects/<id>. Returns the id ("" on failure).
  std::string WriteNew(const std::string& name, const std::string& bytes);
  // The same through ftruncate + mmap(MAP_SHARED) + munmap + close; the seal
  // happens at release, so this polls readlink for up to 5 s.
  std::string WriteNewMmap(const std::string& name, const std::string& bytes);
  // new/<name>.meta.json
  std::string WriteMeta(const std::string& name, const std::string& json) {
    return WriteNew(name + ".meta.json", json);
  }
  // Like WriteNew but returns the errno of the first failing step (open, write,
  // close), 0 on success; *id gets the id on success.
  int TryWriteNew(const std::string& name, const std::string& bytes, std::string* id = nullptr);

  // File contents via read() in this process ("" + ADD_FAILURE when unreadable).
  std::string ReadAll(const std::string& path);
  // File contents as read by a forked child through read() / mmap(). On error the
  // child reports errno, *err gets it (else ADD_FAILURE) and "" is returned.
  std::string ChildRead(const std::string& path, int* err = nullptr);
  std::string ChildMmap(const std::string& path, int* err = nullptr);
  // readlink(), "" if not a link.
  static std::string ReadLink(const std::string& path);
  // The id a new/ or names/ link points at ("" if none).
  std::string LinkedId(const std::string& rel);
  // Sorted entries of a directory (no . and ..).
  static std::vector<std::string> ListDir(const std::string& path);

  // Runs fn in a forked child with uid/gid `uid` (groups dropped); returns fn's
  // result (an errno, 0 for success), or -1 if the child died or could not switch.
  static int RunAs(uid_t uid, const std::function<int()>& fn);
  // Runs fn in a forked child as the current user; returns its result the same way.
  static int InChild(const std::function<int()>& fn);

  nlohmann::json ReadStatus();
  nlohmann::json ReadMeta(const std::string& id);

  // id -> (meta.json, data or "") for every object in objects/.
  using Snapshot = std::map<std::string, std::pair<std::string, std::string>>;
  Snapshot TakeSnapshot();
  // Every object of `before` is still there with the same meta.json and bytes,
  // and nothing else exists except `extra`.
  void ExpectUntouched(const Snapshot& before, const std::set<std::string>& extra = {});

 private:
  bool Exited(int timeout_ms);

  std::string tmp_, mnt_, arena_, state_, log_;
  std::string last_opts_;
  pid_t pid_ = -1;
};

}  // namespace vyit

#endif  // VINEYARDFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_
