#!/usr/bin/python3
"""Where the daemon's CPU goes in the seal of a `put` (issue 17): the phases the
daemon logs with -d, per put, for one or more builds side by side.

For each build (--build, repeatable; default build/), a fresh daemon is mounted with
-d in a temp dir (size=4G, durability=async, the arena and state in the temp dir);
it takes --puts puts of each value (after --warm unmeasured ones), then is unmounted.
With several builds, rounds alternate them (--rounds), so that the machine's load
falls on all alike. Per put it reads the seal's log lines:

  batch of N entries: read+parse P us
  batch of N entries (M blobs): blob files B us, records R us, drop upload D us

(thread CPU time of the request thread, which the load inflates much less than wall
time), and also the put's wall time and the client's CPU (time.process_time). The
report is the median (min-max) of each per build and value, and the load average.

The values are those of tools/bench_objects.py's put group: a list of 1,000 float64
arrays of 1 KiB (2,001 objects) and a 1,000-column DataFrame of 1 KiB columns.

Also per put: the daemon's CPU (all threads, /proc, 10 ms ticks) from the put's start
until the durable writer is done with it, so the writer's copy counts. --perf / --strace
attach `perf record -g` / `strace -c -f` to each daemon (FILE.<round>.<build>).

Usage: tools/bench_put_phases.py [--build build] [--build other/build] [--rounds 3]
           [--puts 7] [--warm 2] [--perf FILE] [--strace FILE] [--out results.json]
(as root)
Every mount it makes is unmounted (also on Ctrl-C), and the arena tmpfs with it; it
ends only the daemons it started, by pid.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import numpy as np  # noqa: E402
import vineyardfs  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools"))
from bench import binaries  # noqa: E402
from bench.objects_daemon import Daemon as BenchDaemon  # noqa: E402

PARSE = re.compile(r"batch of (\d+) entries: read\+parse (\d+) us")
SEAL = re.compile(r"batch of (\d+) entries \((\d+) blobs\): blob files (\d+) us, "
                  r"records (\d+) us, drop upload (\d+) us")


class Daemon(BenchDaemon):
    """bench_objects.py's daemon, run with -d (the seal's phase lines in its log)."""

    def __init__(self, build, work):
        binaries.set_build(build)
        super().__init__(work, "daemon", "size=4G,durability=async", flags=["-d"])
        self.tools = []

    def log_size(self):
        return os.path.getsize(self.log)

    def phases_since(self, offset):
        with open(self.log, errors="replace") as f:
            f.seek(offset)
            text = f.read()
        p = [int(m.group(2)) for m in PARSE.finditer(text)]
        s = [m.groups() for m in SEAL.finditer(text)]
        if len(p) != 1 or len(s) != 1:
            raise RuntimeError(f"expected one batch seal in the log, got {len(p)}/{len(s)}")
        return {"read_parse_us": p[0], "blob_files_us": int(s[0][2]),
                "records_us": int(s[0][3]), "drop_upload_us": int(s[0][4]),
                "entries": int(s[0][0])}

    def attach(self, tool, path):
        """perf record -g / strace -c -f on the daemon until stop()."""
        cmd = {"perf": ["perf", "record", "-g", "-o", path, "-p", str(self.pid)],
               "strace": ["strace", "-c", "-f", "-o", path, "-p", str(self.pid)]}[tool]
        self.tools.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        time.sleep(1)  # attached before the first put

    def stop(self):
        for t in self.tools:
            t.send_signal(signal.SIGINT)
            t.wait()
        self.tools = []
        super().stop()


def values():
    rng = np.random.default_rng(7)
    out = {"list": [rng.random(128) for _ in range(1000)]}
    try:
        import pandas as pd
        out["df"] = pd.DataFrame({f"c{i}": rng.random(128) for i in range(1000)})
    except ImportError:
        pass
    return out


def one_round(build, work, vals, args, res, tag):
    d = Daemon(build, work)
    try:
        d.start()
        for tool in ("perf", "strace"):
            if getattr(args, tool):
                d.attach(tool, f"{getattr(args, tool)}.{tag}")
        client = vineyardfs.connect(d.mnt)
        for name, value in vals.items():
            for k in range(args.warm + args.puts):
                d.quiet()
                off = d.log_size()
                d0, t0, c0 = d.cpu_s(), time.perf_counter(), time.process_time()
                client.put(value)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                d.quiet()  # the durable writer's copy of this put counts too
                daemon = (d.cpu_s() - d0) * 1e3
                time.sleep(0.05)  # the log line of the seal is written before put() returns
                ph = d.phases_since(off)
                if k < args.warm:
                    continue
                ph.update(wall_ms=wall * 1e3, client_cpu_ms=cpu * 1e3, daemon_cpu_ms=daemon)
                res.setdefault(build, {}).setdefault(name, []).append(ph)
    finally:
        d.stop()


def summary(rows, key):
    v = [r[key] for r in rows]
    return statistics.median(v), min(v), max(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", help="a build directory (repeatable)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--puts", type=int, default=7)
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--perf", metavar="FILE", help="perf record -g of each daemon")
    ap.add_argument("--strace", metavar="FILE", help="strace -c -f of each daemon")
    ap.add_argument("--out")
    args = ap.parse_args()
    builds = [os.path.abspath(b) for b in (args.build or [os.path.join(ROOT, "build")])]
    if os.geteuid() != 0:
        ap.error("run as root (FUSE, tmpfs arenas)")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    vals = values()
    res, load = {}, [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="vy_put_phases.") as tmp:
        for r in range(args.rounds):
            for i, b in enumerate(builds):
                one_round(b, os.path.join(tmp, f"r{r}b{i}"), vals, args, res, f"{r}.{i}")
                load.append(os.getloadavg()[0])
    keys = ("read_parse_us", "blob_files_us", "records_us", "wall_ms", "client_cpu_ms",
            "daemon_cpu_ms")
    print(f"load average (1 min) {min(load):.1f}-{max(load):.1f}; "
          f"{args.rounds} rounds x {args.puts} puts; median (min-max)")
    for b in builds:
        for name, rows in res[b].items():
            cells = ", ".join("%s %.0f (%.0f-%.0f)" % ((k,) + summary(rows, k)) for k in keys)
            print(f"{b} {name}: {cells}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"load": load, "builds": res}, f, indent=1)


if __name__ == "__main__":
    main()
