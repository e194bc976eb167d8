"""bench_objects.py's daemon: a fresh vineyardfs mounted in the foreground in a temp
dir, the commands it runs (tracked, so Ctrl-C ends them by pid) and its meter (CPU
time and FUSE requests per operation)."""
import json
import os
import subprocess
import time

import bench_zero_copy as bz

from . import binaries

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

    def __init__(self, work, name, opts, flags=()):
        self.dir = os.path.join(work, name)
        self.flags = list(flags)  # more command-line flags, e.g. -d
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
            self.proc = subprocess.Popen([binaries.VINEYARDFS, "vineyard", self.mnt, "-f", *self.flags, "-o", self.opts],
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
            bz.unmount_and_reap(self.proc, self.mnt, 120)
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
