// VineyardFs: wires the operation handlers into one fuse_lowlevel_ops table and owns
// the filesystem's state for the life of the session.
#include "fs/fs.h"

#include "fs/ops.h"
#include "meta/log.h"

namespace vineyard {

namespace {

void OpInit(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  // Uploads are written through to the arena so the seal sees every byte at close();
  // a writeback cache would hold them back.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // `ls -l` of a large objects/ is one READDIRPLUS stream instead of a LOOKUP each.
  if (conn->capable & FUSE_CAP_READDIRPLUS) {
    conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  }
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
}

VineyardFs::~VineyardFs() { Detach(); }

const fuse_lowlevel_ops& VineyardFs::ops() const { return kOps; }
void* VineyardFs::userdata() { return state_.get(); }
FsOptions& VineyardFs::options() { return state_->opts; }

void VineyardFs::Attach(fuse_session* se) {
  state_->session = se;
  state_->notifier.Start(se);
}

void VineyardFs::Detach() {
  if (!state_->session) return;
  state_->notifier.Stop();
  state_->session = nullptr;
}

}  // namespace vineyard
