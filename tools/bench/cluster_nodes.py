"""bench_cluster.py's cluster: free loopback ports, a node (a `-f` daemon in a temp
dir), three of them as a cluster, and waiting until every node sees the others up."""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import bench_zero_copy as bz

VINEYARDFS = os.path.join(bz.BUILD, "vineyardfs")
VYBENCH = os.path.join(bz.BUILD, "vybench")
CASES = ("latency", "sustained", "fetch", "join")
PERSIST = "user.vineyard.persist"


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
        bz.unmount_and_reap(self.proc, self.mnt, 60)
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
