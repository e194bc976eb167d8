#!/usr/bin/python3
"""The cluster benchmark: three daemons on loopback, the cluster issue's four figures.

Each case mounts its own fresh cluster of three nodes in a temp dir (`-f` daemons,
`instance=1..3`, `listen=`/`peer=` on free 127.0.0.1 ports, every node a peer of
every other, `durability=none`, default heartbeat), and unmounts and frees
everything at exit, also on Ctrl-C:

  latency    node 1 creates persisted metadata objects (`new/<x>.meta.json`), paced at
             --rate per second for --seconds; a separate process polls os.stat() of
             node 2's objects/<id> for each id, learned through a pipe as soon as
             readlink() on node 1 returns. Latency = readlink returned -> stat succeeded
             (CLOCK_MONOTONIC, one machine). p50/p99 over every object of every run.
  sustained  node 1 makes --objects transient 64-byte blobs (--writers vybench
             processes; their rate is the plain create rate, reported for context),
             then containers over them (untimed), then setxattr(user.vineyard.persist)
             on the top container: timed from the setxattr until nodes 2 and 3 both
             count every object in objects.remote; cluster.gaps and snapshots_taken
             must not grow. Shapes: `flat` = one container holding all N (one metadata
             object with N member fields), `tree` = containers of --fanout members
             under one top container.
  fetch      blobs of --gib written on node 1 and persisted; node 2 reads `data` (the
             first read fetches it over ZeroMQ, 4 MiB chunks), against read() of a file
             of the same size on /dev/shm. GB = 10^9 bytes. For context, in the same
             run: filling a new file in node 2's arena tmpfs (fresh memory), the cached
             re-read, and a second fetch into memory that was freed just before (see
             case_fetch: this VM hands freed memory back to its host).
  join       nodes 1 and 2 hold --join-objects persisted objects (made as in
             `sustained`, tree shape); node 3 starts from an empty state: timed from
             starting the daemon until its objects.remote reaches the count; the mount
             (until status.json answers) separately. Node 3 is wiped between runs.

Usage: sudo tools/bench_cluster.py [--runs 3] [--only latency,sustained,fetch,join]
           [--rate 1000] [--seconds 5] [--objects 50000] [--shapes flat,tree]
           [--fanout 1000] [--writers 4] [--gib 1] [--settle 3] [--join-objects 100000]
           [--out bench-results/cluster.json]
"""
import argparse
import os
import platform
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_zero_copy as bz  # noqa: E402  (vybench, status, save_results, wait_until)
from bench.cluster_fetch import case_fetch, case_join  # noqa: E402
from bench.cluster_latency import case_latency, case_sustained, fmt_s  # noqa: E402
from bench.cluster_nodes import CASES  # noqa: E402


def verdict(ok):
    return "met" if ok else "not met"


def print_table(res):
    c = res["cases"]
    print("| figure | result | target |")
    print("| --- | --- | --- |")
    if "latency" in c:
        lat = c["latency"]
        print(f"| replication latency at {lat['rate']:,} persisted objects/s, node 1 -> node 2 "
              f"(create returned -> stat succeeds), {len(lat['runs'])} x {lat['seconds']:g} s | "
              f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
              f"(max {lat['max_ms']:.1f} ms; "
              f"{lat['achieved_per_s']:,.0f} creates/s achieved, {lat['missing']} missing) | "
              f"p50 <= 2 ms, p99 <= 10 ms: "
              f"{verdict(lat['p50_ms'] <= 2 and lat['p99_ms'] <= 10 and not lat['missing'])} |")
    if "sustained" in c:
        s = c["sustained"]
        for shape, v in s["shapes"].items():
            what = (f"one container of {s['objects']:,}" if shape == "flat" else
                    f"containers of {s['fanout']:,} under one")
            rate = v["per_s_per_peer"]
            ok = rate is not None and rate >= 10000 and v["gaps"] == 0 and v["snapshots_taken"] == 0
            print(f"| sustained replication to 2 peers, persisting {v['count']:,} objects at once "
                  f"({what}; setxattr -> both peers have all) | "
                  f"{bz.fmt(rate) if rate else 'timed out'} objects/s per peer (setxattr "
                  f"{v['setxattr_s']:.2f} s), gaps {v['gaps']}, snapshots {v['snapshots_taken']} | "
                  f">= 10,000/s, no gaps: {verdict(ok)} |")
        print(f"| create 64 B blobs on node 1, {s['writers']} writer processes (context) | "
              f"{bz.fmt(s['create_per_s'])} objects/s | |")
    if "fetch" in c:
        f = c["fetch"]
        print(f"| remote fetch of a {f['bytes'] / (1 << 30):g} GiB blob, node 2 reads node 1's "
              f"(cold read = fetch), reserve={f['reserve'] / (1 << 30):g} GiB | {f['cold_gbs']:.2f} GB/s; /dev/shm read "
              f"{f['dev_shm_gbs']:.2f} GB/s, "
              f"ratio {f['ratio']:.2f} | >= 1 GB/s: {verdict(f['cold_gbs'] >= 1)} |")
        fills = " / ".join(f"{r['fill_gbs']:.2f}" for r in f["runs"])
        print(f"| context: the same fetch into memory freed just before; the cached re-read; "
              f"filling a new {f['bytes'] / (1 << 30):g} GiB file in node 2's arena tmpfs "
              f"just before the cold fetch, per run | {f['reused_gbs']:.2f} GB/s; "
              f"{f['warm_gbs']:.2f} GB/s; {fills} GB/s | |")
    if "join" in c:
        j = c["join"]
        ok = j["join_s"] is not None and j["join_s"] <= 3
        print(f"| join: node 3 starts empty beside {j['objects']:,} persisted objects "
              f"(daemon start -> objects.remote complete) | "
              f"{fmt_s(j['join_s'])} (mount {j['mount_s']:.3f} s) | <= 3 s: {verdict(ok)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(CASES), help="comma-separated: " + ",".join(CASES))
    ap.add_argument("--rate", type=int, default=1000, help="latency: creates per second")
    ap.add_argument("--seconds", type=float, default=5, help="latency: seconds per run")
    ap.add_argument("--poll-us", type=int, default=100,
                    help="latency: the observer's pause between stat() sweeps while ids "
                    "are outstanding")
    ap.add_argument("--objects", type=int, default=50_000, help="sustained: objects per persist")
    ap.add_argument("--shapes", default="flat,tree", help="sustained: flat, tree or both")
    ap.add_argument("--fanout", type=int, default=1000, help="tree shape: members per container")
    ap.add_argument("--writers", type=int, default=4, help="processes creating the blobs")
    ap.add_argument("--gib", type=float, default=1.0, help="fetch: blob size")
    ap.add_argument("--reserve", type=float, default=None,
                    help="fetch: reserve= of every node in GiB (default: --gib; 0: none)")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="fetch: seconds before the cold fetch (freed memory returns to the host)")
    ap.add_argument("--join-objects", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=120, help="per wait for replication")
    ap.add_argument("--out", default=os.path.join(bz.ROOT, "bench-results", "cluster.json"))
    args = ap.parse_args()
    only = [x for x in args.only.split(",") if x]
    for x in only:
        if x not in CASES:
            ap.error(f"unknown case {x!r}")
    if os.geteuid() != 0:
        ap.error("run as root (FUSE, tmpfs arenas)")
    # SIGTERM and SIGHUP unwind like Ctrl-C, through every cleanup.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    res = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": bz._cpu()},
           "runs": args.runs, "options": vars(args), "cases": {}}
    fns = {"latency": case_latency, "sustained": case_sustained, "fetch": case_fetch,
           "join": case_join}
    t0 = time.perf_counter()
    try:
        for case in CASES:
            if case in only:
                print(f"{case}:", flush=True)
                res["cases"][case] = fns[case](args)
    except KeyboardInterrupt:
        print("interrupted (everything unmounted)", file=sys.stderr)
        return 130
    res["seconds"] = time.perf_counter() - t0
    bz.save_results(res, args.out)
    print()
    print_table(res)
    print(f"\n{res['machine']['cpus']} CPUs, {res['machine']['cpu']}, kernel "
          f"{res['machine']['kernel']}; {res['seconds']:.0f} s")
    print("results:", args.out)


if __name__ == "__main__":
    sys.exit(main())
