// The public face of fs/: the libfuse3 low-level filesystem that presents the object
// table and the store as the tree of DESIGN.md §3. tools/ creates one VineyardFs,
// hands its ops() to fuse_session_new, and calls Attach() once the session exists.
#pragma once

#include <fuse_lowlevel.h>

#include <map>
#include <memory>
#include <string>

#include "fs/passthrough.h"
#include "meta/object_table.h"
#include "meta/replicator.h"
#include "store/store.h"

namespace vineyard {

struct FsOptions {
  // Entry and attribute timeout, in seconds, for sealed objects and their files
  // (immutable, so the kernel may cache them long). Default: 3600.
  double sealed_timeout = 3600;
  // Seconds a sealed upload's link new/<file> stays (0: until removed), so that a
  // script can write the same name again later. Default: 60.
  double new_ttl = 60;
  // Timeout for names/ entries (changed through this mount, or by a cascade delete,
  // which invalidates them). Default: 1.
  double name_timeout = 1;
  // The effective mount options, echoed under "options" in status.json.
  std::map<std::string, std::string> shown_options;
  // The mountpoint and the kernel's device number of this mount ("0:123", whose
  // read-ahead tools/ raises). Set by tools/ after mount.
  std::string mountpoint;
  std::string device;
  // FUSE passthrough for payloads and uploads: on (refuse to mount without it), off
  // (the cached path), auto (passthrough when the kernel and privileges allow).
  // Default: auto.
  PassthroughMode passthrough = PassthroughMode::kAuto;
  // Payloads of at most this many bytes are served through the page cache (kept
  // across opens: they never change) even when passthrough is on. A passthrough
  // mmap makes the kernel ask for the attributes again at the next stat (it marks
  // atime stale), which costs a warm open+fstat+mmap a GETATTR; a cached payload
  // costs an OPEN only, and a copy in the page cache (clean, reclaimable). Larger
  // payloads keep passthrough (no copy at all). Default: 1 MiB.
  uint64_t passthrough_min = uint64_t{1} << 20;
  // The user plugin directory (resolvers/ shows it; watched with inotify) and the
  // builtin plugins' directory ("" for none). Set by tools/.
  std::string plugins;
  std::string builtin_plugins;
  // The cluster (null for a single node). Must outlive the filesystem's Detach().
  Replicator* cluster = nullptr;
};

class FsState;

class VineyardFs {
 public:
  // `store` and `table` must outlive this object; the table must be loaded.
  VineyardFs(Store* store, ObjectTable* table, FsOptions opts);
  ~VineyardFs();

  const fuse_lowlevel_ops& ops() const;
  void* userdata();
  // Installs passthrough's I/O layer on a mounted session, before INIT is processed.
  Status InstallPassthrough(fuse_session* se);
  // After INIT: probes passthrough with a file in `dir`; false if it was required
  // (passthrough=on) and is not available. `why` says which path is in use and why.
  bool ProbePassthrough(const std::string& dir, std::string* why);
  // Binds the session (for kernel cache invalidations) and starts helper threads.
  void Attach(fuse_session* se);
  // Stops helper threads; call before fuse_session_destroy.
  void Detach();
  FsOptions& options();

 private:
  std::unique_ptr<FsState> state_;
};

}  // namespace vineyard
