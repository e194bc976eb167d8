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
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_zero_copy as bz  # noqa: E402  (ROOT, BUILD, save_results, wait_until, _cpu)

sys.path.insert(0, os.path.join(bz.ROOT, "python"))
import numpy as np  # noqa: E402
import vineyardfs  # noqa: E402
from vineyardfs import batch as vbatch  # noqa: E402
from vineyardfs import client as vclient  # noqa: E402
from vineyardfs.objects import ObjectID  # noqa: E402

VINEYARDFS = os.path.join(bz.BUILD, "vineyardfs")
VYBENCH = os.path.join(bz.BUILD, "vybench")
VYFILL = os.path.join(bz.BUILD, "vyfill")
GROUPS = ("create", "pair", "rmdir", "openmap", "meta", "get", "put", "scale", "leftover",
          "strace")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Children we started (vybench writers, strace): ended by pid if we are interrupted.
_children = set()


def run_json(args):
    """Runs a command that prints one JSON object; tracked so Ctrl-C ends it."""
    p = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    _children.add(p)
    try:
        out, _ = p.communicate()
    except BaseException:  # Ctrl-C: end it before the daemon goes
        end_children()
        raise
    finally:
        _children.discard(p)
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]} {args[1]} failed ({p.returncode})")
    return json.loads(out)


def end_children():
    for p in list(_children):
        if p.poll() is None:
            p.kill()
            p.wait()
        _children.discard(p)


# --- the daemon -----------------------------------------------------------------------

class Daemon:
    """One vineyardfs in the foreground (-f) on <work>/<name>/{mnt,arena,state}."""

    def __init__(self, work, name, opts):
        self.dir = os.path.join(work, name)
        self.mnt, self.arena, self.state = (os.path.join(self.dir, d)
                                            for d in ("mnt", "arena", "state"))
        self.log = os.path.join(self.dir, "daemon.log")
        self.opts = f"arena={self.arena},state={self.state},{opts}"
        self.proc = None
        os.makedirs(self.mnt, exist_ok=True)

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=600):
        """Starts the daemon; returns the seconds until status.json answered."""
        with open(self.log, "ab") as log:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen([VINEYARDFS, "vineyard", self.mnt, "-f", "-o", self.opts],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)  # Ctrl-C is ours to handle
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError(f"vineyardfs exited ({code}):\n{self.log_tail()}")
            if os.path.ismount(self.mnt):
                try:
                    self.status()
                    return time.perf_counter() - t0
                except (OSError, ValueError):
                    pass
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"vineyardfs did not mount in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.001)

    def stop(self, keep_arena=False):
        """Unmounts and waits for the daemon; unmounts the arena tmpfs unless kept
        for a remount."""
        if self.proc is not None:
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], stderr=subprocess.DEVNULL)
            try:
                self.proc.wait(timeout=120)  # the daemon exits after the unmount
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if not keep_arena:
            subprocess.run(["umount", "-l", self.arena], stderr=subprocess.DEVNULL)

    def status(self):
        with open(f"{self.mnt}/status.json") as f:
            return json.load(f)

    def cpu_s(self):
        """utime + stime of the whole daemon (every thread, live and exited), seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_bytes(self):
        with open(f"/proc/{self.pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE

    def quiet(self):
        """No payload copy into RocksDB and no huge-page collapse pending."""
        def settled():
            s = self.status()
            return s["state"]["pending_durable"] == 0 and s["arena"]["huge_pending"] == 0
        bz.wait_until(settled, timeout=300)

    def log_tail(self, lines=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def request_counts(d):
    """The FUSE request counters of status.json (not byte counts or events)."""
    r = d.status()["requests"]
    return {k: v for k, v in r.items()
            if not k.endswith("_bytes") and k not in ("seal", "seal_errors", "delete")}


class Meter:
    """Daemon CPU and counted FUSE requests around a block, per operation."""

    def __init__(self, d):
        self.d = d
        a = request_counts(d)
        b = request_counts(d)  # what reading status.json once costs
        self.overhead = {k: b[k] - a[k] for k in a}

    def __enter__(self):
        self.r0, self.c0 = request_counts(self.d), self.d.cpu_s()
        return self

    def __exit__(self, *exc):
        self.c1, self.r1 = self.d.cpu_s(), request_counts(self.d)

    def per_op(self, ops):
        req = {k: max(0, self.r1[k] - self.r0[k] - self.overhead.get(k, 0)) / ops
               for k in self.r1}
        req = {k: v for k, v in req.items() if v}
        return {"daemon_cpu_us": (self.c1 - self.c0) / ops * 1e6, "ops": ops,
                "daemon_cpu_s": self.c1 - self.c0,
                "requests": req, "requests_total": sum(req.values())}


# --- helpers -----------------------------------------------------------------------------

def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def case_result(label, unit, higher, runs_vfs, runs_shm, target="", per_op=None, note=""):
    """Both targets' runs; ratio per run = vineyardfs over /dev/shm for rates, the
    inverse for times (1.0 = as fast as /dev/shm)."""
    out = {"label": label, "unit": unit, "higher": higher, "target": target, "note": note,
           "vineyardfs": summarize(runs_vfs)}
    if runs_shm:
        out["dev_shm"] = summarize(runs_shm)
        ratios = [(v / s if higher else s / v) for v, s in zip(runs_vfs, runs_shm)]
        out["ratio"] = summarize(ratios)
    if per_op:
        # CPU times come in clock ticks (10 ms): the figure that counts is the total
        # over every run divided by every operation (pooled); per run for the spread.
        out["per_op"] = {"daemon_cpu_us": summarize([p["daemon_cpu_us"] for p in per_op]),
                         "daemon_cpu_us_pooled": sum(p["daemon_cpu_s"] for p in per_op) * 1e6
                         / sum(p["ops"] for p in per_op),
                         "daemon_cpu_ticks": round(sum(p["daemon_cpu_s"] for p in per_op) * CLK_TCK),
                         "requests_total": statistics.median(p["requests_total"] for p in per_op),
                         "requests": {k: statistics.median(p["requests"].get(k, 0) for p in per_op)
                                      for k in sorted({k for p in per_op for k in p["requests"]})}}
    return out


def alternate(runs, fn, targets=("vineyardfs", "dev_shm")):
    """fn(target, run) -> value; the order of the targets alternates run by run."""
    vals = {t: [] for t in targets}
    for r in range(runs):
        for t in (targets if r % 2 == 0 else tuple(reversed(targets))):
            vals[t].append(fn(t, r))
    return vals


def payload_file(work, name, data):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def writers(dirpath, n, nwriters, payload, prefix, suffix, keep="unlink", ids=None):
    """nwriters vybench processes, n/nwriters objects each, started together; returns
    (objects/s over the union of their windows, number of links seen)."""
    share = [n // nwriters + (1 if i < n % nwriters else 0) for i in range(nwriters)]
    procs = []
    for i, k in enumerate(share):
        args = [VYBENCH, "objects", dirpath, k, payload, f"{prefix}w{i}-", suffix, keep]
        if ids:
            args.append(ids)
        p = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
        _children.add(p)
        procs.append(p)
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate()
        except BaseException:  # Ctrl-C: end the writers before the daemon goes
            end_children()
            raise
        _children.discard(p)
        if p.returncode != 0:
            raise RuntimeError(f"vybench objects failed ({p.returncode})")
        outs.append(json.loads(out))
    t0, t1 = min(o["t0"] for o in outs), max(o["t1"] for o in outs)
    return n / (t1 - t0), sum(o["links"] for o in outs)


# --- the groups -----------------------------------------------------------------------------

def group_create(args, work, shm, res):
    d = Daemon(work, "create", args.daemon_opts)
    d.start()
    try:
        payload = payload_file(work, "p1k", b"v" * 1024)
        for nw, key, target in ((1, "create_1w", ">= 8k/s, daemon CPU <= 80 us/object"),
                                (2, "create_2w", ">= 12k/s")):
            per_op = []
            meter = Meter(d)

            def one(t, r):
                tag = f"c{nw}r{r}"
                if t == "dev_shm":
                    rate, _ = writers(shm, args.creates, nw, payload, tag, ".blob")
                    return rate
                d.quiet()
                with meter:
                    rate, links = writers(f"{d.mnt}/new", args.creates, nw, payload, tag, ".blob")
                if links != args.creates:
                    raise RuntimeError(f"{args.creates - links} uploads did not become objects")
                per_op.append(meter.per_op(args.creates))
                return rate
            v = alternate(args.runs, one)
            res["cases"][key] = case_result(
                f"create 1 KiB blobs through new/, {nw} writer{'s' if nw > 1 else ''}",
                "objects/s", True, v["vineyardfs"], v["dev_shm"], target, per_op)
            report(key, res["cases"][key])
    finally:
        d.stop()


def group_pair(args, work, shm, res):
    d = Daemon(work, "pair", args.daemon_opts)
    d.start()
    try:
        client = vineyardfs.connect(d.mnt)
        a, b = client.put(b"a" * 1024), client.put(b"b" * 1024)
        doc = json.dumps({"typename": "vineyard::Pair", "first_": {"id": str(a)},
                          "second_": {"id": str(b)}}).encode()
        payload = payload_file(work, "pair.json", doc)
        per_op = []
        meter = Meter(d)

        def one(t, r):
            if t == "dev_shm":
                return writers(shm, args.creates, 1, payload, f"p{r}", ".meta.json")[0]
            d.quiet()
            with meter:
                rate, links = writers(f"{d.mnt}/new", args.creates, 1, payload, f"p{r}",
                                      ".meta.json")
            if links != args.creates:
                raise RuntimeError(f"{args.creates - links} pairs did not become objects")
            per_op.append(meter.per_op(args.creates))
            return rate
        v = alternate(args.runs, one)
        res["cases"]["create_pair"] = case_result(
            "create a Pair through *.meta.json", "objects/s", True, v["vineyardfs"],
            v["dev_shm"], "", per_op)
        report("create_pair", res["cases"]["create_pair"])
    finally:
        d.stop()


def group_rmdir(args, work, shm, res):
    d = Daemon(work, "rmdir", args.daemon_opts)
    d.start()
    try:
        payload = payload_file(work, "p1k", b"v" * 1024)
        per_op = []
        meter = Meter(d)
        n = args.creates

        def one(t, r):
            lst = os.path.join(work, f"rmdir-{t}-{r}")
            if t == "dev_shm":
                base = os.path.join(shm, f"rm{r}")
                os.mkdir(base)
                with open(lst, "w") as f:
                    for i in range(n):
                        os.mkdir(f"{base}/o{i:016x}")
                        f.write(f"{base}/o{i:016x}\n")
                rate = run_json([VYBENCH, "rmdirs", lst])["per_second"]
                os.rmdir(base)
                return rate
            ids = os.path.join(work, f"ids-{r}")
            _, links = writers(f"{d.mnt}/new", n, 1, payload, f"r{r}", ".blob", ids=ids)
            if links != n:
                raise RuntimeError("uploads did not become objects")
            with open(ids) as f, open(lst, "w") as g:
                for line in f:
                    g.write(f"{d.mnt}/objects/{line.strip()}\n")
            d.quiet()
            with meter:
                rate = run_json([VYBENCH, "rmdirs", lst])["per_second"]
            per_op.append(meter.per_op(n))
            return rate
        v = alternate(args.runs, one)
        res["cases"]["rmdir"] = case_result(
            "rmdir of a blob (/dev/shm: of an empty directory)", "objects/s", True,
            v["vineyardfs"], v["dev_shm"], ">= 15k/s", per_op)
        report("rmdir", res["cases"]["rmdir"])
    finally:
        d.stop()


def group_openmap(args, work, shm, res):
    size = int(args.gib * (1 << 30))
    d = Daemon(work, "openmap", args.daemon_opts)
    d.start()
    try:
        iters = 2000
        for key, nbytes, label in (("openmap_1m", 1 << 20, "1 MiB"),
                                   ("openmap_1g", size, f"{args.gib:g} GiB")):
            base = os.path.join(shm, f"{key}.bin")
            run_json([VYBENCH, "write", base, nbytes])
            run_json([VYBENCH, "copy", base, f"{d.mnt}/new/{key}"])
            oid = os.path.basename(os.readlink(f"{d.mnt}/new/{key}"))
            os.unlink(f"{d.mnt}/new/{key}")
            data = f"{d.mnt}/objects/{oid}/data"
            d.quiet()
            per_op = []
            meter = Meter(d)

            def one(t, r):
                if t == "dev_shm":
                    return run_json([VYBENCH, "openmap", base, iters])["median_us"]
                with meter:
                    us = run_json([VYBENCH, "openmap", data, iters])["median_us"]
                per_op.append(meter.per_op(iters))
                return us
            v = alternate(args.runs, one)
            res["cases"][key] = case_result(
                f"open+mmap+munmap+close of data, {label} blob", "us", False,
                v["vineyardfs"], v["dev_shm"], "<= 50 us", per_op,
                note=f"median of {iters} per run")
            report(key, res["cases"][key])
            os.unlink(base)
            os.rmdir(f"{d.mnt}/objects/{oid}")
    finally:
        d.stop()


def shm_tree(shm, mnt, ids):
    """A copy on /dev/shm of what the client reads for `ids`: status.json, each
    objects/<id>/meta.json (the same text), data, and user.vineyard.local."""
    root = os.path.join(shm, "tree")
    os.makedirs(os.path.join(root, "objects"), exist_ok=True)
    os.makedirs(os.path.join(root, "new"), exist_ok=True)
    os.makedirs(os.path.join(root, "names"), exist_ok=True)
    shutil.copyfile(f"{mnt}/status.json", f"{root}/status.json")
    todo = list(ids)
    while todo:
        oid = str(todo.pop())
        dst = f"{root}/objects/{oid}"
        if os.path.isdir(dst):
            continue
        os.mkdir(dst)
        with open(f"{mnt}/objects/{oid}/meta.json", "rb") as f:
            text = f.read()
        with open(f"{dst}/meta.json", "wb") as f:
            f.write(text)
        if os.path.exists(f"{mnt}/objects/{oid}/data"):
            shutil.copyfile(f"{mnt}/objects/{oid}/data", f"{dst}/data")
        os.setxattr(dst, "user.vineyard.local", b"1")
        for m in os.listdir(f"{mnt}/objects/{oid}/members") if os.path.isdir(
                f"{mnt}/objects/{oid}/members") else []:
            todo.append(os.path.basename(os.readlink(f"{mnt}/objects/{oid}/members/{m}")))
    return root


def time_calls(fn, n):
    """Median of n calls, microseconds."""
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


def python_cases(args, work, shm, res, group):
    d = Daemon(work, group, args.daemon_opts)
    d.start()
    try:
        client = vineyardfs.connect(d.mnt)
        blob = client.put(b"x" * 1024)
        pair = client.put((1, 2.5))
        root = shm_tree(shm, d.mnt, [blob, pair])
        base = vineyardfs.connect(root)
        assert bytes(base.get(blob)) == bytes(client.get(blob)) and \
            base.get(pair) == client.get(pair) == (1, 2.5)
        if group == "meta":
            cases = (("get_meta", "Python get_meta of a small object (1 KiB blob)",
                      lambda c: c.get_meta(blob), "<= 50 us"),
                     ("get_object", "Python get_object of a small object (1 KiB blob)",
                      lambda c: c.get_object(blob), ""))
        else:
            cases = (("get_blob", "Python get of a 1 KiB blob",
                      lambda c: c.get(blob), "<= 80 us"),
                     ("get_pair", "Python get of a Pair of two scalars",
                      lambda c: c.get(pair), "<= 150 us"))
        d.quiet()
        for key, label, fn, target in cases:
            per_op = []
            meter = Meter(d)

            def one(t, r):
                if t == "dev_shm":
                    return time_calls(lambda: fn(base), args.gets)
                with meter:
                    us = time_calls(lambda: fn(client), args.gets)
                per_op.append(meter.per_op(args.gets))
                return us
            v = alternate(args.runs, one)
            res["cases"][key] = case_result(label, "us", False, v["vineyardfs"], v["dev_shm"],
                                            target, per_op, note=f"median of {args.gets} calls per run")
            report(key, res["cases"][key])
    finally:
        d.stop()


class ShmPutClient(vineyardfs.Client):
    """The client's put() with its one create call writing plain files on /dev/shm:
    the baseline of the put rows (ids made up, same layout: bit 63 = blob)."""

    def __init__(self, root):
        super().__init__(root)
        self.created = 0
        self._dir = None

    def start(self, subdir):
        self._dir = os.path.join(self._new, subdir)
        os.mkdir(self._dir)

    def _create_file(self, suffix, data, what):
        # A batch upload (one file for the whole value) counts as its entries.
        batch = vbatch.current(self)
        self.created += len(batch.entries) if suffix == ".batch" else 1
        path = os.path.join(self._dir, "py%d%s" % (self.created, suffix))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:  # the client's own writer: one writev for a batch's manifest and blobs
            vclient._write_all(fd, data if isinstance(data, list) else [data])
        finally:
            os.close(fd)
        blob = 1 << 63 if suffix == ".blob" else 0
        return ObjectID(blob | (self._instance_id << 48) | self.created)


def group_put(args, work, shm, res):
    d = Daemon(work, "put", args.daemon_opts)
    d.start()
    try:
        client = vineyardfs.connect(d.mnt)
        root = shm_tree(shm, d.mnt, [])
        base = ShmPutClient(root)
        rng = np.random.default_rng(7)
        values = {"put_list": ("Python put of a list of 1,000 float64 arrays of 1 KiB",
                               [rng.random(128) for _ in range(1000)])}
        try:
            import pandas as pd
            values["put_df"] = ("Python put of a 1,000-column DataFrame (1 KiB float64 columns)",
                                pd.DataFrame({f"c{i}": rng.random(128) for i in range(1000)}))
        except ImportError:
            res["notes"].append("pandas is not importable: no DataFrame put")
        for key, (label, value) in values.items():
            per_op, client_us = [], []
            meter = Meter(d)
            counts = {}

            def one(t, r):
                if t == "dev_shm":
                    base.start(f"{key}-{r}")
                    before = base.created
                    t0 = time.perf_counter()
                    base.put(value)
                    s = time.perf_counter() - t0
                    counts["dev_shm"] = base.created - before
                    shutil.rmtree(base._dir)
                    return counts["dev_shm"] / s
                d.quiet()
                n0 = d.status()["objects"]["total"]
                with meter:
                    t0, c0 = time.perf_counter(), time.process_time()
                    client.put(value)
                    s, c = time.perf_counter() - t0, time.process_time() - c0
                n = d.status()["objects"]["total"] - n0
                counts["vineyardfs"] = n
                per_op.append(meter.per_op(n))
                client_us.append(c / n * 1e6)  # the Python side's CPU per object
                return n / s
            v = alternate(args.runs, one)
            res["cases"][key] = case_result(label, "objects/s", True, v["vineyardfs"],
                                            v["dev_shm"], ">= 50k objects/s", per_op,
                                            note=f"objects per put: {counts}")
            res["cases"][key]["objects_per_put"] = counts
            res["cases"][key]["client_cpu_us_per_object"] = summarize(client_us)
            res["cases"][key]["ms_per_put"] = {
                t: counts[t] / res["cases"][key][t]["median"] * 1e3 for t in counts}
            report(key, res["cases"][key])
    finally:
        d.stop()


def fill(dirpath, upto, start, chunk, payload, tag, keep, d=None):
    """Creates objects start..upto in chunks (1 writer); per chunk: (objects at its
    end, objects/s, daemon CPU us per object or None)."""
    out = []
    n = start
    while n < upto:
        k = min(chunk, upto - n)
        c0 = d.cpu_s() if d else None
        rate, links = writers(dirpath, k, 1, payload, f"{tag}{n}-", ".blob", keep=keep)
        if d and links != k:
            raise RuntimeError("uploads did not become objects")
        cpu = (d.cpu_s() - c0) / k * 1e6 if d else None
        n += k
        out.append((n, rate, cpu))
    return out


def window_rate(chunks, lo, hi):
    """Objects/s over the chunks that end in (lo, hi] (each chunk counted whole)."""
    total = secs = 0.0
    prev = 0
    for n, rate, _ in chunks:
        k = n - prev
        prev = n
        if lo < n <= hi:
            total += k
            secs += k / rate
    return total / secs if secs else None


def unlink_all(dirpath):
    for name in os.listdir(dirpath):
        os.unlink(f"{dirpath}/{name}")


def leftover_links(args, d, payload, out):
    """Create rate through new/ (client pattern, links unlinked) with --leftover links
    left in new/ against an empty new/, alternating, --runs times. Both follow the same
    history: --leftover creates that keep their links, removed before the empty case
    and after the held one, then a quiet daemon."""
    n, left = max(1000, min(args.creates, 5000)), args.leftover
    empty, held, ratios = [], [], []
    entries = None
    for r in range(args.runs):
        rates = {}
        for case in (("empty", "held") if r % 2 == 0 else ("held", "empty")):
            _, links = writers(f"{d.mnt}/new", left, 1, payload, f"left{r}{case}-", ".blob", "keep")
            if links != left:
                raise RuntimeError("leftover uploads did not become links")
            if case == "empty":
                unlink_all(f"{d.mnt}/new")
            d.quiet()  # their payload copies done: only the links differ
            if case == "held":
                entries = d.status()["new"]["entries"]
            rates[case] = writers(f"{d.mnt}/new", n, 1, payload, f"o{r}{case}-", ".blob")[0]
            if case == "held":
                unlink_all(f"{d.mnt}/new")
        empty.append(rates["empty"])
        held.append(rates["held"])
        ratios.append(rates["held"] / rates["empty"])
    out["leftover"] = {"links": left, "creates": n, "entries_held": entries,
                       "empty_per_s": summarize(empty), "held_per_s": summarize(held),
                       "ratio": summarize(ratios)}
    print(f"  create with {left:,} links left in new/: {statistics.median(held):,.0f}/s, "
          f"empty new/: {statistics.median(empty):,.0f}/s "
          f"(ratio {statistics.median(ratios):.2f})", flush=True)


def group_leftover(args, work, shm, res):
    """The leftover-links row alone (also part of scale)."""
    d = Daemon(work, "leftover", args.daemon_opts)
    d.start()
    try:
        d.quiet()
        out = {}
        leftover_links(args, d, payload_file(work, "p1k", b"v" * 1024), out)
        res["leftover"] = out["leftover"]
    finally:
        d.stop()


def vyfill(args, d, upto, have, arena_bytes):
    """Fills the unmounted store from `have` to `upto` objects with build/vyfill
    (10,000 records per journal commit); the daemon is stopped and started again."""
    d.stop(keep_arena=True)
    t0 = time.perf_counter()
    r = run_json([VYFILL, d.arena, d.state, str(upto - have), "1024", str(arena_bytes),
                  args.durability, "10000"])
    print(f"  vyfill {have:,} -> {upto:,}: {r['per_s']:,.0f}/s "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    d.start()
    return r


def scale_window(args):
    """The creation-rate window: 100,000, or half of --objects (a tenth with vyfill)."""
    return min(100_000, args.objects // (10 if args.fill == "direct" else 2))


def fill_to(args, d, size, have, n_total, arena_bytes, payload, out):
    """Fills to `size`: all through new/, or (direct) new/ for the first window from
    empty and the last window before n_total, vyfill for the rest."""
    win = scale_window(args)
    plan = [("new", size)]
    if args.fill == "direct":
        bulk_end = size - win if size == n_total else size
        plan = [("new", min(win, size)), ("vyfill", bulk_end), ("new", size)]
    for how, upto in plan:
        if upto <= have:
            continue
        if how == "vyfill":
            out.setdefault("vyfill", []).append(vyfill(args, d, upto, have, arena_bytes))
        else:
            t = time.perf_counter()
            chunks = fill(f"{d.mnt}/new", upto, have, args.chunk, payload, "s", "unlink", d)
            print(f"  new/ {have:,} -> {upto:,} in {time.perf_counter() - t:.0f} s "
                  f"(last chunk {chunks[-1][1]:,.0f}/s)", flush=True)
            out["chunks"] += [{"objects": n, "per_s": r, "daemon_cpu_us": c}
                              for n, r, c in chunks]
        have = upto
    return have


def remounts(args, d, count):
    """--runs remounts of a store of `count` objects: mount, then mount + listed."""
    mounts, listed, rss_after = [], [], []
    for r in range(args.runs):
        d.stop(keep_arena=True)
        mount_s = d.start()
        t0 = time.perf_counter()
        seen = len(os.listdir(f"{d.mnt}/objects"))
        list_s = time.perf_counter() - t0
        if seen != count:
            raise RuntimeError(f"remount listed {seen} of {count} objects")
        mounts.append(mount_s)
        listed.append(mount_s + list_s)
        rss_after.append(d.rss_bytes())
    st = d.status()
    return {"remount_mount_s": summarize(mounts), "remount_listed_s": summarize(listed),
            "remount_us_per_object": summarize([s / count * 1e6 for s in listed]),
            "rss_after_remount_and_list_bytes": statistics.median(rss_after),
            "inodes_after_list": st.get("inodes")}


def group_scale(args, work, shm, res):
    n_total = args.objects
    if args.fill is None:
        args.fill = "direct" if n_total > 200_000 else "new"
    sizes = sorted({max(args.chunk, n_total // 10), n_total})
    arena = max(4 << 30, int(n_total * 4096 * 1.25) + (1 << 30))
    opts = args.daemon_opts.replace("size=4G", f"size={arena}")
    d = Daemon(work, "scale", opts)
    d.start()
    payload = payload_file(work, "p1k", b"v" * 1024)
    out = {"objects": n_total, "chunk": args.chunk, "fill": args.fill, "sizes": {}, "chunks": []}
    try:
        d.quiet()
        leftover_links(args, d, payload, out)
        d.stop()  # a fresh store for the fill
        shutil.rmtree(d.dir)
        d = Daemon(work, "scale", opts)
        d.start()
        d.quiet()
        rss_empty = d.rss_bytes()
        out["rss_empty_bytes"] = rss_empty
        empty = []
        for r in range(args.runs):  # the fixed cost of a mount: an empty store
            d.stop(keep_arena=True)
            empty.append(d.start())
        out["remount_empty_s"] = summarize(empty)
        have = 0
        for size in sizes:
            t_fill = time.perf_counter()
            have = fill_to(args, d, size, have, n_total, arena, payload, out)
            print(f"  filled to {size:,} in {time.perf_counter() - t_fill:.0f} s", flush=True)
            d.quiet()
            count = d.status()["objects"]["total"]
            rss = d.rss_bytes()
            at = {"objects": count, "rss_bytes": rss,
                  "rss_per_object_bytes": (rss - rss_empty) / count,
                  "rss_total_per_object_bytes": rss / count}
            at.update(remounts(args, d, count))
            out["sizes"][str(size)] = at
            print(f"  {count:,} objects: remount + listed {at['remount_listed_s']['median']:.2f} s"
                  f" (mount {at['remount_mount_s']['median']:.2f} s, "
                  f"{at['remount_us_per_object']['median']:.1f} us/object), RSS "
                  f"{at['rss_per_object_bytes']:.0f} B/object added, "
                  f"{at['rss_after_remount_and_list_bytes'] / count:.0f} B/object total "
                  f"after a remount and a listing", flush=True)
        win = scale_window(args)
        cs = [(c["objects"], c["per_s"], c["daemon_cpu_us"]) for c in out["chunks"]]
        out["window"] = win
        out["first_window_per_s"] = window_rate(cs, 0, win)
        out["last_window_per_s"] = window_rate(cs, n_total - win, n_total)
        out["last_over_first"] = out["last_window_per_s"] / out["first_window_per_s"]
        cpu = [c for _, _, c in cs]
        out["daemon_cpu_us_first_chunk"], out["daemon_cpu_us_last_chunk"] = cpu[0], cpu[-1]
    finally:
        d.stop()
    # /dev/shm: the same fill with the files kept, and listing them.
    n_base = min(n_total, 200_000)
    os.mkdir(f"{shm}/many")
    bchunks = fill(f"{shm}/many", n_base, 0, args.chunk, payload, "s", "keep")
    bwin = min(100_000, n_base // 2)
    out["dev_shm"] = {"objects": n_base,
                      "first_window_per_s": window_rate(bchunks, 0, bwin),
                      "last_window_per_s": window_rate(bchunks, n_base - bwin, n_base),
                      "list_s": time_calls(lambda: os.listdir(f"{shm}/many"), args.runs) / 1e6}
    shutil.rmtree(f"{shm}/many")
    res["scale"] = out
    small, big = (out["sizes"][str(s)] for s in (sizes[0], sizes[-1]))
    out["per_object_growth"] = (big["remount_us_per_object"]["median"]
                                / small["remount_us_per_object"]["median"])
    print(f"  creation rate first {win:,}: {out['first_window_per_s']:,.0f}/s, last {win:,}: "
          f"{out['last_window_per_s']:,.0f}/s ({out['last_over_first']:.2f})", flush=True)


STRACE_SUMMARY = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$")
# strace -f -y -xx -s 8 -e trace=read: "PID read(FD<path in \\xNN>, "<8 bytes>"..., LEN) = N",
# or split in two when another thread runs meanwhile: "PID read(FD<path>,  <unfinished ...>"
# then "PID <... read resumed>"<8 bytes>"..., LEN) = N".
READ_CALL = re.compile(r'^(\d+)\s+read\(\d+<([^>]*)>,\s*(?:"((?:\\x[0-9a-f]{2})+)"|<unfinished)')
READ_RESUMED = re.compile(r'^(\d+)\s+<\.\.\. read resumed>\s*"((?:\\x[0-9a-f]{2})+)"')
RETURNED = re.compile(r"\)\s+=\s+(\d+)\s*$")
FUSE_OPS = {1: "LOOKUP", 2: "FORGET", 3: "GETATTR", 4: "SETATTR", 5: "READLINK", 6: "SYMLINK",
            8: "MKNOD", 9: "MKDIR", 10: "UNLINK", 11: "RMDIR", 12: "RENAME", 13: "LINK",
            14: "OPEN", 15: "READ", 16: "WRITE", 17: "STATFS", 18: "RELEASE", 20: "FSYNC",
            21: "SETXATTR", 22: "GETXATTR", 23: "LISTXATTR", 24: "REMOVEXATTR", 25: "FLUSH",
            26: "INIT", 27: "OPENDIR", 28: "READDIR", 29: "RELEASEDIR", 30: "FSYNCDIR",
            34: "ACCESS", 35: "CREATE", 36: "INTERRUPT", 38: "DESTROY", 39: "IOCTL",
            42: "BATCH_FORGET", 43: "FALLOCATE", 44: "READDIRPLUS", 45: "RENAME2",
            46: "LSEEK", 52: "STATX"}


def _unhex(text):
    return bytes(int(h, 16) for h in text.split("\\x")[1:])


def fuse_opcodes(trace):
    """{opcode name: count} of the requests read from /dev/fuse in an strace log."""
    ops, pending = {}, {}
    with open(trace) as f:
        for line in f:
            head = None
            m = READ_CALL.match(line)
            if m:
                is_fuse = _unhex(m.group(2)) == b"/dev/fuse" or m.group(2) == "/dev/fuse"
                if m.group(3) is None:
                    pending[m.group(1)] = is_fuse
                    continue
                head = m.group(3) if is_fuse else None
            else:
                m = READ_RESUMED.match(line)
                if m and pending.pop(m.group(1), False):
                    head = m.group(2)
            if head is None:
                continue
            r = RETURNED.search(line)
            raw = _unhex(head)
            if not r or int(r.group(1)) < 8 or len(raw) < 8:
                continue
            name = FUSE_OPS.get(int.from_bytes(raw[4:8], "little"), "op%d" % raw[4])
            ops[name] = ops.get(name, 0) + 1
    return ops


def strace_attach(args):
    p = subprocess.Popen(["strace", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    _children.add(p)
    return p


def strace_wait_attached(pid, timeout=20):
    def attached():
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("TracerPid:") and line.split()[1] == "0":
                        return False
        return True
    if not bz.wait_until(attached, timeout):
        raise RuntimeError("strace did not attach")


def strace_stop(p):
    p.send_signal(signal.SIGINT)  # strace detaches and writes what it has
    _, err = p.communicate(timeout=120)
    _children.discard(p)
    return err


def traced_requests(d, work, name, n, fn):
    """{FUSE opcode: requests per operation} while fn() does n operations, from
    `strace -f -e trace=read` of the daemon (every request it reads from /dev/fuse)."""
    trace = os.path.join(work, f"strace-{name}.txt")
    p = strace_attach(["-f", "-qq", "-y", "-xx", "-s", "8", "-e", "trace=read",
                       "-o", trace, "-p", str(d.pid)])
    try:
        strace_wait_attached(d.pid)
        fn()
        time.sleep(0.5)  # RELEASE follows close() asynchronously
    finally:
        strace_stop(p)
    ops = fuse_opcodes(trace)
    return {k: v / n for k, v in sorted(ops.items(), key=lambda kv: -kv[1])}


def traced_syscalls(d, work, name, n, fn):
    """{syscall: calls per operation} of the daemon (all threads) while fn() does n
    operations, from `strace -c -f`; "total" is their sum."""
    summary = os.path.join(work, f"strace-c-{name}.txt")
    p = strace_attach(["-c", "-f", "-o", summary, "-p", str(d.pid)])
    try:
        strace_wait_attached(d.pid)
        fn()
        time.sleep(0.5)
    finally:
        strace_stop(p)
    calls = {}
    with open(summary) as f:
        for line in f:
            m = STRACE_SUMMARY.match(line)
            if m and m.group(3) != "total":
                calls[m.group(3)] = int(m.group(1)) / n
    calls = dict(sorted(calls.items(), key=lambda kv: -kv[1]))
    calls["total"] = sum(calls.values())
    return calls


def group_strace(args, work, shm, res):
    if not shutil.which("strace"):
        res["notes"].append("no strace (tools/setup.sh installs it): no syscall counts")
        return
    n = 1000
    d = Daemon(work, "strace", args.daemon_opts)
    d.start()
    payload = payload_file(work, "p1k", b"v" * 1024)
    out = {"creates": n}
    try:
        writers(f"{d.mnt}/new", 200, 1, payload, "warm", ".blob")
        d.quiet()
        summary = os.path.join(work, "strace-c.txt")
        p = strace_attach(["-c", "-f", "-o", summary, "-p", str(d.pid)])
        strace_wait_attached(d.pid)
        meter = Meter(d)
        with meter:
            rate, links = writers(f"{d.mnt}/new", n, 1, payload, "st", ".blob")
        d.quiet()
        strace_stop(p)
        calls = {}
        with open(summary) as f:
            for line in f:
                m = STRACE_SUMMARY.match(line)
                if m and m.group(3) != "total":
                    calls[m.group(3)] = int(m.group(1))
        out["syscalls_per_create"] = {k: v / n for k, v in
                                      sorted(calls.items(), key=lambda kv: -kv[1])}
        out["syscalls_per_create_total"] = sum(calls.values()) / n
        out["status_json_requests_per_create"] = meter.per_op(n)["requests"]
        out["rate_under_strace_c"] = rate
        out["strace_c_table"] = open(summary).read()

        ops = traced_requests(d, work, "create", n, lambda: writers(
            f"{d.mnt}/new", n, 1, payload, "op", ".blob"))
        out["fuse_requests_per_create"] = ops
        out["fuse_requests_per_create_total"] = sum(ops.values())

        # Every request of the other per-object operations, 200 of each.
        k = 200
        client = vineyardfs.connect(d.mnt)
        a, b = client.put(b"a" * 1024), client.put(b"b" * 1024)
        pair_json = payload_file(work, "pair.json", json.dumps(
            {"typename": "vineyard::Pair", "first_": {"id": str(a)},
             "second_": {"id": str(b)}}).encode())
        ids = os.path.join(work, "strace-ids")
        writers(f"{d.mnt}/new", k, 1, payload, "rm", ".blob", ids=ids)
        rm_list = os.path.join(work, "strace-rmdirs")
        with open(ids) as f, open(rm_list, "w") as g:
            g.writelines(f"{d.mnt}/objects/{line.strip()}\n" for line in f)
        big = client.put(b"m" * (1 << 20))
        data = f"{d.mnt}/objects/{big}/data"
        # Above passthrough_min (1 MiB): the passthrough path a 1 GiB payload takes.
        large = client.put(b"g" * (2 << 20))
        ldata = f"{d.mnt}/objects/{large}/data"
        run_json([VYBENCH, "openmap", ldata, 10])
        small = client.put(b"x" * 1024)
        spair = client.put((1, 2.5))
        for fn in (lambda: client.get_meta(small), lambda: client.get(small),
                   lambda: client.get(spair)):
            fn()  # the entries are cached from here on, as in the timed cases
        run_json([VYBENCH, "openmap", data, 10])
        d.quiet()
        other = {
            "create_pair": lambda: writers(f"{d.mnt}/new", k, 1, pair_json, "tp", ".meta.json"),
            "rmdir": lambda: run_json([VYBENCH, "rmdirs", rm_list]),
            "openmap_1m": lambda: run_json([VYBENCH, "openmap", data, k]),
            "openmap_passthrough": lambda: run_json([VYBENCH, "openmap", ldata, k]),
            "get_meta": lambda: [client.get_meta(small) for _ in range(k)],
            "get_blob": lambda: [client.get(small) for _ in range(k)],
            "get_pair": lambda: [client.get(spair) for _ in range(k)],
        }
        out["fuse_requests_per_op"] = {}
        out["daemon_syscalls_per_op"] = {}
        for name, fn in other.items():
            out["fuse_requests_per_op"][name] = traced_requests(d, work, name, k, fn)
            if name not in ("create_pair", "rmdir"):  # (the rmdirs are spent)
                out["daemon_syscalls_per_op"][name] = traced_syscalls(d, work, name, k, fn)
            print(f"  {name}: requests {sum(out['fuse_requests_per_op'][name].values()):.2f} "
                  + ", ".join(f"{o} {v:.2f}" for o, v in out["fuse_requests_per_op"][name].items())
                  + (f"; daemon syscalls {out['daemon_syscalls_per_op'][name]['total']:.1f}"
                     if name in out["daemon_syscalls_per_op"] else ""), flush=True)
    finally:
        d.stop()
    res["strace"] = out
    print(f"  daemon syscalls per create: {out['syscalls_per_create_total']:.1f}; FUSE requests "
          f"per create: {out['fuse_requests_per_create_total']:.2f} "
          + ", ".join(f"{k} {v:.2f}" for k, v in out["fuse_requests_per_create"].items()),
          flush=True)


# --- report ---------------------------------------------------------------------------------

def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def spread(s):
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def report(key, c):
    line = f"  {key}: vineyardfs {spread(c['vineyardfs'])} {c['unit']}"
    if "dev_shm" in c:
        line += f", /dev/shm {spread(c['dev_shm'])}, ratio {c['ratio']['median']:.3f}"
    if "per_op" in c:
        line += (f"; daemon CPU {c['per_op']['daemon_cpu_us_pooled']:.0f} us/op, counted "
                 f"requests {c['per_op']['requests_total']:.2f}/op")
    if "client_cpu_us_per_object" in c:
        line += f"; client CPU {c['client_cpu_us_per_object']['median']:.1f} us/object"
    print(line, flush=True)


ORDER = ["create_1w", "create_2w", "create_pair", "rmdir", "openmap_1m", "openmap_1g",
         "get_meta", "get_object", "get_blob", "get_pair", "put_list", "put_df"]


def print_table(res):
    print(f"| per-object operation | vineyardfs | /dev/shm | ratio | daemon CPU per op | "
          f"counted requests per op | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key in ORDER:
        c = res["cases"].get(key)
        if not c:
            continue
        unit = c["unit"].replace("objects/s", "/s")
        shm = spread(c["dev_shm"]) + f" {unit}" if "dev_shm" in c else ""
        ratio = (f"{c['ratio']['median']:.3f} ({c['ratio']['min']:.3f}–{c['ratio']['max']:.3f})"
                 if "ratio" in c else "")
        po = c.get("per_op", {})
        cpu = ""
        if po and "daemon_cpu_us_pooled" in po:
            cpu = f"{po['daemon_cpu_us_pooled']:.0f} µs"
            if po["daemon_cpu_ticks"] < 20:  # under 0.2 s in all: too few clock ticks
                cpu += f" ({po['daemon_cpu_ticks']} clock ticks in all: coarse)"
        elif po:
            cpu = f"{po['daemon_cpu_us']['median']:.0f} µs"
        req = (f"{po['requests_total']:.2f} (" + ", ".join(
            f"{k} {v:.2g}" for k, v in po["requests"].items()) + ")") if po else ""
        label = c["label"]
        if "ms_per_put" in c:
            label += (f" ({c['objects_per_put']['vineyardfs']:,} objects per put, "
                      f"{c['ms_per_put']['vineyardfs']:.1f} ms; /dev/shm "
                      f"{c['ms_per_put']['dev_shm']:.1f} ms)")
        print(f"| {label} | {spread(c['vineyardfs'])} {unit} | {shm} | {ratio} | {cpu} | "
              f"{req} | {c['target']} |")
    s = res.get("scale")
    if s:
        for size, at in s["sizes"].items():
            print(f"| remount with {int(size):,} objects (mount + all listed) | "
                  f"{spread(at['remount_listed_s'])} s = "
                  f"{at['remount_us_per_object']['median']:.1f} µs/object (mount "
                  f"{at['remount_mount_s']['median']:.2f} s) | | | | | |")
        print(f"| remount of an empty store (the fixed cost) | "
              f"{spread(s['remount_empty_s'])} s | | | | | |")
        print(f"| per-object remount time, {max(map(int, s['sizes'])):,} over "
              f"{min(map(int, s['sizes'])):,} | {s['per_object_growth']:.2f}x | | | | | ≤ 1.3x |")
        b = s["dev_shm"]
        print(f"| creation rate, first / last {s['window']:,} of {s['objects']:,} (1 writer) | "
              f"{fmt(s['first_window_per_s'])} / {fmt(s['last_window_per_s'])} /s "
              f"({s['last_over_first']:.2f}) | {fmt(b['first_window_per_s'])} / "
              f"{fmt(b['last_window_per_s'])} /s (files kept, {b['objects']:,}) | | "
              f"{s['daemon_cpu_us_first_chunk']:.0f} → {s['daemon_cpu_us_last_chunk']:.0f} µs | | "
              f"within 20% |")
        big = s["sizes"][str(max(map(int, s["sizes"])))]
        print(f"| daemon RSS per object at {big['objects']:,} | "
              f"{big['rss_per_object_bytes']:,.0f} B added ({big['rss_total_per_object_bytes']:,.0f}"
              f" B total RSS / objects; {big['rss_after_remount_and_list_bytes'] / big['objects']:,.0f}"
              f" B total after a remount and a listing) | | | | | ≤ 1 KiB |")
    lo = res.get("leftover") or (s or {}).get("leftover")
    if lo:
        print(f"| create with {lo['links']:,} links left in new/ vs an empty new/ | "
              f"{spread(lo['held_per_s'])} /s against {spread(lo['empty_per_s'])} /s | | "
              f"{lo['ratio']['median']:.2f} ({lo['ratio']['min']:.2f}–{lo['ratio']['max']:.2f}) "
              f"| | | ≈ 1 |")
    st = res.get("strace")
    if st:
        print(f"\ndaemon syscalls per created object (strace -c -f, {st['creates']:,} creates): "
              f"{st['syscalls_per_create_total']:.1f}: " + ", ".join(
                  f"{k} {v:.2f}" for k, v in list(st["syscalls_per_create"].items())[:14]))
        print(f"FUSE requests per created object (opcodes read from /dev/fuse): "
              f"{st['fuse_requests_per_create_total']:.2f}: " + ", ".join(
                  f"{k} {v:.2f}" for k, v in st["fuse_requests_per_create"].items()))
        for name, ops in st.get("fuse_requests_per_op", {}).items():
            print(f"FUSE requests per {name}: {sum(ops.values()):.2f}: " + ", ".join(
                f"{k} {v:.2f}" for k, v in ops.items()))
        print(f"status.json counters per create: " + ", ".join(
            f"{k} {v:.2f}" for k, v in st["status_json_requests_per_create"].items()))


def chart(res, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no matplotlib: no chart)")
        return
    keys = [k for k in ORDER if k in res["cases"] and "ratio" in res["cases"][k]]
    s = res.get("scale")
    fig, axes = plt.subplots(1, 2 if s else 1, figsize=(14 if s else 9, 5.5), squeeze=False)
    ax = axes[0][0]
    if keys:
        med = [res["cases"][k]["ratio"]["median"] for k in keys]
        lo = [m - res["cases"][k]["ratio"]["min"] for k, m in zip(keys, med)]
        hi = [res["cases"][k]["ratio"]["max"] - m for k, m in zip(keys, med)]
        ys = range(len(keys))
        ax.barh(list(ys), med, xerr=[lo, hi], color="tab:blue", capsize=3)
        ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        ax.set_yticks(list(ys))
        ax.set_yticklabels(keys)
        ax.invert_yaxis()
        ax.set_xlabel("ratio to the same on /dev/shm (1 = as fast; whiskers: min-max of runs)")
        ax.set_title(f"per-object cost, medians of {res['runs']} runs")
    if s:
        ax2 = axes[0][1]
        xs = [c["objects"] for c in s["chunks"]]
        ax2.plot(xs, [c["per_s"] for c in s["chunks"]], label="creates/s (1 writer)")
        ax2.set_xlabel("objects in the store")
        ax2.set_ylabel("creates/s per chunk")
        ax2.set_ylim(bottom=0)
        ax3 = ax2.twinx()
        ax3.plot(xs, [c["daemon_cpu_us"] for c in s["chunks"]], color="tab:red",
                 label="daemon CPU µs/object")
        ax3.set_ylabel("daemon CPU µs per object", color="tab:red")
        ax3.set_ylim(bottom=0)
        ax2.set_title("creation as the store grows")
    m = res["machine"]
    fig.suptitle(f"vineyardfs bench_objects ({m['cpus']} CPUs, {m['cpu']}, kernel {m['kernel']})")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main():
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
    global VINEYARDFS, VYBENCH, VYFILL
    VINEYARDFS, VYBENCH, VYFILL = (os.path.join(args.build, b)
                                   for b in ("vineyardfs", "vybench", "vyfill"))
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
