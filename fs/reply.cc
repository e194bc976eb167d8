// Status -> errno, the one place where the two meet, and the helpers that every
// handler uses to reply exactly once.
#include <cerrno>
#include <cstring>

#include "fs/internal.h"
#include "meta/log.h"

namespace vineyard {

int ErrnoFor(const Status& s) {
  using C = Status::Code;
  switch (s.code()) {
    case C::kOk:
      return 0;
    case C::kNotFound:
      return ENOENT;
    case C::kInvalidArgument:
      return EINVAL;
    case C::kAlreadyExists:
      return EEXIST;
    case C::kBusy:
      return EBUSY;
    case C::kNoSpace:
      return ENOSPC;
    case C::kIOError:
      return s.sys_errno() == ENOSPC || s.sys_errno() == EACCES ? s.sys_errno() : EIO;
    case C::kPermissionDenied:
      return EPERM;
    case C::kNotSupported:
      return ENOTSUP;
    case C::kNoData:
      return ENODATA;
    case C::kTooLarge:
      return EFBIG;
    case C::kRemote:
      return EREMOTE;
    case C::kUnavailable:
      return EHOSTDOWN;
    case C::kNotOwner:
      return EACCES;
  }
  return EIO;
}

bool ReplyIfNameTooLong(fuse_req_t req, const char* name) {
  if (strnlen(name, kMaxFileName + 1) <= kMaxFileName) return false;
  fuse_reply_err(req, ENAMETOOLONG);
  return true;
}

void ReplyStatus(fuse_req_t req, const Status& s) {
  if (s.code() == Status::Code::kIOError) VY_LOG_ERROR("%s", s.ToString().c_str());
  fuse_reply_err(req, ErrnoFor(s));
}

Owner Caller(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Owner{ctx->uid, ctx->gid};
}

std::optional<NodeKey> NodeOrReply(fuse_req_t req, fuse_ino_t ino) {
  auto key = State(req)->inodes.Get(ino);
  if (!key) fuse_reply_err(req, ESTALE);
  return key;
}

Result<ObjectID> IdFromTarget(const std::string& target) {
  std::string t = target;
  while (t.size() > 1 && t.back() == '/') t.pop_back();
  size_t slash = t.rfind('/');
  std::string last = slash == std::string::npos ? t : t.substr(slash + 1);
  auto id = ObjectID::Parse(last);
  if (!id.ok()) {
    return Status::InvalidArgument("link target '" + target +
                                   "' does not name an object (expected ../objects/<id>)");
  }
  return id;
}

}  // namespace vineyard
