#!/usr/bin/python3
"""The zero-copy benchmark suite (issue #3): vineyardfs against tmpfs, in one run.

Mounts two fresh instances in a temp dir -- one with FUSE passthrough (the default
path as root) and one with passthrough=off (the cached fallback) -- and runs every case
against the same operation on a file in the arena's own tmpfs and on a /dev/shm file.
Targets alternate within each run, several runs, medians. Prints a table, writes JSON
and draws a PNG chart of the ratios to /dev/shm.

Cases:
  read      read() of a 1 GiB blob, cold (the fallback's page cache dropped first), 1 MiB reads
  memmap    numpy.memmap(...).sum() over a 1 GiB blob, cold
  write     writing 1 GiB into new/ with 1 MiB writes, until sealed
  cache     page-cache growth (MiB) after reading a 1 GiB blob
  openmap   open + mmap + munmap + close of a blob's data, 1 MiB and 1 GiB (median us)
  stat      stat() of 100k objects' data, warm (tmpfs: 100k dirs each with a data file)
  ls        `ls -l` of 100k objects, warm (and readdir + lstat, without ls's xattr calls)
  create    creating 1 KiB blobs through new/ (objects/s)

Usage: sudo tools/bench_zero_copy.py [--runs 5] [--objects 100000] [--gib 1]
                                    [--out bench-results/zero_copy.json]
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
BUILD = os.path.join(ROOT, "build")
PY = "/usr/bin/python3"
MEMMAP_SUM = ("import sys, time, numpy as np\n"
              "t = time.perf_counter()\n"
              "s = np.memmap(sys.argv[1], dtype=np.uint64, mode='r').sum()\n"
              "print(time.perf_counter() - t)\n")


def vybench(*args):
    out = subprocess.run([os.path.join(BUILD, "vybench"), *map(str, args)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def page_cache_mib():
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            info[k] = int(v.split()[0])
    return (info["Cached"] - info["Shmem"]) / 1024.0


def status(mnt):
    with open(f"{mnt}/status.json") as f:
        return json.load(f)


def save_results(res, path):
    """Writes a benchmark's results as JSON (bench-results/<name>.json)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(res, f, indent=2)


def wait_until(pred, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


class Instance:
    def __init__(self, work, name, opts):
        self.dir = os.path.join(work, name)
        self.mnt, self.arena, self.state = (os.path.join(self.dir, d) for d in ("mnt", "arena", "state"))
        os.makedirs(self.mnt)
        subprocess.run([os.path.join(BUILD, "vineyardfs"), "vineyard", self.mnt, "-o",
                        f"arena={self.arena},state={self.state},{opts}"], check=True,
                       stderr=subprocess.DEVNULL)

    def put(self, src, name):
        shutil.copyfile(src, f"{self.mnt}/new/{name}")
        oid = os.path.basename(os.readlink(f"{self.mnt}/new/{name}"))
        os.unlink(f"{self.mnt}/new/{name}")
        return f"{self.mnt}/objects/{oid}/data"

    def stop(self):
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], stderr=subprocess.DEVNULL)
        for _ in range(300):  # the daemon exits after the unmount
            if not any(self.mnt.encode() in open(f"/proc/{p}/cmdline", "rb").read()
                       for p in os.listdir("/proc") if p.isdigit() and _alive(p)):
                break
            time.sleep(0.1)
        subprocess.run(["umount", "-l", self.arena], stderr=subprocess.DEVNULL)


def unmount_and_reap(proc, mnt, timeout):
    """Unmounts `mnt` lazily and waits up to `timeout` s for its daemon `proc` (which exits
    after the unmount); then SIGTERM, and SIGKILL after a third of `timeout` more."""
    subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=timeout / 3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _alive(pid):
    try:
        open(f"/proc/{pid}/cmdline", "rb").close()
        return True
    except OSError:
        return False


def median_runs(runs, targets, fn):
    """fn(target) -> value; targets alternate order each run; returns medians."""
    values = {t: [] for t in targets}
    for r in range(runs):
        order = targets if r % 2 == 0 else list(reversed(targets))
        for t in order:
            values[t].append(fn(t))
    return {t: statistics.median(v) for t, v in values.items()}


def io_cases(args, pt, fb, work, shm, size, res):
    """The payload cases (read, memmap, cache, write, openmap) of the two instances, the
    arena tmpfs and /dev/shm, and the huge page policy's memory, into `res`."""
    src = f"{shm}/src"
    subprocess.run(f"head -c {size} /dev/urandom > {src}", shell=True, check=True)
    files = {"passthrough": pt.put(src, "big"), "fallback": fb.put(src, "big"),
             "arena_tmpfs": f"{pt.arena}/bench-baseline", "dev_shm": f"{shm}/baseline"}
    shutil.copyfile(src, files["arena_tmpfs"])
    shutil.copyfile(src, files["dev_shm"])
    # Sealed payloads are collapsed into huge pages in the background: wait for it.
    wait_until(lambda: status(pt.mnt)["arena"]["huge_pending"] == 0)
    res["huge_pages"] = {"passthrough_arena": status(pt.mnt)["arena"]["huge"],
                         "collapsed": status(pt.mnt)["arena"]["huge_collapsed"]}
    targets = list(files)
    cases = res["cases"]

    def cold(t):
        if t == "fallback":
            vybench("dropcache", files[t])

    def read(t):
        cold(t)
        return size / vybench("read", files[t])["seconds"] / (1 << 30)
    cases["read"] = {"unit": "GiB/s", "higher": True,
                     "values": median_runs(args.runs, targets, read)}

    def memmap(t):
        cold(t)
        out = subprocess.run([PY, "-c", MEMMAP_SUM, files[t]], check=True,
                             capture_output=True, text=True).stdout
        return size / float(out) / (1 << 30)
    cases["memmap"] = {"unit": "GiB/s", "higher": True,
                       "values": median_runs(args.runs, targets, memmap)}

    def cache(t):
        cold(t)
        before = page_cache_mib()
        vybench("read", files[t])
        return max(0.0, page_cache_mib() - before)
    cases["cache"] = {"unit": "MiB", "higher": False,
                      "values": median_runs(args.runs, targets, cache)}

    counter = [0]

    def write(t):
        counter[0] += 1
        # Start from a quiet machine: the previous run's payload may still be being
        # collapsed into huge pages in the background (store/collapse.cc).
        for inst in (pt, fb):
            wait_until(lambda: status(inst.mnt)["arena"]["huge_pending"] == 0)
        if t in ("passthrough", "fallback"):
            inst = pt if t == "passthrough" else fb
            path = f"{inst.mnt}/new/w{counter[0]}"
            secs = vybench("write", path, size)["seconds"]
            oid = os.path.basename(os.readlink(path))
            os.unlink(path)
            os.rmdir(f"{inst.mnt}/objects/{oid}")
        else:
            path = f"{os.path.dirname(files[t])}/w{counter[0]}"
            secs = vybench("write", path, size)["seconds"]
            os.unlink(path)
        return size / secs / (1 << 30)
    cases["write"] = {"unit": "GiB/s", "higher": True,
                      "values": median_runs(args.runs, targets, write)}

    small = {"passthrough": pt.put(_small(shm), "small"),
             "fallback": fb.put(_small(shm), "small"),
             "arena_tmpfs": f"{pt.arena}/bench-small", "dev_shm": _small(shm)}
    shutil.copyfile(_small(shm), small["arena_tmpfs"])
    for label, paths in (("openmap_1m", small), ("openmap_1g", files)):
        cases[label] = {"unit": "us", "higher": False, "values": median_runs(
            args.runs, targets, lambda t: vybench("openmap", paths[t], 2000)["median_us"])}

    res["huge_policy"] = huge_policy_memory(pt.mnt, work)


def metadata_cases(args, pt, shm, res):
    """Metadata at scale: create, stat, ls and readdir+lstat of N objects against N files
    on /dev/shm, into `res`."""
    cases = res["cases"]
    # Metadata at scale: N objects (1 KiB each) in the passthrough instance, N files
    # on /dev/shm.
    n = args.objects
    os.mkdir(f"{shm}/many")
    cr_fs = vybench("create", f"{pt.mnt}/new", n, 1024, "m")["per_second"]
    cr_shm = vybench("create", f"{shm}/many", n, 1024, "m")["per_second"]
    cases["create"] = {"unit": "objects/s", "higher": True,
                       "values": {"passthrough": cr_fs, "dev_shm": cr_shm}}
    # The same shape on tmpfs: N directories each holding a `data` file.
    os.mkdir(f"{shm}/tree")
    for i in range(n):
        os.mkdir(f"{shm}/tree/o{i:016x}")
        open(f"{shm}/tree/o{i:016x}/data", "wb").close()
    st = median_runs(args.runs, ["passthrough", "dev_shm"], lambda t: vybench(
        "stat", f"{pt.mnt}/objects" if t == "passthrough" else f"{shm}/tree",
        "/data")["seconds"])
    cases["stat"] = {"unit": "s", "higher": False, "values": st}

    def ls(t):
        d = f"{pt.mnt}/objects" if t == "passthrough" else f"{shm}/many"
        subprocess.run(f"ls -l {d} > /dev/null", shell=True, check=True)  # warm
        t0 = time.perf_counter()
        subprocess.run(f"ls -l {d} > /dev/null", shell=True, check=True)
        return time.perf_counter() - t0
    cases["ls"] = {"unit": "s", "higher": False,
                   "values": median_runs(min(args.runs, 3), ["passthrough", "dev_shm"], ls)}

    def scan(t):
        d = f"{pt.mnt}/objects" if t == "passthrough" else f"{shm}/many"
        t0 = time.perf_counter()
        for e in os.scandir(d):
            e.stat(follow_symlinks=False)
        return time.perf_counter() - t0
    cases["readdir_lstat"] = {"unit": "s", "higher": False,
                              "values": median_runs(args.runs, ["passthrough", "dev_shm"], scan)}


def add_ratios(res):
    """Each case's ratio to /dev/shm (for times /dev/shm / x: higher is better)."""
    for case in res["cases"].values():
        v, base = case["values"], case["values"]["dev_shm"]
        case["ratio_to_dev_shm"] = {}
        for t, x in v.items():
            if case["unit"] == "MiB" or t == "dev_shm":
                continue
            case["ratio_to_dev_shm"][t] = (x / base) if case["higher"] else (base / x if x else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", "zero_copy.json"))
    args = ap.parse_args()
    size = int(args.gib * (1 << 30))
    arena_size = f"{4 * size + (256 << 20)}"
    work = tempfile.mkdtemp(prefix="vyfs-zc-")
    shm = tempfile.mkdtemp(prefix="vyfs-zc-", dir="/dev/shm")
    res = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                       "cpu": _cpu()}, "runs": args.runs, "bytes": size, "cases": {}}
    pt = fb = None
    try:
        pt = Instance(work, "pt", f"size={arena_size},durability=none,passthrough=on")
        fb = Instance(work, "fb", f"size={arena_size},durability=none,passthrough=off")
        res["io_path"] = {"passthrough": status(pt.mnt)["io_path"],
                          "fallback": status(fb.mnt)["io_path"]}
        io_cases(args, pt, fb, work, shm, size, res)
        metadata_cases(args, pt, shm, res)
        res["status"] = {"passthrough": status(pt.mnt)["requests"],
                         "fallback": status(fb.mnt)["requests"]}
    finally:
        for inst in (pt, fb):
            if inst:
                inst.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)

    add_ratios(res)
    save_results(res, args.out)
    print_table(res)
    hp = res.get("huge_policy", {})
    if hp:
        print(f"memory of 10k 1 KiB blobs: huge=within_size {hp['within_size_10k_blobs_mib']:.0f} MiB"
              f" (measured), huge=always {hp['always_10k_blobs_mib']:,.0f} MiB"
              f" ({hp['always_per_blob_kib']:.0f} KiB per blob, measured on 500)")
    png = os.path.splitext(args.out)[0] + ".png"
    chart(res, png)
    print(f"results: {args.out}\nchart:   {png}")


def shmem_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1])
    return 0


def huge_policy_memory(mnt, work):
    """Memory of small blobs under the arena's policy (huge=within_size, through the
    daemon: 10k blobs of 1 KiB) and under huge=always (a raw tmpfs; 500 files, since
    each costs a 2 MiB page), per blob and for 10k."""
    s0 = shmem_kib()
    vybench("create", f"{mnt}/new", 10000, 1024, "hp")
    within = (shmem_kib() - s0) / 1024.0
    d = os.path.join(work, "always")
    os.mkdir(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2G,huge=always", "hp", d], check=True)
    try:
        s0 = shmem_kib()
        vybench("create", d, 500, 1024, "hp")
        always_per_blob = (shmem_kib() - s0) / 1024.0 / 500
    finally:
        subprocess.run(["umount", d])
    return {"within_size_10k_blobs_mib": within, "always_10k_blobs_mib": always_per_blob * 10000,
            "within_size_per_blob_kib": within * 1024 / 10000,
            "always_per_blob_kib": always_per_blob * 1024}


_SMALL = {}


def _small(shm):
    if shm not in _SMALL:
        path = f"{shm}/small-src"
        with open(path, "wb") as f:
            f.write(os.urandom(1 << 20))
        _SMALL[shm] = path
    return _SMALL[shm]


def _cpu():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


TARGETS = [  # case, label, target ratio (or absolute) for passthrough, for fallback
    ("read", "read() 1 GiB cold, 1 MiB reads", ">= 0.95", ">= 0.40"),
    ("memmap", "numpy.memmap(...).sum() 1 GiB cold", ">= 0.95 (huge arena >= 1.5)", ""),
    ("write", "write 1 GiB into new/, 1 MiB writes, to sealed", ">= 0.85", ""),
    ("cache", "page cache growth reading 1 GiB (MiB)", "0 MiB", ""),
    ("openmap_1m", "open+mmap+munmap+close, 1 MiB blob (us)", "<= 100 us", ""),
    ("openmap_1g", "open+mmap+munmap+close, 1 GiB blob (us)", "<= 100 us, <= 2x 1 MiB", ""),
    ("stat", "stat() of 100k objects' data, warm", ">= 0.8", ""),
    ("ls", "`ls -l` of 100k objects, warm", ">= 0.35", ""),
    ("readdir_lstat", "readdir + lstat of 100k objects, warm", "", ""),
    ("create", "create 1 KiB blobs through new/ (objects/s)", ">= 5,000/s", ""),
]


def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def print_table(res):
    print("| case | passthrough | fallback | arena tmpfs | /dev/shm | ratio PT | ratio FB | target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, label, tgt, _ in TARGETS:
        c = res["cases"].get(key)
        if not c:
            continue
        v, r = c["values"], c.get("ratio_to_dev_shm", {})
        print(f"| {label} | {fmt(v.get('passthrough'))} {c['unit']} | {fmt(v.get('fallback'))} | "
              f"{fmt(v.get('arena_tmpfs'))} | {fmt(v.get('dev_shm'))} | {fmt(r.get('passthrough'))} | "
              f"{fmt(r.get('fallback'))} | {tgt} |")


def chart(res, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no matplotlib: no chart)")
        return
    keys = [k for k, *_ in TARGETS if k in res["cases"] and res["cases"][k].get("ratio_to_dev_shm")]
    pt = [res["cases"][k]["ratio_to_dev_shm"].get("passthrough") or 0 for k in keys]
    fb = [res["cases"][k]["ratio_to_dev_shm"].get("fallback") or 0 for k in keys]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    xs = range(len(keys))
    ax.bar([x - 0.2 for x in xs], pt, width=0.4, label="passthrough")
    ax.bar([x + 0.2 for x in xs], fb, width=0.4, label="fallback (passthrough=off)")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(keys, rotation=20)
    ax.set_ylabel("ratio to the same operation on /dev/shm (higher is better)")
    ax.set_title(f"vineyardfs zero-copy suite, medians of {res['runs']} runs "
                 f"({res['machine']['cpus']} CPUs, {res['machine']['cpu']})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
