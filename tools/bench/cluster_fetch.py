"""bench_cluster.py's fetch and join cases: a remote payload read on node 2, and a
node joining a cluster that already holds objects."""
import os
import shutil
import statistics
import tempfile
import time

import bench_zero_copy as bz

from .cluster_latency import build_persistable, fmt_s, wait_remote
from .cluster_nodes import PERSIST, Cluster


def put_blob(src, dst, size, name):
    """A `size`-byte blob written on node `src` and persisted, once node `dst` lists it.
    Returns (id, the new/ path)."""
    path = f"{src.mnt}/new/{name}"
    bz.vybench("write", path, size)
    oid = os.path.basename(os.readlink(path))
    os.setxattr(f"{src.mnt}/objects/{oid}", PERSIST, b"1")
    if not bz.wait_until(lambda: os.path.exists(f"{dst.mnt}/objects/{oid}"), 30):
        raise RuntimeError(f"blob {oid} did not replicate")
    return oid, path


def quiet(*nodes):
    """No huge-page collapse of a sealed payload running in the background, and the
    reserve (if any) written."""
    def settled(a):
        return a["huge_pending"] == 0 and a["reserve_ready"] == a["reserve"]
    for node in nodes:
        bz.wait_until(lambda: settled(node.status()["arena"]))


def fill(path, size, chunk=256 << 10):
    """Writes a new `size`-byte file in `chunk`-sized appends, as a fetch writes its
    copy (small pages: see AppendSmallPages in store/arena.h); GB/s."""
    buf = bytearray(os.urandom(chunk))
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        t0 = time.perf_counter()
        for off in range(0, size, chunk):
            os.pwrite(fd, memoryview(buf)[:min(chunk, size - off)], off)
        return size / (time.perf_counter() - t0) / 1e9
    finally:
        os.close(fd)


def case_fetch(args):
    """Per run: blobs A and B on node 1; after --settle s (this VM hands freed memory
    back to the host after ~2 s, so a node that has run a while finds it so) node 2
    fills a new file in its arena tmpfs (what writing into fresh memory costs here),
    reads A's data (the cold fetch), A again (cached) and the /dev/shm file; then
    deletes the fill file and at once reads B's data: a fetch into memory that was
    just in use, the pipeline's own rate."""
    size = int(args.gib * (1 << 30))
    reserve = size if args.reserve is None else int(args.reserve * (1 << 30))
    arena = max(2 << 30, 2 * size + reserve + (512 << 20))
    shm = tempfile.mkdtemp(prefix="vyfs-cluster-", dir="/dev/shm")
    runs = []
    try:
        with Cluster(size=str(arena), extra=f",reserve={reserve}") as c:
            c.start(1, 2, 3)
            n1, n2 = c[1], c[2]
            base, fill_path = f"{shm}/baseline", f"{n2.arena}/bench-fill"
            bz.vybench("write", base, size)

            def read(path):
                return size / bz.vybench("read", path)["seconds"] / 1e9
            for r in range(args.runs):
                a, a_path = put_blob(n1, n2, size, f"a{r}")
                b, b_path = put_blob(n1, n2, size, f"b{r}")
                quiet(n1, n2)
                time.sleep(args.settle)
                b0 = n2.counters()["fetch_bytes"]
                t0 = n2.status()["arena"]["reserve_takes"]
                fill_gbs = fill(fill_path, size)
                if r % 2 == 0:
                    cold, shm_gbs = read(f"{n2.mnt}/objects/{a}/data"), read(base)
                else:
                    shm_gbs, cold = read(base), read(f"{n2.mnt}/objects/{a}/data")
                fetched = n2.counters()["fetch_bytes"] - b0
                over_reserve = n2.status()["arena"]["reserve_takes"] - t0 == 1
                quiet(n2)
                warm = read(f"{n2.mnt}/objects/{a}/data")
                os.unlink(fill_path)
                reused = read(f"{n2.mnt}/objects/{b}/data")
                runs.append({"cold_gbs": cold, "reused_gbs": reused, "warm_gbs": warm,
                             "dev_shm_gbs": shm_gbs, "fill_gbs": fill_gbs,
                             "fetched_bytes": fetched, "ratio": cold / shm_gbs,
                             "over_reserve": over_reserve})
                print(f"  fetch run {r + 1}: cold {cold:.2f} GB/s (fetched {fetched:,} B"
                      f"{', over the reserve' if over_reserve else ''}), "
                      f"/dev/shm {shm_gbs:.2f} GB/s, fresh-memory fill {fill_gbs:.2f} GB/s, cached "
                      f"{warm:.2f} GB/s, into just-freed memory {reused:.2f} GB/s", flush=True)
                # Delete both on the owner (so everywhere): the next run fits.
                for oid, path in ((a, a_path), (b, b_path)):
                    os.unlink(path)
                    os.rmdir(f"{n1.mnt}/objects/{oid}")
                    bz.wait_until(lambda: not os.path.exists(f"{n2.mnt}/objects/{oid}"), 30)
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("cold_gbs", "reused_gbs", "warm_gbs", "dev_shm_gbs", "fill_gbs", "ratio")}
    return {"bytes": size, "reserve": reserve, "settle_s": args.settle, "runs": runs, **med}


# --- 4. join --------------------------------------------------------------------------------

def case_join(args):
    runs = []
    with Cluster() as c:
        c.start(1, 2)
        n1, n2, n3 = c[1], c[2], c[3]
        top, count, rate, _ = build_persistable(n1, args.join_objects, "tree", args.fanout,
                                                args.writers, "j")
        base2 = n2.counters()["remote"]
        t0 = time.perf_counter()
        os.setxattr(f"{n1.mnt}/objects/{top}", PERSIST, b"1")
        times, _ = wait_remote([n2], {2: base2 + count}, t0, args.timeout)
        if times[2] is None:
            raise RuntimeError("node 2 did not get every object")
        total = n1.status()["objects"]["persisted"]
        for r in range(args.runs):
            n3.wipe()
            t0 = n3.start()
            times, seen = wait_remote([n3], {3: total}, t0, args.timeout, interval=0.002)
            s = n3.counters()
            runs.append({"mount_s": n3.mount_s, "join_s": times[3], "reached": seen.get(3),
                         "snapshots_taken": s["snapshots_taken"], "gaps": s["gaps"]})
            print(f"  join run {r + 1}: mount {n3.mount_s:.3f} s, all {total:,} objects at "
                  f"{fmt_s(times[3])}", flush=True)
    ok = [r["join_s"] for r in runs if r["join_s"] is not None]
    return {"objects": total, "fanout": args.fanout, "create_per_s": rate, "runs": runs,
            "mount_s": statistics.median(r["mount_s"] for r in runs),
            "join_s": statistics.median(ok) if len(ok) == len(runs) else None}


# --- report -----------------------------------------------------------------------------------
