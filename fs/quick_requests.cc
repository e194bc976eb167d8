// The requests of a create through new/ that the thread which read them may answer
// itself (Passthrough::SetQuickRequest, through QuickRequest in generated_file.cc).
// A create (open O_CREAT|O_EXCL, write, close, readlink, unlink) costs 13 requests; a
// request that is not quick hands the read lock to another loop thread before it is
// answered: a futex wake-up and a context switch per request, which on this VM (a PVM
// guest) was ~60% of the daemon's CPU per create (README "Per-object cost", fifth
// round). The quick ones below never wait for another request, take no lock that a
// request holds while it waits for one, and do no I/O:
//   * FORGET and BATCH_FORGET: the inode table's counts only, no reply;
//   * GETATTR of a fixed directory (/, objects/, names/, new/, resolvers/,
//     instances/): constant attributes (the kernel asks for new/'s before each path
//     walk after an entry came or went, and for objects/'s before each rmdir);
//   * GETXATTR of a security.* or system.* name: "not supported", from the name alone
//     (the kernel's security.capability query before the first write to an inode);
//   * READLINK of a sealed upload's link in new/: the id it points to (the link is
//     made by the seal, which no longer runs by then: a link is only found sealed).
//   * LOOKUP in new/ of a name that no upload has, or of a sealed upload's link
//     (IsSettledLookup: the waits of SettleUpload that need a request not read yet
//     cannot happen then; an upload whose lock is held, by its seal say, hands off).
// Everything else (a LOOKUP of an unsealed upload, which may wait for a RELEASE not
// read yet; CREATE; FLUSH; the sealing RELEASE; UNLINK, whose invalidations must not
// run under the read lock) hands the lock over as before.
#include <linux/fuse.h>

#include <cstring>

#include "fs/ops.h"

namespace vineyard {

namespace {

bool IsFixedDir(fuse_ino_t ino) {
  for (Kind k : {Kind::kRoot, Kind::kObjects, Kind::kNames, Kind::kNew, Kind::kResolvers,
                 Kind::kInstances}) {
    if (ino == InodeTable::FixedIno(k)) return true;
  }
  return false;
}

bool IsUnsupportedXattr(const char* req, size_t len) {
  const size_t at = sizeof(fuse_in_header) + sizeof(fuse_getxattr_in);
  if (len <= at) return false;
  const char* name = req + at;
  const size_t n = strnlen(name, len - at);
  if (n == len - at) return false;  // not terminated: let the handler say so
  return std::strncmp(name, "security.", 9) == 0 || std::strncmp(name, "system.", 7) == 0;
}

// A LOOKUP in new/ waits (SettleUpload) only for RELEASEs of an unsealed upload whose
// writers all flushed. It is quick when no upload has the name (one created after this
// check has not been flushed by a request read before this one: its CREATE answered
// after it was listed) or the upload is sealed (a link: no writer is left, and it
// never becomes an upload again).
bool IsSettledLookup(FsState* fs, const fuse_in_header& h, const char* req, size_t len) {
  if (h.nodeid != InodeTable::FixedIno(Kind::kNew)) return false;
  const size_t at = sizeof(fuse_in_header);
  if (len <= at) return false;
  const char* name = req + at;
  const size_t n = strnlen(name, len - at);
  if (n == len - at || n > 255) return false;  // let the handler answer
  auto up = fs->uploads.Find(std::string(name, n));
  if (!up) return true;
  // Not waited for: a seal holds the upload's lock for its whole length (tens of ms for
  // a batch), and the writer's readlink right after close() looks the name up while
  // the seal (at the RELEASE, which close() does not wait for) runs. Waiting here would
  // hold the read lock, and so every other request of the mount, for that long.
  if (!up->mu.TryLock()) return false;
  const bool sealed = up->sealed.valid();
  up->mu.Unlock();
  return sealed;
}

}  // namespace

bool QuickCreateRequest(FsState* fs, const char* req, size_t len) {
  if (len < sizeof(fuse_in_header)) return false;
  fuse_in_header h;
  std::memcpy(&h, req, sizeof h);
  switch (h.opcode) {
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
      return true;
    case FUSE_LOOKUP:
      return IsSettledLookup(fs, h, req, len);
    case FUSE_GETATTR:
      return IsFixedDir(h.nodeid);
    case FUSE_GETXATTR:
      return IsUnsupportedXattr(req, len);
    case FUSE_READLINK: {
      auto key = fs->inodes.Get(h.nodeid);
      return key && key->kind == Kind::kNewLink;
    }
    default:
      return false;
  }
}

}  // namespace vineyard
