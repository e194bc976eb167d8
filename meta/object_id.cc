#include "meta/object_id.h"

#include <cstdio>

namespace vineyard {

Result<ObjectID> ObjectID::Parse(std::string_view text) {
  if (text.size() != 17 || text[0] != 'o') {
    return Status::InvalidArgument("malformed object id '" + std::string(text) +
                                   "': expected 'o' and 16 lowercase hex digits");
  }
  uint64_t raw = 0;
  for (size_t i = 1; i < text.size(); ++i) {
    char c = text[i];
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else {
      return Status::InvalidArgument("malformed object id '" + std::string(text) +
                                     "': expected 'o' and 16 lowercase hex digits");
    }
    raw = raw << 4 | static_cast<uint64_t>(v);
  }
  if (raw == 0) return Status::InvalidArgument("object id o0000000000000000 is reserved");
  return ObjectID(raw);
}

std::string ObjectID::ToString() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "o%016llx", static_cast<unsigned long long>(raw_));
  return buf;
}

IdAllocator::IdAllocator(InstanceId instance, uint64_t stored_limit, SaveLimit save)
    : instance_(instance), save_(std::move(save)), next_(stored_limit), limit_(stored_limit) {
  if (next_ == 0) next_ = limit_ = 1;  // counter 0 would make instance 0's id 0 reserved
}

Result<ObjectID> IdAllocator::Next(bool blob) {
  MutexLock lock(&mu_);
  if (next_ >= limit_) {
    if (next_ + kBlock > ObjectID::kCounterMask) {
      return Status::NoSpace("object id counter of instance " + std::to_string(instance_) +
                             " is exhausted");
    }
    VY_RETURN_IF_ERROR(save_(next_ + kBlock));
    limit_ = next_ + kBlock;
  }
  return ObjectID::Make(blob, instance_, next_++);
}

}  // namespace vineyard
