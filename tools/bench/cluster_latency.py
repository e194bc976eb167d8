"""bench_cluster.py's latency and sustained cases: objects made on node 1, the time
until the other nodes list them."""
import json
import math
import multiprocessing
import os
import signal
import statistics
import subprocess
import time

from .cluster_nodes import PERSIST, VYBENCH, Cluster


def create_meta(mnt, name, doc):
    """Writes a metadata object into new/; returns its id once sealed."""
    path = f"{mnt}/new/{name}.meta.json"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    finally:
        os.close(fd)
    return os.path.basename(os.readlink(path))


def container(ids):
    doc = {"typename": "vineyard::Tuple", "transient": True, "__elements_-size": len(ids)}
    for i, oid in enumerate(ids):
        doc[f"__elements_-{i}"] = {"id": oid}
    return doc


def make_blobs(node, n, writers, prefix):
    """n transient 64-byte blobs on `node` from `writers` concurrent vybench processes.
    Returns (ids, objects/s over the wall time of all writers)."""
    before = set(os.listdir(f"{node.mnt}/objects"))
    share = [n // writers + (1 if w < n % writers else 0) for w in range(writers)]
    procs = []
    try:
        t0 = time.perf_counter()
        for w, k in enumerate(share):
            procs.append(subprocess.Popen([VYBENCH, "create", f"{node.mnt}/new", str(k), "64",
                                           f"{prefix}{w}-"], stdout=subprocess.DEVNULL))
        for p in procs:
            if p.wait() != 0:
                raise RuntimeError(f"vybench create failed:\n{node.log_tail()}")
        rate = n / (time.perf_counter() - t0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    ids = sorted(set(os.listdir(f"{node.mnt}/objects")) - before)
    if len(ids) != n:
        raise RuntimeError(f"made {len(ids)} blobs, expected {n}")
    return ids, rate


def build_persistable(node, n, shape, fanout, writers, tag):
    """n transient blobs and containers over them (flat: one container; tree: containers
    of `fanout` members under a top one), all transient. Returns (top id, the number
    of objects persisting the top publishes, create rate, seconds to make containers)."""
    ids, rate = make_blobs(node, n, writers, f"{tag}b")
    t0 = time.perf_counter()
    if shape == "flat":
        top = create_meta(node.mnt, f"{tag}top", container(ids))
        count = n + 1
    else:
        chunks = [create_meta(node.mnt, f"{tag}c{i}", container(ids[i:i + fanout]))
                  for i in range(0, n, fanout)]
        top = create_meta(node.mnt, f"{tag}top", container(chunks))
        count = n + len(chunks) + 1
    return top, count, rate, time.perf_counter() - t0


def wait_remote(nodes, targets, t0, timeout, interval=0.005):
    """Polls status.json until each node's objects.remote reaches its target; returns
    {n: seconds since t0 or None (timed out)} and the counts last seen."""
    done, seen = {}, {}
    deadline = t0 + timeout
    while len(done) < len(nodes) and time.perf_counter() < deadline:
        for node in nodes:
            if node.n in done:
                continue
            seen[node.n] = node.status()["objects"]["remote"]
            if seen[node.n] >= targets[node.n]:
                done[node.n] = time.perf_counter() - t0
        time.sleep(interval)
    return {node.n: done.get(node.n) for node in nodes}, seen


# --- 1. replication latency ----------------------------------------------------------

def poll_stat(objects_dir, conn, poll_s):
    """The observer on node 2: gets (id, t_created_ns) from the pipe, stat()s each until
    it exists. Sends back the latencies (ns) and how many never showed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent ends us
    pending, lat, deadline = [], [], None
    conn.send("ready")
    while True:
        # With ids outstanding, pause poll_s (nanosleep: Connection.poll() would round a
        # timeout up to whole milliseconds) and take what came meanwhile; else wait for ids.
        if pending and poll_s:
            time.sleep(poll_s)
        if conn.poll(0 if pending else (0.05 if deadline else None)):
            while True:
                msg = conn.recv()
                if msg is None:
                    deadline = time.monotonic() + 10
                else:
                    pending.append((f"{objects_dir}/{msg[0]}", msg[1]))
                if not conn.poll(0):
                    break
        left = []
        for path, t in pending:
            try:
                os.stat(path)
            except FileNotFoundError:
                left.append((path, t))
                continue
            lat.append(time.monotonic_ns() - t)
        pending = left
        if deadline and (not pending or time.monotonic() > deadline):
            break
    conn.send({"latencies_ns": lat, "missing": len(pending)})


def case_latency(args):
    rate, total = args.rate, int(args.rate * args.seconds)
    ctx = multiprocessing.get_context("fork")
    runs, lat_all = [], []
    with Cluster() as c:
        c.start(1, 2, 3)
        n1, n2 = c[1], c[2]
        for r in range(args.runs):
            before = n2.counters()
            mine, theirs = ctx.Pipe()
            observer = ctx.Process(target=poll_stat,
                                   args=(f"{n2.mnt}/objects", theirs, args.poll_us / 1e6))
            observer.start()
            try:
                assert mine.recv() == "ready"
                create_ns = []
                step = 1e9 / rate
                t_start = time.monotonic_ns()
                for i in range(total):
                    target = t_start + int(i * step)
                    now = time.monotonic_ns()
                    if target > now:
                        time.sleep((target - now) / 1e9)
                    t = time.monotonic_ns()
                    oid = create_meta(n1.mnt, f"r{r}x{i}",
                                      {"typename": "bench", "transient": False, "i": i})
                    done = time.monotonic_ns()
                    mine.send((oid, done))
                    create_ns.append(done - t)
                elapsed = (time.monotonic_ns() - t_start) / 1e9
                mine.send(None)
                out = mine.recv()
                observer.join(30)
            finally:
                if observer.is_alive():
                    observer.terminate()
                    observer.join()
            after = n2.counters()
            lat = sorted(x / 1e6 for x in out["latencies_ns"])
            lat_all += lat
            runs.append({"objects": total, "achieved_per_s": total / elapsed,
                         "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                         "max_ms": lat[-1] if lat else None,
                         "missing": out["missing"],
                         "create_p50_ms": pct(sorted(x / 1e6 for x in create_ns), 50),
                         "gaps": after["gaps"] - before["gaps"],
                         "snapshots_taken": after["snapshots_taken"] - before["snapshots_taken"]})
            print(f"  latency run {r + 1}: p50 {runs[-1]['p50_ms']:.3f} ms, p99 "
                  f"{runs[-1]['p99_ms']:.3f} ms, {runs[-1]['achieved_per_s']:,.0f} creates/s, "
                  f"missing {out['missing']}", flush=True)
    lat_all.sort()
    return {"rate": rate, "seconds": args.seconds, "poll_us": args.poll_us, "runs": runs,
            "p50_ms": pct(lat_all, 50), "p99_ms": pct(lat_all, 99), "p999_ms": pct(lat_all, 99.9),
            "max_ms": lat_all[-1] if lat_all else None,
            "achieved_per_s": statistics.median(r["achieved_per_s"] for r in runs),
            "missing": sum(r["missing"] for r in runs),
            "create_p50_ms": statistics.median(r["create_p50_ms"] for r in runs)}


def pct(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


# --- 2. sustained replication ----------------------------------------------------------

def case_sustained(args):
    shapes = [s for s in args.shapes.split(",") if s]
    out = {"objects": args.objects, "fanout": args.fanout, "writers": args.writers, "shapes": {}}
    creates = []
    with Cluster() as c:
        c.start(1, 2, 3)
        n1, peers = c[1], [c[2], c[3]]
        for r in range(args.runs):
            for shape in (shapes if r % 2 == 0 else shapes[::-1]):
                tag = f"s{r}{shape[0]}"
                top, count, rate, cont_s = build_persistable(n1, args.objects, shape, args.fanout,
                                                              args.writers, tag)
                creates.append(rate)
                before = {p.n: p.counters() for p in peers}
                t0 = time.perf_counter()
                os.setxattr(f"{n1.mnt}/objects/{top}", PERSIST, b"1")
                set_s = time.perf_counter() - t0
                targets = {p.n: before[p.n]["remote"] + count for p in peers}
                times, _ = wait_remote(peers, targets, t0, args.timeout)
                after = {p.n: p.counters() for p in peers}
                run = {"count": count, "setxattr_s": set_s, "containers_s": cont_s,
                       "create_per_s": rate, "peers": {}}
                for p in peers:
                    b, a, t = before[p.n], after[p.n], times[p.n]
                    run["peers"][p.n] = {
                        "seconds": t, "per_s": count / t if t else None,
                        "reached": a["remote"] - b["remote"],
                        "gaps": a["gaps"] - b["gaps"],
                        "snapshots_taken": a["snapshots_taken"] - b["snapshots_taken"],
                        "applied": a["applied"] - b["applied"]}
                run["per_s_slowest"] = (count / max(times.values())
                                        if all(times.values()) else None)
                out["shapes"].setdefault(shape, {"runs": []})["runs"].append(run)
                pp = run["peers"]
                print(f"  sustained run {r + 1} {shape}: {count:,} objects, setxattr "
                      f"{set_s:.2f} s, "
                      + ", ".join(f"node {n} {fmt_s(v['seconds'])} (gaps {v['gaps']}, snapshots "
                                  f"{v['snapshots_taken']})" for n, v in pp.items())
                      + f"; containers {cont_s:.2f} s, creates {rate:,.0f}/s", flush=True)
    for shape, s in out["shapes"].items():
        runs = s["runs"]
        ok = [r["per_s_slowest"] for r in runs if r["per_s_slowest"]]
        s["per_s_per_peer"] = statistics.median(ok) if len(ok) == len(runs) else None
        s["setxattr_s"] = statistics.median(r["setxattr_s"] for r in runs)
        s["containers_s"] = statistics.median(r["containers_s"] for r in runs)
        s["gaps"] = sum(p["gaps"] for r in runs for p in r["peers"].values())
        s["snapshots_taken"] = sum(p["snapshots_taken"] for r in runs for p in r["peers"].values())
        s["count"] = runs[0]["count"]
    out["create_per_s"] = statistics.median(creates)
    return out


def fmt_s(t):
    return f"{t:.2f} s" if t is not None else "timed out"


# --- 3. remote fetch ---------------------------------------------------------------------
