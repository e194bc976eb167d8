// Shared internals of fs/: the inode model, open-file handles, uploads in new/ and
// the reply helpers. Each operation group lives in its own file:
//   node.h     the node kinds as a table (what stat, lookup, list, readlink, open and
//              read do on each kind; node_table.cc and nodes_*.cc)
//   lookup.cc  lookup, getattr, forget, readlink, statfs
//   dir.cc     opendir, readdir(plus), rmdir, symlink, unlink, rename, mkdir
//   file.cc    create, open, read, write, setattr, flush, release, fsync (opening and
//              reading: data_file.cc, generated_file.cc, upload_file.cc)
//   seal.cc    turning an upload into an object (the builder hook lives there)
//   xattr.cc   user.vineyard.* attributes
//   special.cc status.json, metrics, instances/<n>.json
//   notify.cc  kernel cache invalidation, off the request threads
//   plugins.cc resolvers/ (installing and removing plugins) and views/
//   The plugin host itself is its own part: host/ (host/plugin_host.h).
//
// Lock order (outermost first): Upload::mu, NewDir::mu_, SealWaiter::mu_,
// InodeTable::mu_, then the ObjectTable's and the Store's own locks. No fs/ lock is
// held while replying.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fs/fs.h"
#include "host/errno.h"
#include "host/plugin_host.h"
#include "meta/mutex.h"
#include "meta/object_table.h"
#include "store/objects.h"
#include "store/store.h"

namespace vineyard {

// ---- Inodes -----------------------------------------------------------------

enum class Kind : uint8_t {
  kRoot,
  kObjects,       // objects/
  kNames,         // names/
  kNew,           // new/
  kResolvers,     // resolvers/ (the plugins)
  kInstances,     // instances/
  kStatus,        // status.json
  kMetrics,       // metrics
  kInstanceFile,  // instances/<n>.json            num = instance
  kObjectDir,     // objects/<id>/                 num = id
  kMetaFile,      // objects/<id>/meta.json        num = id
  kDataFile,      // objects/<id>/data             num = id
  kMembersDir,    // objects/<id>/members/         num = id
  kMemberLink,    // objects/<id>/members/<name>   num = id, name = field
  kNameLink,      // names/<name>                  name = name
  kUpload,        // new/<file> being written      num = upload serial
  kNewLink,       // new/<file> once sealed        num = upload serial
  kPluginFile,    // resolvers/<file>.so           name = file
  kPluginError,   // resolvers/<stem>.error        name = the .so's file
  kViewsDir,      // objects/<id>/views/           num = id
  kViewFile,      // objects/<id>/views/<file>     num = id, name = file
  kUploadError,   // new/<file>.error              num = upload serial (a failed seal)
};

struct NodeKey {
  Kind kind = Kind::kRoot;
  uint64_t num = 0;
  std::string name;
  bool operator==(const NodeKey& o) const {
    return kind == o.kind && num == o.num && name == o.name;
  }
};
struct NodeKeyHash {
  size_t operator()(const NodeKey& k) const {
    return std::hash<uint64_t>()(k.num * 31 + static_cast<uint64_t>(k.kind)) ^
           std::hash<std::string>()(k.name);
  }
};

// Maps kernel inode numbers to what they name, with the kernel's lookup counts.
// Fixed directories have fixed numbers and are never forgotten; everything else gets
// a number on first lookup and loses it when the kernel forgets it (libfuse's
// forget contract: a node with a non-zero lookup count may still receive requests).
// Thread-safe (mu_).
class InodeTable {
 public:
  InodeTable();
  // Finds or creates the inode for `key` and adds one lookup reference.
  fuse_ino_t Ref(const NodeKey& key);
  std::optional<NodeKey> Get(fuse_ino_t ino) const;
  std::optional<fuse_ino_t> Find(const NodeKey& key) const;
  void Forget(fuse_ino_t ino, uint64_t n);
  // After a rename: the inode known as `from` is now `to`; an inode that was `to`
  // (replaced by the rename) keeps its number but no longer names anything.
  void Rekey(const NodeKey& from, const NodeKey& to);
  size_t size() const;
  // Every live inode of kind `k`, with its key.
  std::vector<std::pair<fuse_ino_t, NodeKey>> OfKind(Kind k) const;

  // What the kernel may hold of a meta.json inode (README "Per-object cost"): the
  // text whose pages it may cache (a hash of it, 0: none) and the size its attributes
  // carry (plus one, 0: unknown). The text is rendered at every open, which compares.
  struct MetaCache {
    uint64_t pages = 0;
    uint64_t size = 0;
  };
  // A LOOKUP or GETATTR reply gave the kernel `size` for meta.json inode `ino`.
  void NoteMetaSize(fuse_ino_t ino, uint64_t size);
  // An OPEN of `ino` serves text of hash `hash` and size `size`, which the kernel will
  // cache: records that and returns what the kernel held before.
  MetaCache SwapMeta(fuse_ino_t ino, uint64_t hash, uint64_t size);
  // Whether `ino` is a meta.json inode whose last known size is at most `max`.
  bool IsSmallMeta(fuse_ino_t ino, uint64_t max) const;

  static constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;  // 1
  static fuse_ino_t FixedIno(Kind k);                   // 0 if `k` is not fixed

 private:
  struct Node {
    NodeKey key;
    uint64_t nlookup = 0;
    MetaCache meta;  // kMetaFile only
  };
  mutable Mutex mu_;
  std::unordered_map<fuse_ino_t, Node> nodes_ GUARDED_BY(mu_);
  std::unordered_map<NodeKey, fuse_ino_t, NodeKeyHash> by_key_ GUARDED_BY(mu_);
  fuse_ino_t next_ GUARDED_BY(mu_) = 64;
};

// ---- Uploads in new/ ----------------------------------------------------------

// A file written in new/, from create to seal (and, once sealed, the link it left).
// Shared by the NewDir map, the inode's open handles and the seal path.
struct Upload {
  // NewDir::Add makes it, named, before it publishes it.
  Upload(uint64_t s, std::string n, Owner o, mode_t m)
      : serial(s), name(std::move(n)), owner(o), mode(m) {}
  const uint64_t serial;  // stable identity: the inode key (const: read without mu)

  // Guards every member below but releases_read and cv; Clang checks each access
  // (GUARDED_BY; the functions that expect it held say EXCLUSIVE_LOCKS_REQUIRED(up->mu)).
  Mutex mu;
  // The current name in new/, guarded by two locks, and Clang cannot say "either":
  // GUARDED_BY(mu) checks this side (the seal, messages, suffix tests); NewDir reads
  // it under its own mu_ through NewDir::NameOf, which requires that lock. The one
  // write after Add, NewDir::Rename, holds both (mu first, as the lock order says).
  std::string name GUARDED_BY(mu);
  Owner owner GUARDED_BY(mu);  // chown changes it (OpSetattr)
  mode_t mode GUARDED_BY(mu) = 0644;
  uint64_t key GUARDED_BY(mu) = 0;  // the store's upload key (0 once sealed or dropped)
  // The staging file, read-only: reads, fstat, builders, passthrough registration and
  // the seal's lease test (which a writable descriptor of our own would fail).
  int fd GUARDED_BY(mu) = -1;
  // The staging file for the daemon's own writes; open only while needed.
  int wfd GUARDED_BY(mu) = -1;
  uint64_t size GUARDED_BY(mu) = 0;
  timespec mtime GUARDED_BY(mu){};
  timespec ctime GUARDED_BY(mu){};
  int writers GUARDED_BY(mu) = 0;  // open handles that may write
  // Those that write through passthrough (not through us).
  int pt_writers GUARDED_BY(mu) = 0;
  uint64_t writer_releases GUARDED_BY(mu) = 0;  // writable handles released so far (and answered)
  // Passthrough writers' RELEASEs handled, not yet answered and followed by their seal
  // attempt (file.cc).
  int answers_pending GUARDED_BY(mu) = 0;
  int unflushed_writers GUARDED_BY(mu) = 0;  // writable handles not closed (FLUSH) even once
  int opens GUARDED_BY(mu) = 0;              // all open handles
  bool removed GUARDED_BY(mu) = false;       // unlinked from new/ while open
  bool dirty GUARDED_BY(mu) = false;         // changed since the last seal attempt
  // The last writable handle is released: seal once the kernel holds no writable file
  // or mapping (seal.cc).
  bool seal_due GUARDED_BY(mu) = false;
  ObjectID sealed GUARDED_BY(mu);  // valid once sealed: new/<name> is a link to it
  // When (CLOCK_MONOTONIC): the link expires new_ttl later.
  timespec sealed_at GUARDED_BY(mu){};
  std::string error GUARDED_BY(mu);   // why the last seal failed ("" if none)
  int error_code GUARDED_BY(mu) = 0;  // its errno
  // Writable handles whose RELEASE has been read from /dev/fuse but not yet handled:
  // counted by the read hook without mu (an atomic); a LOOKUP waits on cv until it is 0.
  std::atomic<int> releases_read{0};
  CondVar cv;  // over mu: signalled when a release is handled or a seal attempted
  bool write_failed GUARDED_BY(mu) = false;  // a write hit a full arena: the bytes are incomplete
  bool pt_written GUARDED_BY(mu) = false;    // a writer wrote through passthrough (unseen by us)
  int backing_id GUARDED_BY(mu) = 0;         // passthrough backing of the staging file (0: none)
  int backing_refs GUARDED_BY(mu) = 0;       // open handles using backing_id
};

// The entries of new/. Thread-safe (mu_).
class NewDir {
 public:
  std::shared_ptr<Upload> Find(const std::string& name) const;
  std::shared_ptr<Upload> BySerial(uint64_t serial) const;
  // Adds a fresh upload named `name`; AlreadyExists if the name is taken.
  Result<std::shared_ptr<Upload>> Add(const std::string& name, Owner owner, mode_t mode);
  // Removes `name` from the directory; returns the upload it named.
  std::shared_ptr<Upload> Remove(const std::string& name);
  // Renames `up`, which new/ names `from`, to `to` (replacing `to`); returns the
  // replaced upload, if any. NotFound if `from` names no upload; Busy if it names
  // another one than `up` (renamed meanwhile: look it up again).
  Result<std::shared_ptr<Upload>> Rename(Upload* up, const std::string& from, const std::string& to)
      EXCLUSIVE_LOCKS_REQUIRED(up->mu);
  // Drops the serial index entry once an upload is neither named nor open.
  void Retire(uint64_t serial);
  std::vector<std::pair<std::string, std::shared_ptr<Upload>>> List() const;

  // A queue of every entry's serial, for expiring links without a listing
  // (ExpireOldLinks): takes up to `n` uploads that new/ still names off the front,
  // dropping on the way (at most kMaxDropped per call) the serials that no longer name
  // an entry (unlinked, renamed away, expired).
  std::vector<std::shared_ptr<Upload>> TakeOldest(size_t n);
  // Puts serials of entries that stay back at the end of the queue.
  void PutBack(const std::vector<uint64_t>& serials);
  static constexpr size_t kMaxDropped = 64;
  struct Sizes {
    size_t entries = 0, order = 0, serials = 0;
  };
  Sizes sizes() const;

 private:
  // NewDir's side of Upload::name, under mu_ (see Upload::name). The body is exempt
  // from the analysis: it touches the name without Upload::mu.
  std::string& NameOf(Upload& up) const EXCLUSIVE_LOCKS_REQUIRED(mu_) NO_THREAD_SAFETY_ANALYSIS {
    return up.name;
  }

  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<Upload>> entries_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::shared_ptr<Upload>> by_serial_ GUARDED_BY(mu_);
  std::deque<uint64_t> order_ GUARDED_BY(mu_);  // serials, a cycle (some stale)
  uint64_t next_serial_ GUARDED_BY(mu_) = 1;
};

// ---- Open files -----------------------------------------------------------------

// One per open(): fi->fh points at it from open until release.
struct FileHandle {
  Kind kind = Kind::kRoot;
  ObjectID id;                     // kDataFile
  int fd = -1;                     // kPluginFile (a kDataFile holds a pin, no descriptor)
  const char* map = nullptr;       // kDataFile: mmap of the arena file, made at the first READ
  uint64_t size = 0;               // kDataFile: payload length
  std::shared_ptr<Upload> upload;  // kUpload
  bool writer = false;             // kUpload: opened for writing
  bool release_read = false;       // kUpload: its RELEASE was counted in releases_read
  bool flushed = false;            // kUpload writer: a descriptor of it was closed
  bool passthrough = false;        // reads/writes go to the backing file, not to us
  int backing = 0;                 // kDataFile: the BlobBackings id it holds (passthrough)
  std::mutex map_mu;               // kDataFile: guards the lazy mapping (DataMap)
  std::string content;             // generated files: the snapshot taken at open
  // kViewFile: the resolved view and a read-only mapping of each blob it uses.
  std::shared_ptr<const ResolvedView> view;
  std::map<ObjectID, PinnedBlob> view_maps;
  // kPluginFile: fd is the .so (read-only), or the part file an install writes.
  std::string installing;  // the plugin file this handle installs ("" if none)
};

// ---- Invalidation -----------------------------------------------------------------

// Kernel cache invalidations, sent from their own thread: libfuse forbids calling
// the notify functions from the execution path of a related request.
class Notifier {
 public:
  void Start(fuse_session* se);
  void Stop();
  void InvalEntry(fuse_ino_t parent, std::string name);
  void InvalInode(fuse_ino_t ino);

 private:
  struct Item {
    fuse_ino_t ino;
    std::string name;  // empty: invalidate the inode's attributes and data
  };
  void Loop();
  fuse_session* se_ = nullptr;
  Mutex mu_;
  CondVar cv_;  // wakes Loop: queue_ or stop_
  std::deque<Item> queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// ---- The filesystem's state ----------------------------------------------------------

struct Counters {
  std::atomic<uint64_t> lookups{0}, getattrs{0}, opens{0}, reads{0}, writes{0}, read_bytes{0},
      write_bytes{0}, seals{0}, seal_errors{0}, deletes{0}, readdirs{0}, readdirplus{0}, xattrs{0},
      flushes{0}, releases{0};
  // new/: links expired after new_ttl, and entries ExpireOldLinks looked at (bounded
  // per create: the test of "leftover links cost nothing per create").
  std::atomic<uint64_t> links_expired{0}, expiry_steps{0};
};

// Passthrough backing ids of payloads (README "The I/O path"). A blob's id is
// registered (FUSE_DEV_IOC_BACKING_OPEN) at its first passthrough open and kept while
// its arena file is its payload, so every later open replies with the same id: no
// openat, no ioctl. One id per blob, as the kernel refuses two different backings for
// one inode. It is closed when the store lets the file go (Drop, from the store's drop
// hook: the blob deleted or evicted), or at its last release when more than kMaxIdle
// unused ids are held. Thread-safe (mu_); Drop runs under the Store's lock, so nothing
// here calls the Store.
class BlobBackings {
 public:
  static constexpr size_t kMaxIdle = 4096;
  // The backing id for `id` (registering the file at `path` if there is none yet),
  // counted as one user; 0 if refused. The caller has pinned the blob.
  int Acquire(Passthrough* pt, ObjectID id, const std::string& path);
  // One user of `backing` (what Acquire returned for `id`) is gone.
  void Release(Passthrough* pt, ObjectID id, int backing);
  // The blob's file is no longer its payload: its id is closed (open files keep theirs).
  void Drop(Passthrough* pt, ObjectID id);
  void DropAll(Passthrough* pt);
  struct Stats {
    uint64_t held = 0, idle = 0, opened = 0, closed = 0, reused = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    int backing = 0;
    int refs = 0;
  };
  void CloseLocked(Passthrough* pt, std::unordered_map<ObjectID, Entry>::iterator it)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  mutable Mutex mu_;
  std::unordered_map<ObjectID, Entry> ids_ GUARDED_BY(mu_);
  Stats stats_ GUARDED_BY(mu_);  // held, idle: derived
};

// Uploads whose seal waits for the kernel to drop its last writable reference (a
// mapping that outlived close(), or a backing file still being released): an inotify
// watch on the arena's staging/ directory retries each one on IN_CLOSE_WRITE of its
// file. Thread-safe (mu_).
class SealWaiter {
 public:
  // Starts the watcher thread; failure is logged and leaves only the retries at
  // LOOKUP and release.
  void Start(FsState* fs);
  void Stop();
  // Watches the staging file of `key` for IN_CLOSE_WRITE: only uploads whose seal
  // waits for a writable file (a mapping kept past close()) are watched, so the
  // common close costs no inotify event.
  void Add(uint64_t key, std::weak_ptr<Upload> up);
  void Forget(uint64_t key);
  size_t waiting() const;

 private:
  struct Waiting {
    std::weak_ptr<Upload> up;
    int wd = -1;  // its inotify watch, -1 if none could be added
  };
  void Loop();
  void Retry(uint64_t key);
  FsState* fs_ = nullptr;
  int inotify_ = -1;
  int stop_[2] = {-1, -1};
  mutable Mutex mu_;
  std::unordered_map<uint64_t, Waiting> waiting_ GUARDED_BY(mu_);
  std::unordered_map<int, uint64_t> keys_ GUARDED_BY(mu_);  // watch -> key
  std::thread thread_;
};

class FsState {
 public:
  FsState(Store* s, ObjectTable* t, FsOptions o)
      : store(s), table(t), objects(s, t), opts(std::move(o)), passthrough(opts.passthrough) {}
  Store* const store;
  ObjectTable* const table;
  // Every change that touches both the table and the store goes through this facade.
  ObjectStore objects;
  FsOptions opts;
  InodeTable inodes;
  NewDir uploads;
  Notifier notifier;
  Counters counters;
  Passthrough passthrough;
  BlobBackings backings;
  SealWaiter seal_waiter;
  // F_SETLEASE works on the arena: the seal can see every writable file and mapping.
  // When it does not (fs.leases-enable=0), the seal follows the last FUSE release.
  bool leases = true;
  std::unique_ptr<PluginHost> plugins;
  Mutex installs_mu;
  std::map<std::string, std::string> installs GUARDED_BY(installs_mu);  // file -> part
  std::string io_path_reason;                   // set once at mount
  int64_t start_ms = 0;
  fuse_session* session = nullptr;
};

inline FsState* State(fuse_req_t req) { return static_cast<FsState*>(fuse_req_userdata(req)); }

// ---- Helpers shared by the operation files (reply.cc) ---------------------------

// Replies with the errno for `s`; logs unexpected failures.
void ReplyStatus(fuse_req_t req, const Status& s);
// The longest file name any directory of the mount holds (NAME_MAX). The kernel
// lets names of up to 1024 bytes through to FUSE; a longer one than this is
// ENAMETOOLONG in every operation that takes a name, as POSIX says.
constexpr size_t kMaxFileName = 255;
// Replies ENAMETOOLONG and returns true if `name` is longer than kMaxFileName.
bool ReplyIfNameTooLong(fuse_req_t req, const char* name);
Owner Caller(fuse_req_t req);
// The daemon's own uid/gid: owner of the fixed tree.
Owner MountOwner();
// Fill a stat for a directory / regular file of `owner`.
void FillDir(struct stat* st, mode_t perm, Owner owner);
void FillFile(struct stat* st, mode_t perm, uint64_t size, Owner owner);
inline bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// node_table.cc: attributes and timeouts of a node, from memory only (its kind's row
// of the node table, node.h). NotFound if it vanished.
Status StatNode(FsState* fs, const NodeKey& key, fuse_ino_t ino, struct stat* st, double* timeout);
// Looks `name` up under `parent` and fills `e` (ino 0 for a negative entry).
Status LookupChild(FsState* fs, const NodeKey& parent, const std::string& name,
                   fuse_entry_param* e);
// new/: the entries it lists, after dropping links older than new_ttl. A failed upload
// `x` (not sealed, with an error) also lists the read-only `x.error` holding the reason,
// unless a real upload has that name.
std::vector<std::string> ListNew(FsState* fs);
// The upload that new/<name>.error reports on (nullptr if there is no such entry).
std::shared_ptr<Upload> FailedUploadFor(FsState* fs, const std::string& error_name);
// How long the kernel may keep the link `up` left in new/: until it expires (new_ttl),
// as only the kernel's own unlink or rename changes it before.
double LinkCacheSeconds(FsState* fs, const Upload& up) EXCLUSIVE_LOCKS_REQUIRED(up.mu);
// True (and the link dropped from new/) if `up` is a sealed link older than new_ttl.
bool ExpireLink(FsState* fs, const std::shared_ptr<Upload>& up) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// After each create in new/: looks at the next few entries of new/ (a cycle through
// all of them) and expires the links older than new_ttl, so that links nobody lists
// or looks up again do not stay; bounded work whatever new/ holds. Takes no lock.
void ExpireOldLinks(FsState* fs);
// Resolves an inode number or replies ENOENT/ESTALE and returns nullopt.
std::optional<NodeKey> NodeOrReply(fuse_req_t req, fuse_ino_t ino);

// special.cc
std::string RenderStatus(FsState* fs);
std::string RenderMetrics(FsState* fs);
std::string RenderInstance(FsState* fs, InstanceId n);
// This node and the peers that said who they are, sorted.
std::vector<InstanceId> KnownInstances(FsState* fs);
bool KnownInstance(FsState* fs, InstanceId n);

// seal.cc: the seal (DESIGN.md §4). The caller holds up->mu in each.
// Seals `up` if a seal is due and the kernel holds no writable file or mapping of its
// staging file; otherwise leaves it waiting (SealWaiter) or as it is. On failure
// records the reason in up->error and leaves the file as written.
void TrySeal(FsState* fs, const std::shared_ptr<Upload>& up) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// What the seal would refuse in the bytes written so far (a full arena, metadata that
// does not parse): the answer close() gives, since close() cannot know that it drops
// the last reference (a forked child or a mapping may hold the file).
Status CheckUpload(FsState* fs, Upload* up) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// batch.cc: new/<x>.batch, many objects all or nothing (meta/batch.h). The caller
// holds up->mu. CheckBatch: what close() answers (the manifest's own rules).
Result<ObjectID> SealBatch(FsState* fs, Upload* up, uint64_t size) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
Status CheckBatch(Upload* up, uint64_t size) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// For a LOOKUP of `up`'s name: waits until every writable RELEASE read before this
// request is handled, then seals if a seal is due (so a process that closed the file
// sees the link next), and returns with the lock held.
void SettleUpload(FsState* fs, const std::shared_ptr<Upload>& up) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// The read hook (Passthrough::SetRequestHook): counts writable RELEASEs of uploads.
void NoteRequest(void* fs, const char* req, size_t len);
// generated_file.cc, Passthrough::SetQuickRequest's test: the OPEN of a meta.json whose
// text was at most kQuickMetaText bytes, the RELEASE of a meta.json handle, and
// QuickCreateRequest's.
inline constexpr uint64_t kQuickMetaText = 64 << 10;
bool QuickRequest(void* fs, const char* req, size_t len);
// quick_requests.cc: the requests of a create through new/ answered on the reading
// thread (FORGETs, GETATTR of a fixed directory, GETXATTR of security.*/system.*, READLINK
// of a sealed link). QuickRequest asks it.
bool QuickCreateRequest(FsState* fs, const char* req, size_t len);
// Probes F_SETLEASE in the arena's staging/ directory; sets fs->leases.
void ProbeLeases(FsState* fs, const std::string& staging_dir);
// Once an upload is neither open nor pending (sealed, or removed), closes its files
// and, if removed, drops its bytes.
void RetireIfDone(FsState* fs, Upload* up) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// Closes the daemon's writable descriptor of the staging file once no handle writes.
void DropIdleWriteFd(Upload* up) EXCLUSIVE_LOCKS_REQUIRED(up->mu);
// The daemon's writable descriptor of the staging file (opened if needed), or -1.
int WriteFd(FsState* fs, Upload* up) EXCLUSIVE_LOCKS_REQUIRED(up->mu);

// plugins.cc: resolvers/ and views/.
// Drops the kernel's cached views and resolvers/ entries (the plugin set changed).
void InvalidatePluginNodes(FsState* fs);
// dir.cc: drops, synchronously, the kernel's cached attributes of deleted object `id`'s
// directory, meta.json and data (no directory lock needed, unlike an entry
// invalidation), so a stat() right after the delete asks the daemon.
void DropCachedAttributes(FsState* fs, ObjectID id);
// create() in resolvers/: starts installing a plugin.
Status CreatePlugin(FsState* fs, fuse_req_t req, const std::string& name, FileHandle* fh);
// The last close of an installing handle: moves the file into place and loads it.
Status FinishPluginInstall(FsState* fs, FileHandle* fh);
// release() of a view or plugin file.
void ClosePluginFile(FsState* fs, FileHandle* fh);
// unlink() in resolvers/: removes and unloads a user plugin.
Status RemovePlugin(FsState* fs, fuse_req_t req, const std::string& name);
bool MayWritePlugins(fuse_req_t req);

// The id named by a symlink target: "../objects/<id>", "<id>", or any path whose last
// component is an id.
Result<ObjectID> IdFromTarget(const std::string& target);

}  // namespace vineyard
