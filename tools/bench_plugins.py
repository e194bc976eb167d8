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

Usage: sudo tools/bench_plugins.py [--runs 5] [--gib 1] [--out bench-results/plugins.json]
"""
import argparse
import os
import platform
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
    ap.add_argument("--out", default=os.path.join(bz.ROOT, "bench-results", "plugins.json"))
    args = ap.parse_args()
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

    v = cases
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
    bz.save_results(res, args.out)
    print("results:", args.out)


if __name__ == "__main__":
    main()
