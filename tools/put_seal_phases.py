#!/usr/bin/python3
"""put_seal_phases.py BUILD_DIR N [--stream] [--perf=FILE] [--strace=FILE] (as root, with
/usr/bin/python3): one daemon (-f -d, size=4G, durability=async) from BUILD_DIR (a directory
holding `vineyardfs`), N puts of a list of 1,000 float64 arrays of 1 KiB and of a 1,000-column
DataFrame; prints each put's wall time, the daemon's CPU per put (all threads, /proc, 10 ms
ticks; waits for the durable writer unless --stream) and, from the seal's -d log lines, the
thread CPU of each phase (read+parse, blob files, records, drop upload), sorted. --perf /
--strace attach `perf record -g` / `strace -c -f` to the daemon. README "Per-object cost"."""
import os, re, subprocess, sys, tempfile, time, json, shutil
build, n = sys.argv[1], int(sys.argv[2])
stream = "--stream" in sys.argv
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import numpy as np, pandas as pd
import vineyardfs
work = tempfile.mkdtemp(prefix="sealfiles-pl-")
mnt, arena, state = (os.path.join(work, d) for d in ("mnt", "arena", "state"))
os.makedirs(mnt)
log = open(os.path.join(work, "log"), "wb")
binary = os.path.join(build, "fs", "vineyardfs") if os.path.exists(os.path.join(build, "fs", "vineyardfs")) else os.path.join(build, "vineyardfs")
p = subprocess.Popen([binary, "vineyard", mnt, "-f", "-d", "-o", f"arena={arena},state={state},size=4G,durability=async"],
                     stdout=log, stderr=log, start_new_session=True)
aux = []
try:
    t0 = time.time()
    while not os.path.ismount(mnt):
        time.sleep(0.01)
        if time.time() - t0 > 60: raise RuntimeError("no mount")
    time.sleep(0.5)
    def cpu():
        f = open(f"/proc/{p.pid}/stat").read().split(")")[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    def quiet():
        for _ in range(2000):
            st = json.load(open(os.path.join(mnt, "status.json")))
            if st.get("store", st).get("pending_durable", 0) == 0: break
            time.sleep(0.005)
    for a in sys.argv[3:]:
        if a.startswith("--perf="):
            aux.append(subprocess.Popen(["perf", "record", "-g", "-o", a[7:], "-p", str(p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if a.startswith("--strace="):
            aux.append(subprocess.Popen(["strace", "-c", "-f", "-o", a[9:], "-p", str(p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if aux: time.sleep(1)
    client = vineyardfs.connect(mnt)
    rng = np.random.default_rng(7)
    values = {"list": [rng.random(128) for _ in range(1000)],
              "df": pd.DataFrame({f"c{i}": rng.random(128) for i in range(1000)})}
    for key, v in values.items():
        walls, cpus = [], []
        for i in range(n):
            if not stream: quiet()
            c0, w0 = cpu(), time.perf_counter()
            client.put(v)
            walls.append((time.perf_counter() - w0) * 1e3)
            if not stream: quiet()
            cpus.append((cpu() - c0) * 1e3)
        print(key, "wall ms", sorted(round(x, 1) for x in walls), "daemon cpu ms incl writer", sorted(round(x) for x in cpus))
    for a in aux: a.send_signal(2); a.wait()
finally:
    subprocess.run(["fusermount3", "-u", "-z", mnt])
    p.wait()
    subprocess.run(["umount", "-l", arena], stderr=subprocess.DEVNULL)
    log.close()
    lines = open(os.path.join(work, "log"), errors="replace").read().splitlines()
    rp = [l for l in lines if "read+parse" in l]
    bf = [l for l in lines if "blob files" in l]
    def nums(ls, pat):
        return [int(m.group(1)) for l in ls for m in [re.search(pat, l)] if m]
    for name, ls, pat in (("read+parse", rp, r"read\+parse (\d+) us"), ("blob files", bf, r"blob files (\d+) us"),
                          ("records", bf, r"records (\d+) us"), ("drop", bf, r"drop upload (\d+) us")):
        v = nums(ls, pat)
        print(name, "us: list", sorted(v[0::1][:n]), "df", sorted(v[n:2*n]))
    shutil.rmtree(work, ignore_errors=True)
