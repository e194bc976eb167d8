#!/usr/bin/python3
"""Single-node benchmark of vineyardfs (issue #2 figures), each against tmpfs.

Mounts a fresh instance in a temp dir (size=4G, durability=async), then measures:
  * creating N 1 KiB blobs through new/ (objects/s), against creating the same files
    on tmpfs (/dev/shm);
  * `ls -l objects/` over the N objects, against `ls -l` of the N tmpfs files;
  * remount time with the N objects (daemon start to mount ready), and the first
    `ls objects/` after it;
  * daemon RSS per object at N objects;
  * 1 GiB written with `cp` into new/ and read back with `cmp`, against the same on
    tmpfs, as throughput ratios.
Prints a table and writes JSON (default bench-results/single_node.json).

Usage: sudo tools/bench_single_node.py [--objects N] [--out FILE] [--bin build/vineyardfs]
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def timed(fn, runs=3):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def daemon_pid(mnt):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"vineyardfs") and mnt.encode() in args:
            return int(pid)
    return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def create_files(d, n, payload):
    for i in range(n):
        fd = os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, payload)
        os.close(fd)


def print_table(res, n):
    """The results as a Markdown table (n: the number of objects)."""
    c, l, r, m = res["create_1k"], res["ls_l"], res["remount"], res["rss"]
    print(f"| case | vineyardfs | tmpfs | ratio |")
    print(f"| --- | --- | --- | --- |")
    print(f"| create 1 KiB blobs through new/ ({n}) | {c['vineyardfs_per_s']:,.0f}/s | "
          f"{c['tmpfs_per_s']:,.0f}/s | {c['ratio']:.3f} |")
    print(f"| `ls -l objects/` ({n}) | {l['vineyardfs_s']:.2f} s | {l['tmpfs_s']:.2f} s | "
          f"{l['ratio']:.2f} |")
    print(f"| `cp` 1 GiB into new/ | {res['cp_1g']['vineyardfs_gib_s']:.2f} GiB/s | "
          f"{res['cp_1g']['tmpfs_gib_s']:.2f} GiB/s | {res['cp_1g']['ratio']:.2f} |")
    print(f"| `cmp` 1 GiB from data | {res['cmp_1g']['vineyardfs_gib_s']:.2f} GiB/s | "
          f"{res['cmp_1g']['tmpfs_gib_s']:.2f} GiB/s | {res['cmp_1g']['ratio']:.2f} |")
    print(f"| remount with {n} objects | {r['seconds']:.2f} s (then first ls {r['first_ls_s']:.2f} s) | | |")
    print(f"| daemon RSS per object | {m['per_object_bytes']:.0f} B added "
          f"({m['total_per_object_bytes']:.0f} B total RSS / objects) | | |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", "single_node.json"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "vineyardfs"))
    args = ap.parse_args()
    n = args.objects

    work = tempfile.mkdtemp(prefix="vyfs-bench-")
    mnt, arena, state = (os.path.join(work, d) for d in ("mnt", "arena", "state"))
    os.mkdir(mnt)
    shm = tempfile.mkdtemp(prefix="vyfs-bench-", dir="/dev/shm")
    opts = f"size=4G,arena={arena},state={state},durability=async"
    mount = [args.bin, "vineyard", mnt, "-o", opts]
    res = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                       "host": platform.node()}, "objects": n}
    try:
        subprocess.run(mount, check=True)
        pid = daemon_pid(mnt)
        rss0 = rss_kib(pid)

        payload = b"v" * 1024
        t = time.perf_counter()
        create_files(f"{mnt}/new", n, payload)
        fs_rate = n / (time.perf_counter() - t)
        os.mkdir(f"{shm}/small")
        t = time.perf_counter()
        create_files(f"{shm}/small", n, payload)
        tmpfs_rate = n / (time.perf_counter() - t)
        res["create_1k"] = {"vineyardfs_per_s": fs_rate, "tmpfs_per_s": tmpfs_rate,
                            "ratio": fs_rate / tmpfs_rate}

        time.sleep(1)  # let the async payload writer drain before measuring memory
        rss1 = rss_kib(pid)
        res["rss"] = {"empty_kib": rss0, "at_n_kib": rss1,
                      "per_object_bytes": (rss1 - rss0) * 1024 / n,
                      "total_per_object_bytes": rss1 * 1024 / n}

        ls_fs = timed(lambda: sh(f"ls -l {mnt}/objects > /dev/null"))
        ls_tmp = timed(lambda: sh(f"ls -l {shm}/small > /dev/null"))
        res["ls_l"] = {"vineyardfs_s": ls_fs, "tmpfs_s": ls_tmp, "ratio": ls_tmp / ls_fs}

        sh(f"fusermount3 -u {mnt}")
        while daemon_pid(mnt):
            time.sleep(0.05)
        t = time.perf_counter()
        subprocess.run(mount, check=True)
        remount = time.perf_counter() - t
        t = time.perf_counter()
        count = len(os.listdir(f"{mnt}/objects"))
        first_ls = time.perf_counter() - t
        res["remount"] = {"seconds": remount, "objects_back": count, "first_ls_s": first_ls}

        sh(f"head -c {1 << 30} /dev/urandom > {shm}/src")
        cp_fs = timed(lambda: sh(f"rm -f {mnt}/new/big; cp {shm}/src {mnt}/new/big"), runs=3)
        blob = os.path.basename(os.readlink(f"{mnt}/new/big"))
        cmp_fs = timed(lambda: sh(f"cmp {shm}/src {mnt}/objects/{blob}/data"), runs=3)
        cp_tmp = timed(lambda: sh(f"rm -f {shm}/dst; cp {shm}/src {shm}/dst"), runs=3)
        cmp_tmp = timed(lambda: sh(f"cmp {shm}/src {shm}/dst"), runs=3)
        gib = 1.0
        res["cp_1g"] = {"vineyardfs_gib_s": gib / cp_fs, "tmpfs_gib_s": gib / cp_tmp,
                        "ratio": cp_tmp / cp_fs}
        res["cmp_1g"] = {"vineyardfs_gib_s": gib / cmp_fs, "tmpfs_gib_s": gib / cmp_tmp,
                         "ratio": cmp_tmp / cmp_fs}
    finally:
        subprocess.run(["fusermount3", "-u", "-z", mnt])
        for _ in range(100):
            if not daemon_pid(mnt):
                break
            time.sleep(0.1)
        subprocess.run(["umount", "-l", arena], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    print_table(res, n)
    print(f"results: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
