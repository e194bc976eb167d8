#!/usr/bin/python3
"""The plugin benchmark (issue #4): .npy views and the .npy builder against tmpfs.

Mounts a fresh instance (passthrough as the default path, durability=none) in a temp
dir and measures, alternating targets within each run, several runs, medians:

  view_cold   read() of a 1 GiB tensor's views/tensor.npy, its page cache dropped,
              1 MiB reads -- against reading the same .npy file on tmpfs (/dev/shm)
  view_warm   the same read again with the view in the page cache
  build       writing a 1 GiB .npy into new/ until close() returns (the numpy
              builder makes a Tensor) -- against writing the same bytes without the
              .npy header into new/ (a plain blob), both with 1 MiB writes from an
              mmap of a /dev/shm file

With --only arrow (issue #16), the arrow plugin instead, every value kept (median,
min, max of the runs; bench-results/arrow.json):

  arrow_view_cold  read() of views/dataframe.arrow of a DataFrame of one 1 GiB float64
                   column, page cache dropped -- against views/tensor.npy of the same
                   column's Tensor (the same bytes through the same stitched path)
  arrow_view_warm  the same, both views in the page cache
  arrow_build      writing a 1 GiB Arrow file (that dataframe.arrow, copied to /dev/shm)
                   into new/ until close() (the arrow builder makes a DataFrame) --
                   against writing the same number of bytes as a plain blob

Usage: sudo tools/bench_plugins.py [--runs 5] [--gib 1] [--only npy|arrow]
                                   [--out bench-results/plugins.json]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_zero_copy as bz  # noqa: E402  (shares the mount and timing helpers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--reserve", type=float, default=None,
                    help="reserve= in GiB (default: --gib; 0: none)")
    ap.add_argument("--only", choices=("npy", "arrow"), default="npy")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.only == "arrow":
        return arrow_main(args)
    args.out = args.out or os.path.join(bz.ROOT, "bench-results", "plugins.json")
    size = int(args.gib * (1 << 30)) // 8 * 8
    reserve = int((args.gib if args.reserve is None else args.reserve) * (1 << 30))
    work = tempfile.mkdtemp(prefix="vyfs-pl-")
    shm = tempfile.mkdtemp(prefix="vyfs-pl-", dir="/dev/shm")
    res = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": bz._cpu()},
           "runs": args.runs, "bytes": size, "reserve": reserve, "cases": {}}
    inst = None
    try:
        inst = bz.Instance(work, "pl", f"size={4 * size + (512 << 20)},durability=none,reserve={reserve}")
        npy, raw = f"{shm}/a.npy", f"{shm}/raw"
        subprocess.run([bz.PY, "-c",
                        "import sys, numpy as np\n"
                        "a = np.frombuffer(np.random.default_rng(1).bytes(%d), dtype=np.float64)\n"
                        "np.save(sys.argv[1], a)\n"
                        "a.tofile(sys.argv[2])\n" % size, npy, raw], check=True)
        subprocess.run(["cp", npy, f"{inst.mnt}/new/t.npy"], check=True)
        tid = os.path.basename(os.readlink(f"{inst.mnt}/new/t.npy"))
        view = f"{inst.mnt}/objects/{tid}/views/tensor.npy"
        assert os.stat(view).st_size == os.stat(npy).st_size
        bz.wait_until(lambda: bz.status(inst.mnt)["arena"]["huge_pending"] == 0)
        files = {"view": view, "tmpfs": npy}
        cases = res["cases"]

        def read(t, cold):
            if cold and t == "view":
                bz.vybench("dropcache", files[t])
            return size / bz.vybench("read", files[t])["seconds"] / (1 << 30)
        cases["view_cold"] = {"unit": "GiB/s", "higher": True, "values":
                              bz.median_runs(args.runs, list(files), lambda t: read(t, True))}
        bz.vybench("read", view)
        cases["view_warm"] = {"unit": "GiB/s", "higher": True, "values":
                              bz.median_runs(args.runs, list(files), lambda t: read(t, False))}

        counter = [0]

        def settled(a):  # no collapse running, the reserve written
            return a["huge_pending"] == 0 and a["reserve_ready"] == a["reserve"]

        def build(t):
            counter[0] += 1
            name = f"{inst.mnt}/new/b{counter[0]}" + (".npy" if t == "tensor" else "")
            out = bz.vybench("copy", npy if t == "tensor" else raw, name)
            assert out["sealed"], out
            oid = os.path.basename(os.readlink(name))
            os.unlink(name)
            os.rmdir(f"{inst.mnt}/objects/{oid}")  # keep the arena from filling up
            bz.wait_until(lambda: settled(bz.status(inst.mnt)["arena"]))
            return size / out["seconds"] / (1 << 30)
        cases["build"] = {"unit": "GiB/s", "higher": True,
                          "values": bz.median_runs(args.runs, ["tensor", "blob"], build)}
    finally:
        if inst:
            inst.stop()
        subprocess.run(["rm", "-rf", shm, work])

    npy_report(res, args.out)


def npy_report(res, out):
    """The npy cases' ratios to their baselines: printed, and saved with `res` to `out`."""
    v = res["cases"]
    res["ratios"] = {
        "view_cold": v["view_cold"]["values"]["view"] / v["view_cold"]["values"]["tmpfs"],
        "view_warm": v["view_warm"]["values"]["view"] / v["view_warm"]["values"]["tmpfs"],
        "build": v["build"]["values"]["tensor"] / v["build"]["values"]["blob"],
    }
    targets = {"view_cold": 0.40, "view_warm": 0.9, "build": 0.8}
    print(f"{'case':<10} {'vineyardfs':>12} {'baseline':>12} {'ratio':>7} {'target':>7}")
    for case, base in (("view_cold", "tmpfs"), ("view_warm", "tmpfs"), ("build", "blob")):
        vals = v[case]["values"]
        mine = vals["view" if case != "build" else "tensor"]
        print(f"{case:<10} {mine:>8.2f} GiB/s {vals[base]:>6.2f} GiB/s "
              f"{res['ratios'][case]:>7.2f} {targets[case]:>7.2f}")
    bz.save_results(res, out)
    print("results:", out)


def runs_of(runs, targets, fn):
    """fn(target) -> value, targets alternating order run by run; every value kept."""
    values = {t: [] for t in targets}
    for r in range(runs):
        for t in (targets if r % 2 == 0 else list(reversed(targets))):
            values[t].append(fn(t))
    return {t: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
            for t, v in values.items()}


def arrow_main(args):
    out_path = args.out or os.path.join(bz.ROOT, "bench-results", "arrow.json")
    size = int(args.gib * (1 << 30)) // 8 * 8
    reserve = int((args.gib if args.reserve is None else args.reserve) * (1 << 30))
    work = tempfile.mkdtemp(prefix="vyfs-ar-")
    shm = tempfile.mkdtemp(prefix="vyfs-ar-", dir="/dev/shm")
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    res = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": bz._cpu(),
                       "loadavg_at_start": load},
           "runs": args.runs, "bytes": size, "reserve": reserve, "cases": {}}
    inst = None
    try:
        inst = bz.Instance(work, "ar",
                           f"size={4 * size + (512 << 20)},durability=none,reserve={reserve}")
        npy, raw, arrow = f"{shm}/a.npy", f"{shm}/raw", f"{shm}/a.arrow"
        subprocess.run([bz.PY, "-c",
                        "import sys, numpy as np\n"
                        "a = np.frombuffer(np.random.default_rng(1).bytes(%d), dtype=np.float64)\n"
                        "np.save(sys.argv[1], a)\n" % size, npy], check=True)
        subprocess.run(["cp", npy, f"{inst.mnt}/new/t.npy"], check=True)
        tid = os.path.basename(os.readlink(f"{inst.mnt}/new/t.npy"))
        df = {"typename": "vineyard::DataFrame", "columns_": '["x"]', "__values_-size": 1,
              "__values_-key-0": '"x"', "__values_-value-0": {"id": tid},
              "partition_index_row_": 0, "partition_index_column_": 0, "row_batch_index_": 0}
        with open(f"{inst.mnt}/new/df.meta.json", "w") as f:
            json.dump(df, f)
        did = os.path.basename(os.readlink(f"{inst.mnt}/new/df.meta.json"))
        files = {"arrow": f"{inst.mnt}/objects/{did}/views/dataframe.arrow",
                 "npy": f"{inst.mnt}/objects/{tid}/views/tensor.npy"}
        subprocess.run(["cp", files["arrow"], arrow], check=True)
        # The blob baseline: the same bytes, without the ARROW1 magic that would claim them.
        subprocess.run(["cp", arrow, raw], check=True)
        with open(raw, "r+b") as f:
            f.write(b"\0" * 8)
        bz.wait_until(lambda: bz.status(inst.mnt)["arena"]["huge_pending"] == 0)
        cases = res["cases"]

        def read(t, cold):
            if cold:
                bz.vybench("dropcache", files[t])
            return os.stat(files[t]).st_size / bz.vybench("read", files[t])["seconds"] / (1 << 30)
        cases["arrow_view_cold"] = runs_of(args.runs, list(files), lambda t: read(t, True))
        for t in files:
            bz.vybench("read", files[t])
        cases["arrow_view_warm"] = runs_of(args.runs, list(files), lambda t: read(t, False))

        counter = [0]

        def settled(a):
            return a["huge_pending"] == 0 and a["reserve_ready"] == a["reserve"]

        def build(t):
            counter[0] += 1
            name = f"{inst.mnt}/new/b{counter[0]}" + (".arrow" if t == "arrow" else "")
            out = bz.vybench("copy", arrow if t == "arrow" else raw, name)
            assert out["sealed"], out
            oid = os.path.basename(os.readlink(name))
            os.unlink(name)
            with open(f"{inst.mnt}/objects/{oid}/meta.json") as f:
                meta = json.load(f)
            if t == "arrow":
                assert meta["typename"] == "vineyard::DataFrame", meta["typename"]
            os.rmdir(f"{inst.mnt}/objects/{oid}")  # its transient members go with it
            assert not os.path.exists(f"{inst.mnt}/objects/{oid}")
            bz.wait_until(lambda: settled(bz.status(inst.mnt)["arena"]))
            return os.stat(arrow).st_size / out["seconds"] / (1 << 30)
        cases["arrow_build"] = runs_of(args.runs, ["arrow", "blob"], build)
    finally:
        if inst:
            inst.stop()
        subprocess.run(["rm", "-rf", shm, work])

    arrow_report(res, out_path)



def arrow_report(res, out_path):
    """The arrow cases' ratios to their baselines: printed, and saved with `res`."""
    v = res["cases"]
    res["ratios"] = {
        "arrow_view_cold": v["arrow_view_cold"]["arrow"]["median"] / v["arrow_view_cold"]["npy"]["median"],
        "arrow_view_warm": v["arrow_view_warm"]["arrow"]["median"] / v["arrow_view_warm"]["npy"]["median"],
        "arrow_build": v["arrow_build"]["arrow"]["median"] / v["arrow_build"]["blob"]["median"],
    }
    targets = {"arrow_view_cold": 1.0, "arrow_view_warm": 0.9, "arrow_build": 0.7}
    print(f"{'case':<16} {'arrow (min-max)':>24} {'baseline (min-max)':>24} {'ratio':>6} {'target':>6}")
    for case, mine, base in (("arrow_view_cold", "arrow", "npy"),
                             ("arrow_view_warm", "arrow", "npy"),
                             ("arrow_build", "arrow", "blob")):
        a, b = v[case][mine], v[case][base]
        print(f"{case:<16} {a['median']:>6.2f} ({a['min']:.2f}-{a['max']:.2f}) GiB/s "
              f"{b['median']:>6.2f} ({b['min']:.2f}-{b['max']:.2f}) GiB/s "
              f"{res['ratios'][case]:>6.2f} {targets[case]:>6.2f}")
    bz.save_results(res, out_path)
    print("results:", out_path)


if __name__ == "__main__":
    main()
