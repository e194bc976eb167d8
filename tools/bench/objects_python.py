"""bench_objects.py's Python client groups: meta, get (on the mount and on a copy of
the tree on /dev/shm) and put."""
import os
import shutil
import statistics
import time

import numpy as np
import vineyardfs
from vineyardfs import batch as vbatch
from vineyardfs import client as vclient
from vineyardfs.objects import ObjectID

from .objects_daemon import Daemon, Meter
from .objects_stats import alternate, case_result, report, summarize


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
