// The helpers that every handler uses to reply exactly once (the errno for a Status
// is host/errno.h's ErrnoFor, shared with the plugin ABI).
#include <cerrno>
#include <cstring>

#include "fs/internal.h"
#include "meta/log.h"

namespace vineyard {

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
