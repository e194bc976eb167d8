#include "meta/status.h"

#include <cstring>

namespace vineyard {

Status Status::FromErrno(const std::string& what, int err) {
  Status s(Code::kIOError, what + ": " + std::strerror(err));
  s.sys_errno_ = err;
  return s;
}

std::string Status::ToString() const {
  static const char* const kNames[] = {
      "OK",       "NotFound", "InvalidArgument",  "AlreadyExists", "Busy",
      "NoSpace",  "IOError",  "PermissionDenied", "NotSupported",  "NoData",
      "TooLarge", "Remote",   "Unavailable",      "NotOwner"};
  static_assert(sizeof kNames / sizeof kNames[0] == static_cast<size_t>(Code::kLastCode) + 1,
                "a name for every code");
  std::string s = kNames[static_cast<int>(code_)];
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace vineyard
