#!/usr/bin/python3
"""Daemon CPU and context switches per create of a 1 KiB blob through new/ (what
tools/bench_objects.py --only create times), read from every daemon thread's
/proc/<pid>/task/<tid>/schedstat (ns, not the 10 ms ticks of /proc/<pid>/stat) and
status (voluntary + involuntary switches) before and after the creates.

    /usr/bin/python3 tools/bench_create_threads.py <build dir> [creates] [perf.data]

A fresh daemon (durability=async, size=4G) in a temp dir; 1,000 creates warm it; with a
third argument, `perf record -g` of the daemon over the measured creates. Threads that
exit during the run are not counted (the same on both sides of an A/B)."""
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "python"))
from bench import binaries  # noqa: E402
from bench.objects_fs import started_daemon, writers  # noqa: E402
from bench.threads import threads  # noqa: E402


def main():
    build = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    perf = sys.argv[3] if len(sys.argv) > 3 else ""
    binaries.set_build(build)
    work, payload, d = started_daemon("bench-create-threads-", "size=4G,durability=async")
    try:
        new = os.path.join(d.mnt, "new")
        writers(new, 1000, 1, payload, "warm", ".blob")
        d.quiet()
        a = threads(d.pid)
        rec = None
        if perf:
            rec = subprocess.Popen(["perf", "record", "-g", "-o", perf, "-p", str(d.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        rate, _ = writers(new, n, 1, payload, "m", ".blob")
        d.quiet()  # the durable writer's copies are part of the cost
        b = threads(d.pid)
        if rec:
            rec.send_signal(2)
            rec.wait()
        ns = sum(v[1] - a.get(t, ("", 0, 0))[1] for t, v in b.items())
        sw = sum(v[2] - a.get(t, ("", 0, 0))[2] for t, v in b.items())
        busy = sum(1 for t, v in b.items() if v[1] - a.get(t, ("", 0, 0))[1] > 0)
        print(f"rate {rate:.0f}/s  daemon CPU {ns / n / 1000:.1f} us/create  "
              f"context switches {sw / n:.2f}/create  threads that ran {busy}  "
              f"load {os.getloadavg()[0]:.1f}")
    finally:
        d.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
