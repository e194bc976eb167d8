// Status and Result<T>: how every module reports failure (LevelDB's Status, made
// [[nodiscard]]). No exception crosses a module boundary; adapters around
// nlohmann/json, RocksDB and ZeroMQ translate theirs into a Status exactly once.
//
// A Status carries a Code and a one-line message meant for a human (it ends up in
// logs and in `user.vineyard.error`). The FUSE edge maps a Code to an errno in one
// place (fs/reply.cc); nothing below fs/ knows about errno.
//
// Thread-safety: a Status is a value; const methods may be called concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace vineyard {

class [[nodiscard]] Status {
 public:
  // The numbers are on the wire (the Error frame of meta/wire.h): never renumber one;
  // add new codes at the end and move kLastCode.
  enum class Code : uint32_t {
    kOk = 0,
    kNotFound = 1,          // no such object, name, member, key
    kInvalidArgument = 2,   // malformed input: JSON, id, option value, field name
    kAlreadyExists = 3,     // a name or file that must not exist yet
    kBusy = 4,              // still referenced (a member of another object)
    kNoSpace = 5,           // arena full and nothing evictable
    kIOError = 6,           // a system call or RocksDB failed
    kPermissionDenied = 7,  // immutable payload, read-only attribute
    kNotSupported = 8,      // an operation this filesystem does not offer
    kNoData = 9,            // an unknown xattr key
    kTooLarge = 10,         // over a documented limit (16 MiB meta, depth 64)
    kRemote = 11,           // the payload lives on another node and remote=error
    kUnavailable = 12,      // the node that holds it is down or does not answer in time
    kNotOwner = 13,         // another user's object: the caller may not do this to it
    kLastCode = kNotOwner,
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
  static Status Busy(std::string m) { return Status(Code::kBusy, std::move(m)); }
  static Status NoSpace(std::string m) { return Status(Code::kNoSpace, std::move(m)); }
  static Status IOError(std::string m) { return Status(Code::kIOError, std::move(m)); }
  // An IOError built from errno after a failed system call: "what: strerror".
  static Status FromErrno(const std::string& what, int err);
  static Status PermissionDenied(std::string m) {
    return Status(Code::kPermissionDenied, std::move(m));
  }
  static Status NotSupported(std::string m) { return Status(Code::kNotSupported, std::move(m)); }
  static Status NoData(std::string m) { return Status(Code::kNoData, std::move(m)); }
  static Status TooLarge(std::string m) { return Status(Code::kTooLarge, std::move(m)); }
  static Status Remote(std::string m) { return Status(Code::kRemote, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status NotOwner(std::string m) { return Status(Code::kNotOwner, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: object o0001000000000003" — for logs and test failure output.
  std::string ToString() const;
  // The errno a system call reported, when the Status came from FromErrno (else 0).
  int sys_errno() const { return sys_errno_; }

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
  int sys_errno_ = 0;
};

// Result<T>: a T or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace vineyard

// Early return of a non-OK Status.
#define VY_RETURN_IF_ERROR(expr)     \
  do {                               \
    ::vineyard::Status _st = (expr); \
    if (!_st.ok()) return _st;       \
  } while (0)
