// Status -> errno, the one place where the two meet.
#include "host/errno.h"

#include <cerrno>

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

}  // namespace vineyard
