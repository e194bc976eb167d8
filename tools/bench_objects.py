#!/usr/bin/python3
"""Per-object cost (issue #17): every per-object operation against the same on /dev/shm.

Each case group mounts its own fresh daemon (`-f`, in the foreground, so its pid is
ours) in a temp dir, with the daemon's defaults except size= and the temp arena/state
(durability=async unless --durability). Every timed case runs --runs times, the
vineyardfs and /dev/shm targets alternating in order run by run; the report gives the
median over runs and the spread (min-max), and the ratio vineyardfs / /dev/shm
(for rates; for times /dev/shm / vineyardfs: 1.0 is "as fast as tmpfs", higher is
better). For the daemon side it also records, per operation, the daemon's CPU time
(utime+stime of /proc/<pid>/stat, all threads) and the FUSE requests the daemon
counted (`requests` in status.json; the cost of reading status.json itself is
subtracted). Timed loops of system calls are C++ (`vybench`); the Python rows are
the client (python/vineyardfs) in this process.

Groups (--only, comma-separated):
  create   1 KiB blobs through new/, 1 writer and 2 writers (a writer = one vybench
           process doing open(O_CREAT|O_EXCL) + write + close + readlink + unlink of
           the link, N times, as the Python client does; 2 writers do N/2 each at once,
           rate = N / (last end - first start)). /dev/shm: the same calls on plain files.
  pair     a vineyard::Pair of two blobs through new/<x>.meta.json, same calls;
           /dev/shm: the same JSON written to plain files.
  rmdir    rmdir of objects/<id> of a 1 KiB blob; /dev/shm: rmdir of empty directories.
  openmap  open + fstat + mmap + munmap + close of `data` of a 1 MiB and a --gib blob
           (median of 2000 per run); /dev/shm: a file of the same size.
  meta     Python client.get_meta / client.get_object of a small object (a 1 KiB blob);
           /dev/shm: the same client code on a copy of the tree on /dev/shm
           (status.json, objects/<id>/meta.json with the same text, data, the
           user.vineyard.local xattr): open + read + close + json + the Python objects.
  get      Python client.get of a 1 KiB blob and of a Pair of two scalars; /dev/shm:
           the same client code on a copy of the tree, as for meta.
  put      Python client.put of a list of 1,000 float64 arrays of 1 KiB (2,001 objects:
           1,000 blobs, 1,000 Tensors, the List) and of a 1,000-column DataFrame of
           1 KiB columns if pandas is importable (objects = status.json objects.total
           added); objects/s. /dev/shm: the same put() with the client's one create call
           (_create_file) writing the same bytes to a plain file instead (open
           O_CREAT|O_EXCL + write + close; since put() makes a composite value one
           new/<x>.batch upload, that is one file holding the whole batch, counted as
           its entries), ids made up.
  scale    fills a store with 1 KiB blobs (1 writer, chunks of 10,000) up to --objects
           (200,000; --big: 2,000,000): creation rate per chunk, first and last window
           (100,000, or half of N), daemon CPU per object, daemon RSS per object. Above
           200,000 (or --fill direct) only the first window (from empty) and the last
           (up to N) go through new/; the rest is build/vyfill into the unmounted store
           (10,000 records per journal commit; a window is then at most N/10). At
           N/10 and N: remount --runs times (unmount, start the daemon, until
           status.json answers = mount; then os.listdir(objects/) has every object =
           listed), per-object time. /dev/shm: the same fill of kept files (capped at
           200,000 files) and os.listdir of them (context only: tmpfs has no remount).
           First, the leftover group's row on an empty store.
  leftover create rate through new/ (--creates, at most 5,000, client pattern) with
           --leftover (10,000) links left in new/ against an empty new/, alternating;
           both after the same --leftover creates (links removed before the empty case).
  strace   `strace -c -f -p <daemon>` over 1,000 creates (1 writer, after 200 unmeasured):
           daemon syscalls per created object; then `strace -f -e trace=read` of the
           daemon over another 1,000, decoding the opcode of every request read from
           /dev/fuse: every FUSE request per create (status.json counts only some kinds).

Every mount is unmounted and every arena tmpfs too, also on Ctrl-C, SIGTERM or an
error; only processes this script started are ended, by pid.

Usage: sudo tools/bench_objects.py [--runs 5] [--quick] [--only create,pair,...]
           [--creates 5000] [--gets 1000] [--gib 1] [--objects 200000 | --big]
           [--fill new|direct] [--leftover 10000] [--durability async] [--out bench-results/objects.json] [--build build]

A smoke run: --quick --only create,pair,openmap,meta (no figure checked).
"""
import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_zero_copy as bz  # noqa: E402  (ROOT, BUILD, save_results, wait_until, _cpu)

sys.path.insert(0, os.path.join(bz.ROOT, "python"))
from bench import binaries  # noqa: E402
from bench.objects_daemon import end_children  # noqa: E402
from bench.objects_fs import group_create, group_openmap, group_pair, group_rmdir  # noqa: E402
from bench.objects_python import group_put, python_cases  # noqa: E402
from bench.objects_report import chart, print_table  # noqa: E402
from bench.objects_scale import group_leftover, group_scale  # noqa: E402
from bench.objects_strace import group_strace  # noqa: E402

GROUPS = ("create", "pair", "rmdir", "openmap", "meta", "get", "put", "scale", "leftover",
          "strace")


def parse_args():
    """The command line (see the usage above), checked, and the groups to run."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default=",".join(GROUPS), help="comma-separated: " + ",".join(GROUPS))
    ap.add_argument("--creates", type=int, default=5000, help="objects per create/rmdir run")
    ap.add_argument("--gets", type=int, default=1000, help="calls per run of a Python case")
    ap.add_argument("--gib", type=float, default=1.0, help="openmap: the large blob, GiB")
    ap.add_argument("--objects", type=int, default=200_000, help="scale: objects")
    ap.add_argument("--big", action="store_true", help="scale: 2,000,000 objects")
    ap.add_argument("--chunk", type=int, default=10_000, help="scale: objects per timed chunk")
    ap.add_argument("--fill", choices=("new", "direct"), default=None,
                    help="scale: every object through new/, or (direct; the default above "
                         "200,000) the first and last window through new/ and the rest by "
                         "build/vyfill into the unmounted store")
    ap.add_argument("--leftover", type=int, default=10_000,
                    help="scale: links left in new/ for the leftover-links row")
    ap.add_argument("--durability", default="async", help="the daemons' durability=")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 runs, 300 creates, 100 gets, 64 MiB, 4,000 objects")
    ap.add_argument("--out", default=os.path.join(bz.ROOT, "bench-results", "objects.json"))
    ap.add_argument("--build", default=bz.BUILD, help="the build dir (vineyardfs, vybench)")
    args = ap.parse_args()
    binaries.set_build(args.build)
    if args.big:
        args.objects = 2_000_000
    if args.quick:
        args.runs, args.creates, args.gets, args.gib = 2, 300, 100, 1 / 16
        args.objects, args.chunk = 4000, 1000
    only = [x for x in args.only.split(",") if x]
    for x in only:
        if x not in GROUPS:
            ap.error(f"unknown case {x!r}")
    if os.geteuid() != 0:
        ap.error("run as root (FUSE, tmpfs arenas, strace)")
    args.daemon_opts = f"size=4G,durability={args.durability}"
    return args, only


def main():
    args, only = parse_args()
    # SIGTERM and SIGHUP unwind like Ctrl-C, through every cleanup.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    res = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": bz._cpu(),
                       "loadavg_start": os.getloadavg()},
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "runs": args.runs, "options": {k: v for k, v in vars(args).items()}, "cases": {},
           "notes": []}
    fns = {"create": group_create, "pair": group_pair, "rmdir": group_rmdir,
           "openmap": group_openmap, "meta": lambda *a: python_cases(*a, "meta"),
           "get": lambda *a: python_cases(*a, "get"), "put": group_put, "scale": group_scale,
           "leftover": group_leftover,
           "strace": group_strace}
    t0 = time.perf_counter()
    work = tempfile.mkdtemp(prefix="vyfs-objects-")
    shm = tempfile.mkdtemp(prefix="vyfs-objects-", dir="/dev/shm")
    try:
        for g in GROUPS:
            if g in only:
                print(f"{g}:", flush=True)
                fns[g](args, work, shm, res)
    except KeyboardInterrupt:
        print("interrupted (everything unmounted)", file=sys.stderr)
        return 130
    finally:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C waits for this
        try:
            end_children()
            # Every daemon is stopped by its group; a mount left behind by a failure
            # in between (none expected) is unmounted here, arenas too.
            for name in os.listdir(work):
                for sub, cmd in (("mnt", ["fusermount3", "-u", "-z"]), ("arena", ["umount", "-l"])):
                    p = os.path.join(work, name, sub)
                    if os.path.ismount(p):
                        subprocess.run(cmd + [p], stderr=subprocess.DEVNULL)
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(shm, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old)
    res["seconds"] = time.perf_counter() - t0
    res["machine"]["loadavg_end"] = os.getloadavg()
    bz.save_results(res, args.out)
    print()
    print_table(res)
    png = os.path.splitext(args.out)[0] + ".png"
    if not res["cases"] and "scale" not in res:
        png = "(none: nothing to draw)"
    else:
        chart(res, png)
    m = res["machine"]
    print(f"\n{m['cpus']} CPUs, {m['cpu']}, kernel {m['kernel']}; load average "
          f"{m['loadavg_start'][0]:.1f} at start, {m['loadavg_end'][0]:.1f} at end; "
          f"{res['seconds']:.0f} s")
    print(f"results: {args.out}\nchart:   {png}")


if __name__ == "__main__":
    sys.exit(main())
