#!/usr/bin/python3
"""The Python client benchmark (issue #5): client.get and client.put against numpy.

Mounts a fresh instance (defaults, but durability=none so that no write-behind
to RocksDB competes for the 2 CPUs) in a temp dir and measures, in this process:

  get_1g, get_1m  client.get(id) of a 1 GiB and a 1 MiB float64 tensor (metadata
                  read, locality xattr, open + mmap of the buffer, ndarray over
                  it), the array dropped after each call; median over --gets calls,
                  the two sizes interleaved
  put             client.put(array) of a 1 GiB float64 array, until the Tensor
                  exists -- against array.tofile() into a /dev/shm file, both
                  timed from the call to its return, runs alternating, medians

Usage: sudo tools/bench_python.py [--runs 5] [--gets 300] [--out bench-results/python.json]
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_zero_copy as bz  # noqa: E402  (mount and timing helpers)

sys.path.insert(0, os.path.join(bz.ROOT, "python"))
import numpy as np  # noqa: E402
import vineyardfs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gets", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(bz.ROOT, "bench-results", "python.json"))
    args = ap.parse_args()
    gib = 1 << 30
    work = tempfile.mkdtemp(prefix="vyfs-py-")
    shm = tempfile.mkdtemp(prefix="vyfs-py-", dir="/dev/shm")
    res = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": bz._cpu()},
           "runs": args.runs, "gets": args.gets, "cases": {}}
    inst = None
    try:
        inst = bz.Instance(work, "py", "size=4G,durability=none")
        client = vineyardfs.connect(inst.mnt)
        big = np.frombuffer(np.random.default_rng(1).bytes(gib), dtype=np.float64)
        small = big[: (1 << 20) // 8].copy()

        ids = {"get_1g": client.put(big), "get_1m": client.put(small)}
        times = {k: [] for k in ids}
        for i in range(args.gets):
            for case in (ids if i % 2 == 0 else list(reversed(list(ids)))):
                t0 = time.perf_counter()
                value = client.get(ids[case])
                times[case].append(time.perf_counter() - t0)
                assert value.shape[0] * 8 == (gib if case == "get_1g" else 1 << 20)
                del value
        for case, ts in times.items():
            res["cases"][case] = {"unit": "us", "median": statistics.median(ts) * 1e6,
                                  "p90": statistics.quantiles(ts, n=10)[-1] * 1e6}
        np.testing.assert_array_equal(client.get(ids["get_1g"])[-1000:], big[-1000:])
        client.delete(list(ids.values()))

        def put(target):
            if target == "tofile":
                path = os.path.join(shm, "a.bin")
                t0 = time.perf_counter()
                big.tofile(path)
                seconds = time.perf_counter() - t0
                os.unlink(path)
            else:
                t0 = time.perf_counter()
                object_id = client.put(big)
                seconds = time.perf_counter() - t0
                client.delete(object_id)
            bz.wait_until(lambda: bz.status(inst.mnt)["arena"]["huge_pending"] == 0)
            return gib / seconds / gib
        res["cases"]["put"] = {"unit": "GiB/s", "values":
                               bz.median_runs(args.runs, ["put", "tofile"], put)}
    finally:
        if inst:
            inst.stop()
        subprocess.run(["rm", "-rf", shm, work])

    c = res["cases"]
    res["ratios"] = {"get_1g_over_1m": c["get_1g"]["median"] / c["get_1m"]["median"],
                     "put": c["put"]["values"]["put"] / c["put"]["values"]["tofile"]}
    print(f"{'case':<8} {'result':>26} {'target':>22}")
    print(f"{'get 1G':<8} {c['get_1g']['median']:>10.0f} us median (p90 {c['get_1g']['p90']:.0f})"
          f" {'<= 1000 us':>22}")
    print(f"{'get 1M':<8} {c['get_1m']['median']:>10.0f} us median (p90 {c['get_1m']['p90']:.0f})"
          f" {'1G within 2x of 1M':>22}  ratio {res['ratios']['get_1g_over_1m']:.2f}")
    v = c["put"]["values"]
    print(f"{'put 1G':<8} {v['put']:>7.2f} vs tofile {v['tofile']:.2f} GiB/s = "
          f"{res['ratios']['put']:.2f} {'>= 0.80':>14}")
    bz.save_results(res, args.out)
    print("results:", args.out)


if __name__ == "__main__":
    main()
