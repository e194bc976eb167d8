"""bench_objects.py's strace group: the daemon's system calls and FUSE requests per
created object."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import bench_zero_copy as bz
import vineyardfs

from . import binaries
from .objects_daemon import Daemon, Meter, _children, run_json
from .objects_fs import payload_file, writers

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

        strace_other_ops(d, work, payload, out)
    finally:
        d.stop()
    res["strace"] = out
    print(f"  daemon syscalls per create: {out['syscalls_per_create_total']:.1f}; FUSE requests "
          f"per create: {out['fuse_requests_per_create_total']:.2f} "
          + ", ".join(f"{k} {v:.2f}" for k, v in out["fuse_requests_per_create"].items()),
          flush=True)


def strace_other_ops(d, work, payload, out):
    """Every request of the other per-object operations, 200 of each, into `out`."""
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
    run_json([binaries.VYBENCH, "openmap", ldata, 10])
    small = client.put(b"x" * 1024)
    spair = client.put((1, 2.5))
    for fn in (lambda: client.get_meta(small), lambda: client.get(small),
               lambda: client.get(spair)):
        fn()  # the entries are cached from here on, as in the timed cases
    run_json([binaries.VYBENCH, "openmap", data, 10])
    d.quiet()
    other = {
        "create_pair": lambda: writers(f"{d.mnt}/new", k, 1, pair_json, "tp", ".meta.json"),
        "rmdir": lambda: run_json([binaries.VYBENCH, "rmdirs", rm_list]),
        "openmap_1m": lambda: run_json([binaries.VYBENCH, "openmap", data, k]),
        "openmap_passthrough": lambda: run_json([binaries.VYBENCH, "openmap", ldata, k]),
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
