// Mutex and MutexLock: std::mutex and std::lock_guard annotated for Clang's
// thread-safety analysis (meta/thread_annotations.h), as LevelDB's port::Mutex and
// MutexLock. Declare members `GUARDED_BY(mu_)` and the compiler checks every access.
#pragma once

#include <mutex>

#include "meta/thread_annotations.h"

namespace vineyard {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds `mu` for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace vineyard
