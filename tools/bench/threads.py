"""Each thread of a process from /proc: its name, CPU time from schedstat (ns, not the
10 ms ticks of /proc/<pid>/stat) and context switches (voluntary + involuntary)."""
import os


def threads(pid):
    """tid -> (name, CPU ns, context switches); threads that exit meanwhile are left out."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/schedstat") as f:
                ns = int(f.read().split()[0])
            with open(f"{base}/comm") as f:
                name = f.read().strip()
            sw = 0
            with open(f"{base}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:
                        sw += int(line.split(":")[1])
            out[tid] = (name, ns, sw)
        except OSError:
            pass  # the thread exited meanwhile
    return out
