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
// Everything else (LOOKUP in new/, which may wait for a RELEASE not read yet; CREATE;
// FLUSH; the sealing RELEASE; UNLINK) hands the lock over as before.
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

}  // namespace

bool QuickCreateRequest(FsState* fs, const char* req, size_t len) {
  if (len < sizeof(fuse_in_header)) return false;
  fuse_in_header h;
  std::memcpy(&h, req, sizeof h);
  switch (h.opcode) {
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
      return true;
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
