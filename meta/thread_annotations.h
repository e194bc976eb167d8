// Clang's thread-safety annotations (LevelDB's port/thread_annotations.h): which
// mutex guards a member, which a function needs held. A build with
// -DVINEYARDFS_THREAD_SAFETY=ON (Clang) checks them with -Wthread-safety; other
// compilers ignore them. Use them with meta/mutex.h's Mutex, which is annotated
// (libstdc++'s std::mutex is not).
#pragma once

#if defined(__clang__)
#define VY_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define VY_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) VY_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY VY_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) VY_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) VY_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_AFTER(...) VY_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) VY_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define EXCLUSIVE_LOCKS_REQUIRED(...) VY_THREAD_ANNOTATION(exclusive_locks_required(__VA_ARGS__))
#define LOCKS_EXCLUDED(...) VY_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) VY_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) VY_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) VY_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) VY_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) VY_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define SHARED_LOCKS_REQUIRED(...) VY_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) VY_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) VY_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS VY_THREAD_ANNOTATION(no_thread_safety_analysis)
