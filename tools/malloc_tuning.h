// Malloc on transparent huge pages for the daemon (glibc.malloc.hugetlb=1).
//
// A remount allocates some 400 bytes per object (the object table, the store's and the
// arena's tables) and touches each page of it first; on this project's VMs a first-touch
// page fault is the dearest thing the load does (a third of the daemon's CPU at 200,000
// objects, README "Millions of objects"). With the tunable, glibc asks for huge pages
// (madvise) on the heap it grows, so one fault maps 2 MiB instead of 4 KiB.
//
// glibc reads tunables only when a process starts, so the daemon re-executes itself once
// (/proc/self/exe, same argv, before anything is opened) with the tunable added to
// GLIBC_TUNABLES, then puts the caller's GLIBC_TUNABLES back for the processes it starts.
// Not done when GLIBC_TUNABLES already names glibc.malloc.hugetlb (the operator's
// choice), when VINEYARDFS_HUGE_MALLOC=0, or when the exec fails (the daemon then runs
// as before).
#pragma once

namespace vineyard {

// Call first in main(). Returns only in the process that is to run (the re-executed
// one, or this one when nothing is done).
void ReexecWithHugePageMalloc(char** argv);

}  // namespace vineyard
