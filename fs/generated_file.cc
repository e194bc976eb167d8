// Generated files: meta.json, status.json, metrics, instances/<n>.json and
// new/<file>.error. Each open renders the text once (the row's render, node.h) and
// serves that snapshot; meta.json is cached while its text stays the same
// (CacheMetaText), the others use direct_io so every open sees fresh content.
#include <linux/fuse.h>

#include <cerrno>
#include <cstring>

#include "fs/nodes.h"
#include "meta/log.h"

namespace vineyard {

namespace {

// meta.json is read through the page cache (keep_cache) when the kernel holds this very
// text already: an open is then all a warm read sends. The text is rendered at every
// open and compared with what the kernel was given (InodeTable::MetaCache), so a change
// of any kind (a member deleted, a persist, a remote update) is seen by the next open:
// its pages are dropped (no keep_cache) and, if its size changed, its attributes too,
// before this open returns (the next read past the old size asks for them again).
void CacheMetaText(FsState* fs, fuse_ino_t ino, const std::string& text, fuse_file_info* fi) {
  const uint64_t hash = std::hash<std::string>()(text);
  InodeTable::MetaCache old = fs->inodes.SwapMeta(ino, hash, text.size());
  fi->keep_cache = old.pages == hash && old.size == text.size() + 1;
  fi->noflush = 1;  // read-only: close() need not ask us anything
  if (old.size != text.size() + 1 && fs->session) {
    // Attributes only (offset < 0): no page lock is taken, so this is safe from
    // within the OPEN of the same inode (unlike a page invalidation).
    int rc = fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0);
    if (rc != 0 && rc != -ENOENT)
      VY_LOG_WARN("invalidate meta.json attributes: %s", std::strerror(-rc));
  }
}

// Renders `key`'s text into a new handle; replies with the error and returns null if
// the file may not or cannot be opened.
std::unique_ptr<FileHandle> RenderForOpen(fuse_req_t req, const NodeKey& key, fuse_file_info* fi) {
  auto fh = std::make_unique<FileHandle>();
  fh->kind = key.kind;
  if (WantsWrite(fi->flags)) {
    fuse_reply_err(req, EPERM);
    return nullptr;
  }
  Status s = OpsOf(key.kind).render(State(req), key, &fh->content);
  if (!s.ok()) {
    ReplyStatus(req, s);
    return nullptr;
  }
  return fh;
}

}  // namespace

// Valid replies: fuse_reply_open, fuse_reply_err
void OpenGeneratedFile(fuse_req_t req, fuse_ino_t, const NodeKey& key, fuse_file_info* fi) {
  auto fh = RenderForOpen(req, key, fi);
  if (!fh) return;
  fi->direct_io = 1;  // generated per open: never serve a stale cached copy
  ReplyOpen(req, fi, std::move(fh));
}

// Valid replies: fuse_reply_open, fuse_reply_err
void OpenMetaFile(fuse_req_t req, fuse_ino_t ino, const NodeKey& key, fuse_file_info* fi) {
  auto fh = RenderForOpen(req, key, fi);
  if (!fh) return;
  CacheMetaText(State(req), ino, fh->content, fi);
  ReplyOpen(req, fi, std::move(fh));
}

// Called on the reading thread for every request (passthrough.h). A warm get_meta is
// an OPEN and a RELEASE of meta.json; answering both on the thread that read them,
// which then reads the next request itself, spares a futex wake-up of another loop
// thread per request (README "Per-object cost"). Neither waits for another request:
// the OPEN renders from the object table (bounded: small texts only), the RELEASE
// frees the handle. A create's quick requests are quick_requests.cc's.
bool QuickRequest(void* ctx, const char* req, size_t len) {
  if (len < sizeof(fuse_in_header)) return false;
  fuse_in_header h;
  std::memcpy(&h, req, sizeof h);
  if (h.opcode == FUSE_OPEN) {
    return static_cast<FsState*>(ctx)->inodes.IsSmallMeta(h.nodeid, kQuickMetaText);
  }
  if (QuickCreateRequest(static_cast<FsState*>(ctx), req, len)) return true;
  if (h.opcode != FUSE_RELEASE || len < sizeof h + sizeof(fuse_release_in)) return false;
  fuse_release_in in;
  std::memcpy(&in, req + sizeof h, sizeof in);
  // The handle lives until the RELEASE handler, which runs after us (seal.cc too).
  auto* fh = reinterpret_cast<const FileHandle*>(in.fh);
  return fh && fh->kind == Kind::kMetaFile;
}

// Valid replies: fuse_reply_buf, fuse_reply_err
void ReadContent(fuse_req_t req, FsState*, FileHandle* fh, size_t size, off_t off) {
  const uint64_t uoff = static_cast<uint64_t>(off);
  const std::string& c = fh->content;
  size_t n = uoff >= c.size() ? 0 : std::min<size_t>(size, c.size() - uoff);
  fuse_reply_buf(req, c.data() + (n ? uoff : 0), n);
}

}  // namespace vineyard
