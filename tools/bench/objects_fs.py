"""bench_objects.py's groups of system calls (vybench): create, pair, rmdir, openmap."""
import json
import os
import subprocess
import tempfile

import vineyardfs

from . import binaries
from .objects_daemon import Daemon, Meter, _children, end_children, run_json
from .objects_stats import alternate, case_result, report


def payload_file(work, name, data):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def started_daemon(prefix, opts):
    """A temp dir, a 1 KiB payload file in it and a started Daemon "d" there:
    (work, payload, daemon). The caller stops the daemon."""
    work = tempfile.mkdtemp(prefix=prefix)
    payload = payload_file(work, "p1k", b"v" * 1024)
    d = Daemon(work, "d", opts)
    d.start()
    return work, payload, d


def writers(dirpath, n, nwriters, payload, prefix, suffix, keep="unlink", ids=None):
    """nwriters vybench processes, n/nwriters objects each, started together; returns
    (objects/s over the union of their windows, number of links seen)."""
    share = [n // nwriters + (1 if i < n % nwriters else 0) for i in range(nwriters)]
    procs = []
    for i, k in enumerate(share):
        args = [binaries.VYBENCH, "objects", dirpath, k, payload, f"{prefix}w{i}-", suffix, keep]
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
                rate = run_json([binaries.VYBENCH, "rmdirs", lst])["per_second"]
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
                rate = run_json([binaries.VYBENCH, "rmdirs", lst])["per_second"]
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
            run_json([binaries.VYBENCH, "write", base, nbytes])
            run_json([binaries.VYBENCH, "copy", base, f"{d.mnt}/new/{key}"])
            oid = os.path.basename(os.readlink(f"{d.mnt}/new/{key}"))
            os.unlink(f"{d.mnt}/new/{key}")
            data = f"{d.mnt}/objects/{oid}/data"
            d.quiet()
            per_op = []
            meter = Meter(d)

            def one(t, r):
                if t == "dev_shm":
                    return run_json([binaries.VYBENCH, "openmap", base, iters])["median_us"]
                with meter:
                    us = run_json([binaries.VYBENCH, "openmap", data, iters])["median_us"]
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
