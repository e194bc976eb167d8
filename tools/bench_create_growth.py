#!/usr/bin/python3
"""Create rate and daemon CPU per thread on a store of N objects (issue 17 item 3: is a
create slower on a big store?). A fresh daemon (durability=async, size=12G); with N > 0
it is stopped, build/vyfill adds N blobs of 1 KiB (10,000 per commit), and it is started
again; 5 s idle (the CPU each thread used meanwhile: RocksDB compaction would show), then
6 chunks of 5,000 creates through new/ (one writer), each with its rate and the CPU per
create of the busiest threads (schedstat, ns), by thread name:tid.

    /usr/bin/python3 tools/bench_create_growth.py N [build dir]
"""
import collections
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT + "/tools")
sys.path.insert(0, ROOT + "/python")
from bench import binaries  # noqa: E402
from bench.objects_fs import started_daemon, writers  # noqa: E402
from bench.threads import threads  # noqa: E402


def diff(a, b, n):
    """CPU per operation (us) of the 8 busiest threads between two `threads` readings."""
    g = collections.Counter()
    for t, (name, ns, _) in b.items():
        g[name + ":" + t] += ns - a.get(t, (name, 0, 0))[1]
    return {c: round(v / n / 1000, 1) for c, v in g.most_common(8)}


def main():
    N = int(sys.argv[1])
    binaries.set_build(sys.argv[2] if len(sys.argv) > 2 else ROOT + "/build")
    work, payload, d = started_daemon("grow-", "size=12G,durability=async")
    try:
        new = os.path.join(d.mnt, "new")
        if N:
            d.stop(keep_arena=True)
            r = subprocess.run([binaries.VYFILL, d.arena, d.state, str(N), "1024", str(12 << 30),
                                "async", "10000"], capture_output=True, text=True)
            print("vyfill", r.stdout.strip(), flush=True)
            print("mount s", d.start(), flush=True)
        t_idle = threads(d.pid)
        time.sleep(5)
        idle = diff(t_idle, threads(d.pid), 1000)  # us per 1,000 = ms
        print("idle 5 s, ms of CPU:", idle, flush=True)
        for i in range(6):
            a = threads(d.pid)
            rate, _ = writers(new, 5000, 1, payload, f"c{i}", ".blob")
            b = threads(d.pid)
            print(f"chunk {i}: {rate:.0f}/s", diff(a, b, 5000), flush=True)
    finally:
        d.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
