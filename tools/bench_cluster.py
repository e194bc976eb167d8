#!/usr/bin/python3
"""The cluster benchmark: three daemons on loopback, the cluster issue's four figures.

Each case mounts its own fresh cluster of three nodes in a temp dir (`-f` daemons,
`instance=1..3`, `listen=`/`peer=` on free 127.0.0.1 ports, every node a peer of
every other, `durability=none`, default heartbeat), and unmounts and frees
everything at exit, also on Ctrl-C:

  latency    node 1 creates persisted metadata objects (`new/<x>.meta.json`), paced at
             --rate per second for --seconds; a separate process polls os.stat() of
             node 2's objects/<id> for each id, learned through a pipe as soon as
             readlink() on node 1 returns. Latency = readlink returned -> stat succeeded
             (CLOCK_MONOTONIC, one machine). p50/p99 over every object of every run.
  sustained  node 1 makes --objects transient 64-byte blobs (--writers vybench
             processes; their rate is the plain create rate, reported for context),
             then containers over them (untimed), then setxattr(user.vineyard.persist)
             on the top container: timed from the setxattr until nodes 2 and 3 both
             count every object in objects.remote; cluster.gaps and snapshots_taken
             must not grow. Shapes: `flat` = one container holding all N (one metadata
             object with N member fields), `tree` = containers of --fanout members
             under one top container.
  fetch      blobs of --gib written on node 1 and persisted; node 2 reads `data` (the
             first read fetches it over ZeroMQ, 4 MiB chunks), against read() of a file
             of the same size on /dev/shm. GB = 10^9 bytes. For context, in the same
             run: filling a new file in node 2's arena tmpfs (fresh memory), the cached
             re-read, and a second fetch into memory that was freed just before (see
             case_fetch: this VM hands freed memory back to its host).
  join       nodes 1 and 2 hold --join-objects persisted objects (made as in
             `sustained`, tree shape); node 3 starts from an empty state: timed from
             starting the daemon until its objects.remote reaches the count; the mount
             (until status.json answers) separately. Node 3 is wiped between runs.

Usage: sudo tools/bench_cluster.py [--runs 3] [--only latency,sustained,fetch,join]
           [--rate 1000] [--seconds 5] [--objects 50000] [--shapes flat,tree]
           [--fanout 1000] [--writers 4] [--gib 1] [--settle 3] [--join-objects 100000]
           [--out bench-results/cluster.json]
"""
import argparse
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_zero_copy as bz  # noqa: E402  (vybench, status, save_results, wait_until)

VINEYARDFS = os.path.join(bz.BUILD, "vineyardfs")
VYBENCH = os.path.join(bz.BUILD, "vybench")
CASES = ("latency", "sustained", "fetch", "join")
PERSIST = "user.vineyard.persist"


# --- the cluster --------------------------------------------------------------------

def free_ports(count):
    """A base port B such that B .. B+count-1 are free on 127.0.0.1 (each node uses
    its port for PUB and the next for ROUTER), below the ephemeral range: a peer that
    keeps reconnecting to a node that is not up could otherwise be given that node's
    port as its own source port (a TCP self-connect) and hold it."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    top = min(low, 32768) - count
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        base = rng.randrange(max(1024, top - 12000), top)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


class Node:
    """One daemon, in the foreground (-f): its pid is ours to wait for."""

    def __init__(self, cluster, n):
        self.cluster, self.n = cluster, n
        self.port = cluster.ports[n]
        self.dir = os.path.join(cluster.work, f"vy{n}")
        self.mnt, self.arena, self.state = (os.path.join(self.dir, d)
                                            for d in ("mnt", "arena", "state"))
        self.log = os.path.join(cluster.work, f"vy{n}.log")
        self.proc = None
        self.mount_s = None

    def start(self, timeout=60):
        """Starts the daemon and returns when status.json answers; mount_s is the time
        from starting the process to that. Returns the start time (perf_counter). A
        new node whose port was taken meanwhile (by some connection's source port) is
        wiped and started again, up to 5 times."""
        fresh = not os.path.exists(self.state)
        for attempt in range(5):
            try:
                return self._start(timeout)
            except RuntimeError as e:
                if not fresh or "Address already in use" not in str(e) or attempt == 4:
                    raise
                print(f"  vy{self.n}: port {self.port} or {self.port + 1} in use, "
                      "starting again", file=sys.stderr)
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], stderr=subprocess.DEVNULL)
                subprocess.run(["umount", "-l", self.arena], stderr=subprocess.DEVNULL)
                shutil.rmtree(self.dir, ignore_errors=True)
                time.sleep(0.5)

    def _start(self, timeout):
        os.makedirs(self.mnt, exist_ok=True)
        peers = "".join(f",peer={p}" for m, p in self.cluster.ports.items() if m != self.n)
        opts = (f"instance={self.n},arena={self.arena},state={self.state},"
                f"size={self.cluster.size},listen={self.port}{peers},durability=none{self.cluster.extra}")
        with open(self.log, "ab") as log:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen([VINEYARDFS, f"vy{self.n}", self.mnt, "-f", "-o", opts],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)  # Ctrl-C is ours to handle
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError(f"vy{self.n} exited ({code}):\n{self.log_tail()}")
            if os.path.ismount(self.mnt):
                try:
                    bz.status(self.mnt)
                    break
                except (OSError, ValueError):
                    pass
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"vy{self.n} did not mount in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.002)
        self.mount_s = time.perf_counter() - t0
        return t0

    def stop(self):
        if self.proc is None:
            return
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=60)  # the daemon exits after the unmount
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        subprocess.run(["umount", "-l", self.arena], stderr=subprocess.DEVNULL)

    def wipe(self):
        """Stops the daemon and removes its arena, state and log: the next start is a
        new node."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        if os.path.exists(self.log):
            os.unlink(self.log)

    def status(self):
        return bz.status(self.mnt)

    def counters(self):
        s = self.status()
        c = s["cluster"]
        return {"remote": s["objects"]["remote"], "gaps": c["gaps"],
                "snapshots_taken": c["snapshots_taken"], "applied": c["applied"],
                "published": c["published"], "fetch_bytes": c["fetch_bytes"],
                "malformed": c["malformed"], "rejected": c["rejected"]}

    def log_tail(self, lines=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


class Cluster:
    """Three nodes on loopback in a fresh temp dir; every node lists every other as a
    peer. A context manager: leaving it unmounts everything and removes the dir."""

    def __init__(self, nodes=3, size="2G", extra=""):
        self.work = tempfile.mkdtemp(prefix="vyfs-cluster-")
        self.size = size
        self.extra = extra  # more -o options for every node
        base = free_ports(2 * nodes)
        self.ports = {n: base + 2 * (n - 1) for n in range(1, nodes + 1)}
        self.nodes = {n: Node(self, n) for n in self.ports}

    def __getitem__(self, n):
        return self.nodes[n]

    def start(self, *ns):
        for n in ns:
            self.nodes[n].start()
        wait_up([self.nodes[n] for n in ns])

    def close(self):
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C waits for this
        try:
            for node in self.nodes.values():
                try:
                    node.stop()
                except Exception as e:  # keep stopping the others
                    print(f"stopping vy{node.n}: {e}", file=sys.stderr)
            shutil.rmtree(self.work, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_up(nodes, timeout=30):
    """Until every node sees every other as up."""
    def up():
        for a in nodes:
            for b in nodes:
                if a is not b:
                    try:
                        with open(f"{a.mnt}/instances/{b.n}.json") as f:
                            if json.load(f)["status"] != "up":
                                return False
                    except (OSError, ValueError):
                        return False
        return True
    if not bz.wait_until(up, timeout):
        raise RuntimeError("the nodes did not see each other up")


# --- objects --------------------------------------------------------------------------

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

def verdict(ok):
    return "met" if ok else "not met"


def print_table(res):
    c = res["cases"]
    print("| figure | result | target |")
    print("| --- | --- | --- |")
    if "latency" in c:
        lat = c["latency"]
        print(f"| replication latency at {lat['rate']:,} persisted objects/s, node 1 -> node 2 "
              f"(create returned -> stat succeeds), {len(lat['runs'])} x {lat['seconds']:g} s | "
              f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
              f"(max {lat['max_ms']:.1f} ms; "
              f"{lat['achieved_per_s']:,.0f} creates/s achieved, {lat['missing']} missing) | "
              f"p50 <= 2 ms, p99 <= 10 ms: "
              f"{verdict(lat['p50_ms'] <= 2 and lat['p99_ms'] <= 10 and not lat['missing'])} |")
    if "sustained" in c:
        s = c["sustained"]
        for shape, v in s["shapes"].items():
            what = (f"one container of {s['objects']:,}" if shape == "flat" else
                    f"containers of {s['fanout']:,} under one")
            rate = v["per_s_per_peer"]
            ok = rate is not None and rate >= 10000 and v["gaps"] == 0 and v["snapshots_taken"] == 0
            print(f"| sustained replication to 2 peers, persisting {v['count']:,} objects at once "
                  f"({what}; setxattr -> both peers have all) | "
                  f"{bz.fmt(rate) if rate else 'timed out'} objects/s per peer (setxattr "
                  f"{v['setxattr_s']:.2f} s), gaps {v['gaps']}, snapshots {v['snapshots_taken']} | "
                  f">= 10,000/s, no gaps: {verdict(ok)} |")
        print(f"| create 64 B blobs on node 1, {s['writers']} writer processes (context) | "
              f"{bz.fmt(s['create_per_s'])} objects/s | |")
    if "fetch" in c:
        f = c["fetch"]
        print(f"| remote fetch of a {f['bytes'] / (1 << 30):g} GiB blob, node 2 reads node 1's "
              f"(cold read = fetch), reserve={f['reserve'] / (1 << 30):g} GiB | {f['cold_gbs']:.2f} GB/s; /dev/shm read "
              f"{f['dev_shm_gbs']:.2f} GB/s, "
              f"ratio {f['ratio']:.2f} | >= 1 GB/s: {verdict(f['cold_gbs'] >= 1)} |")
        fills = " / ".join(f"{r['fill_gbs']:.2f}" for r in f["runs"])
        print(f"| context: the same fetch into memory freed just before; the cached re-read; "
              f"filling a new {f['bytes'] / (1 << 30):g} GiB file in node 2's arena tmpfs "
              f"just before the cold fetch, per run | {f['reused_gbs']:.2f} GB/s; "
              f"{f['warm_gbs']:.2f} GB/s; {fills} GB/s | |")
    if "join" in c:
        j = c["join"]
        ok = j["join_s"] is not None and j["join_s"] <= 3
        print(f"| join: node 3 starts empty beside {j['objects']:,} persisted objects "
              f"(daemon start -> objects.remote complete) | "
              f"{fmt_s(j['join_s'])} (mount {j['mount_s']:.3f} s) | <= 3 s: {verdict(ok)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(CASES), help="comma-separated: " + ",".join(CASES))
    ap.add_argument("--rate", type=int, default=1000, help="latency: creates per second")
    ap.add_argument("--seconds", type=float, default=5, help="latency: seconds per run")
    ap.add_argument("--poll-us", type=int, default=100,
                    help="latency: the observer's pause between stat() sweeps while ids "
                    "are outstanding")
    ap.add_argument("--objects", type=int, default=50_000, help="sustained: objects per persist")
    ap.add_argument("--shapes", default="flat,tree", help="sustained: flat, tree or both")
    ap.add_argument("--fanout", type=int, default=1000, help="tree shape: members per container")
    ap.add_argument("--writers", type=int, default=4, help="processes creating the blobs")
    ap.add_argument("--gib", type=float, default=1.0, help="fetch: blob size")
    ap.add_argument("--reserve", type=float, default=None,
                    help="fetch: reserve= of every node in GiB (default: --gib; 0: none)")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="fetch: seconds before the cold fetch (freed memory returns to the host)")
    ap.add_argument("--join-objects", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=120, help="per wait for replication")
    ap.add_argument("--out", default=os.path.join(bz.ROOT, "bench-results", "cluster.json"))
    args = ap.parse_args()
    only = [x for x in args.only.split(",") if x]
    for x in only:
        if x not in CASES:
            ap.error(f"unknown case {x!r}")
    if os.geteuid() != 0:
        ap.error("run as root (FUSE, tmpfs arenas)")
    # SIGTERM and SIGHUP unwind like Ctrl-C, through every cleanup.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    res = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": bz._cpu()},
           "runs": args.runs, "options": vars(args), "cases": {}}
    fns = {"latency": case_latency, "sustained": case_sustained, "fetch": case_fetch,
           "join": case_join}
    t0 = time.perf_counter()
    try:
        for case in CASES:
            if case in only:
                print(f"{case}:", flush=True)
                res["cases"][case] = fns[case](args)
    except KeyboardInterrupt:
        print("interrupted (everything unmounted)", file=sys.stderr)
        return 130
    res["seconds"] = time.perf_counter() - t0
    bz.save_results(res, args.out)
    print()
    print_table(res)
    print(f"\n{res['machine']['cpus']} CPUs, {res['machine']['cpu']}, kernel "
          f"{res['machine']['kernel']}; {res['seconds']:.0f} s")
    print("results:", args.out)


if __name__ == "__main__":
    sys.exit(main())
