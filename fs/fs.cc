// VineyardFs: wires the operation handlers into one fuse_lowlevel_ops table and owns
// the filesystem's state for the life of the session.
#include "fs/fs.h"

#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

void OpInit(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<FsState*>(userdata);
  // The INIT reply this thread is about to send asks for passthrough (passthrough.h).
  if (fs->passthrough.mode() != PassthroughMode::kOff) Passthrough::MarkInitReply();
  // Requests and replies go through read/writev, so the custom I/O sees them all.
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  // Uploads are written through to the arena so the seal sees every byte at close();
  // a writeback cache would hold them back.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // READDIRPLUS where the reader stats the entries (`ls -l`: the kernel asks for it
  // once it sees lookups of the listed names), plain READDIR where it does not
  // (`os.listdir`, `ls`): a listing of 2M objects then makes no inode per entry in the
  // kernel or here (README "Millions of objects").
  if (conn->capable & FUSE_CAP_READDIRPLUS) {
    conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  }
  // RELEASE is a background request: beyond max_background of them in flight the
  // kernel holds the rest back, and a later LOOKUP could overtake one (see Attach).
  conn->max_background = 1024;
  conn->congestion_threshold = 768;
  conn->max_readahead = 1u << 20;
  conn->max_write = 1u << 20;
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readlink = OpReadlink;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.symlink = OpSymlink;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.releasedir = OpReleasedir;
  ops.statfs = OpStatfs;
  ops.setxattr = OpSetxattr;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.removexattr = OpRemovexattr;
  ops.create = OpCreate;
  ops.fallocate = OpFallocate;
  return ops;
}

const fuse_lowlevel_ops kOps = MakeOps();

}  // namespace

VineyardFs::VineyardFs(Store* store, ObjectTable* table, FsOptions opts)
    : state_(std::make_unique<FsState>(store, table, std::move(opts))) {
  state_->start_ms = NowMs();
  // The seal needs to know which RELEASEs were read before a LOOKUP (seal.cc).
  state_->passthrough.SetRequestHook(NoteRequest, state_.get());
  // A warm meta.json open and its release are answered by the reading thread (no
  // handoff of the read lock): generated_file.cc, QuickRequest.
  state_->passthrough.SetQuickRequest(QuickRequest, state_.get());
  // Such a request's handler may read the object table (meta.json's render), whose
  // writer holds the lock across a journal commit (a batch of 40,001 objects: ~0.5 s).
  // A thread that would wait gives its read turn up first: every other request is read
  // meanwhile (quick_reads_test, AMetaJsonOpenDuringABatchCommitStopsNoOtherRequest).
  table->SetBeforeWait(&Passthrough::ReleaseReadTurn);
}

VineyardFs::~VineyardFs() { Detach(); }

const fuse_lowlevel_ops& VineyardFs::ops() const { return kOps; }
void* VineyardFs::userdata() { return state_.get(); }
FsOptions& VineyardFs::options() { return state_->opts; }

Status VineyardFs::InstallPassthrough(fuse_session* se) { return state_->passthrough.Install(se); }

bool VineyardFs::ProbePassthrough(const std::string& dir, std::string* why) {
  Passthrough& pt = state_->passthrough;
  pt.Probe(dir);
  *why = pt.reason();
  state_->io_path_reason = *why;
  return pt.enabled() || pt.mode() != PassthroughMode::kOn;
}

void VineyardFs::Attach(fuse_session* se) {
  state_->session = se;
  state_->notifier.Start(se);
  FsState* fs = state_.get();
  std::string staging = fs->store->UploadPath(0);
  staging.resize(staging.rfind('/'));
  ProbeLeases(fs, staging);
  fs->seal_waiter.Start(fs);
  // A payload's backing id lives as long as its arena file is the payload (file.cc).
  fs->store->SetDropHook([fs](ObjectID id) { fs->backings.Drop(&fs->passthrough, id); });
  // Reads of /dev/fuse are serialized and RELEASEs counted as they are read, so that a
  // LOOKUP of new/<name> sees every RELEASE queued before it (seal.cc: SettleUpload).
  // Passthrough does not spare this: the kernel keeps a writable open's backing file
  // until the daemon has answered its RELEASE, so a lease cannot tell a lookup that a
  // RELEASE is queued (measured: refused while the RELEASE is handled, granted after the
  // answer). The lock costs ~12% of the create rate (README "Per-object cost").
  fs->passthrough.SetOrderedReads(true);
  PluginHostOptions popts{fs->opts.plugins, fs->opts.builtin_plugins};
  fs->plugins = std::make_unique<PluginHost>(&fs->objects, popts);
  // Views and resolvers/ entries the kernel caches may have changed: drop them.
  fs->plugins->OnChange([fs] { InvalidatePluginNodes(fs); });
  fs->plugins->Start();
  if (fs->opts.cluster) {
    const fuse_ino_t objects = InodeTable::FixedIno(Kind::kObjects);
    const fuse_ino_t names = InodeTable::FixedIno(Kind::kNames);
    fs->opts.cluster->SetListener([fs, objects, names](const ObjectTable::Applied& a) {
      for (ObjectID id : a.objects) {
        // Deleted by its owner: our cached copy goes, and the kernel's entries.
        if (!fs->objects.ForgetIfDeleted(id)) continue;  // created or replaced
        DropCachedAttributes(fs, id);  // now; the entry (which needs objects/'s lock) later
        fs->notifier.InvalEntry(objects, id.ToString());
      }
      for (auto& name : a.names) fs->notifier.InvalEntry(names, name);
    });
  }
}

void VineyardFs::Detach() {
  if (!state_->session) return;
  if (state_->opts.cluster) state_->opts.cluster->SetListener(nullptr);
  state_->plugins.reset();  // stops the watcher first: it may notify
  state_->seal_waiter.Stop();
  state_->store->SetDropHook(nullptr);
  state_->backings.DropAll(&state_->passthrough);
  state_->notifier.Stop();
  state_->session = nullptr;
}

}  // namespace vineyard
