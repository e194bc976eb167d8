// ObjectID: the 64-bit identity of an object, unique in a cluster without coordination.
//
//   bit 63      1 for a blob (a payload), 0 for a metadata object
//   bits 62..48 the instance that created it (1..32767)
//   bits 47..0  that instance's counter, never reused (see IdAllocator)
//
// Printed as "o" + 16 lowercase hex digits ("o8001000000000002"); Parse() accepts only
// that exact form, so a path component either is an id or is not.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "meta/mutex.h"
#include "meta/status.h"

namespace vineyard {

using InstanceId = uint32_t;
constexpr InstanceId kMaxInstance = 32767;

class ObjectID {
 public:
  static constexpr uint64_t kBlobBit = uint64_t{1} << 63;
  static constexpr int kCounterBits = 48;
  static constexpr uint64_t kCounterMask = (uint64_t{1} << kCounterBits) - 1;

  constexpr ObjectID() = default;
  constexpr explicit ObjectID(uint64_t raw) : raw_(raw) {}
  static ObjectID Make(bool blob, InstanceId instance, uint64_t counter) {
    return ObjectID((blob ? kBlobBit : 0) | (uint64_t{instance & kMaxInstance} << kCounterBits) |
                    (counter & kCounterMask));
  }
  // Accepts exactly "o" followed by 16 lowercase hex digits.
  static Result<ObjectID> Parse(std::string_view text);

  uint64_t raw() const { return raw_; }
  bool valid() const { return raw_ != 0; }
  bool is_blob() const { return raw_ & kBlobBit; }
  InstanceId instance() const { return (raw_ >> kCounterBits) & kMaxInstance; }
  uint64_t counter() const { return raw_ & kCounterMask; }
  std::string ToString() const;

  friend bool operator==(ObjectID a, ObjectID b) { return a.raw_ == b.raw_; }
  friend bool operator!=(ObjectID a, ObjectID b) { return a.raw_ != b.raw_; }
  friend bool operator<(ObjectID a, ObjectID b) { return a.raw_ < b.raw_; }

 private:
  uint64_t raw_ = 0;
};

// Hands out fresh ids for one instance. The counter is persisted in blocks: before
// handing out the first id of a block, the end of the block is saved through `save`
// (synchronously durable), so after a crash the allocator restarts at the saved end
// and no id is ever handed out twice. One save per kBlock ids keeps creation cheap.
//
// Thread-safe.
class IdAllocator {
 public:
  static constexpr uint64_t kBlock = 4096;
  // Persists the new exclusive upper bound of the counter; must be durable on return.
  using SaveLimit = std::function<Status(uint64_t limit)>;

  // `stored_limit` is the last value passed to `save` (0 on a fresh state).
  IdAllocator(InstanceId instance, uint64_t stored_limit, SaveLimit save);
  Result<ObjectID> Next(bool blob);
  InstanceId instance() const { return instance_; }

 private:
  const InstanceId instance_;
  SaveLimit save_;
  Mutex mu_;
  uint64_t next_ GUARDED_BY(mu_);
  uint64_t limit_ GUARDED_BY(mu_);  // ids below this are covered by a saved block
};

}  // namespace vineyard

template <>
struct std::hash<vineyard::ObjectID> {
  size_t operator()(vineyard::ObjectID id) const noexcept {
    return std::hash<uint64_t>()(id.raw());
  }
};
