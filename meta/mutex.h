// Mutex and MutexLock: std::mutex and std::lock_guard annotated for Clang's
// thread-safety analysis (meta/thread_annotations.h), as LevelDB's port::Mutex and
// MutexLock. Declare members `GUARDED_BY(mu_)` and the compiler checks every access.
// MutexUniqueLock is std::unique_lock (unlock and lock again within its scope), CondVar
// std::condition_variable over a Mutex. Each compiles to the same std::mutex and
// std::condition_variable calls as the plain std types.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "meta/thread_annotations.h"

namespace vineyard {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis that the caller holds the lock where it cannot see it (say why
  // at the call). Checks nothing at run time.
  void AssertHeld() ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
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

// Holds `mu` for its scope, like MutexLock, but may let it go and take it again
// within the scope (std::unique_lock): the destructor unlocks only if it holds it.
class SCOPED_CAPABILITY MutexUniqueLock {
 public:
  explicit MutexUniqueLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexUniqueLock() RELEASE() {
    if (held_) mu_->Unlock();
  }
  MutexUniqueLock(const MutexUniqueLock&) = delete;
  MutexUniqueLock& operator=(const MutexUniqueLock&) = delete;
  void Unlock() RELEASE() {
    held_ = false;
    mu_->Unlock();
  }
  void Lock() ACQUIRE() {
    mu_->Lock();
    held_ = true;
  }

 private:
  Mutex* const mu_;
  bool held_ = true;
};

// A condition variable over a Mutex (LevelDB's port::CondVar). Each wait names the
// mutex, as absl::CondVar's do, so that the compiler checks that the waiter holds it:
// the wait lets `mu` go while blocked and holds it again on return. Waits may return
// spuriously: wait in a loop on the condition, `while (!ready_) cv_.Wait(&mu_);`
// (what std::condition_variable::wait(lock, pred) does; a lambda predicate would hide
// its reads of guarded members from the analysis). Signal and SignalAll need no lock.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex* mu) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // Waits until signalled or `deadline`; false once the deadline has passed.
  bool WaitUntil(Mutex* mu, std::chrono::steady_clock::time_point deadline)
      EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signalled = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  // Waits until signalled or for at most `timeout`; false if it timed out.
  template <class Rep, class Period>
  bool WaitFor(Mutex* mu, const std::chrono::duration<Rep, Period>& timeout)
      EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signalled = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  // The deadline of a wait of at most `timeout` from now, for a WaitUntil loop (a
  // deadline taken once, as std::condition_variable::wait_for(lock, timeout, pred)).
  template <class Rep, class Period>
  static std::chrono::steady_clock::time_point Deadline(
      const std::chrono::duration<Rep, Period>& timeout) {
    return std::chrono::steady_clock::now() +
           std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A reader/writer lock: std::shared_mutex annotated. Members GUARDED_BY it may be read
// under ReaderMutexLock and written under WriterMutexLock. A thread that finds it held
// in a conflicting mode calls the SetBeforeWait function, if any, before it waits.
class CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ACQUIRE() {
    if (!mu_.try_lock()) {
      BeforeWait();
      mu_.lock();
    }
  }
  void Unlock() RELEASE() { mu_.unlock(); }
  void ReaderLock() ACQUIRE_SHARED() {
    if (!mu_.try_lock_shared()) {
      BeforeWait();
      mu_.lock_shared();
    }
  }
  void ReaderUnlock() RELEASE_SHARED() { mu_.unlock_shared(); }

  // `fn` is called by a thread that is about to wait for this lock (it is held by
  // another in a conflicting mode), before it waits; nullptr: none.
  void SetBeforeWait(void (*fn)()) { before_wait_.store(fn, std::memory_order_relaxed); }

 private:
  void BeforeWait() {
    if (auto* fn = before_wait_.load(std::memory_order_relaxed)) fn();
  }

  std::shared_mutex mu_;
  std::atomic<void (*)()> before_wait_{nullptr};
};

// Holds `mu` exclusively for its scope.
class SCOPED_CAPABILITY WriterMutexLock {
 public:
  explicit WriterMutexLock(SharedMutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterMutexLock() RELEASE() { mu_->Unlock(); }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// Holds `mu` shared for its scope.
class SCOPED_CAPABILITY ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex* mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_->ReaderLock(); }
  ~ReaderMutexLock() RELEASE() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex* const mu_;
};

}  // namespace vineyard
