"""bench_objects.py's statistics: medians and spreads of runs, the vineyardfs vs
/dev/shm result of a case and its line of output, and the order the two targets run in
(alternating)."""
import statistics

from .objects_daemon import CLK_TCK


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def case_result(label, unit, higher, runs_vfs, runs_shm, target="", per_op=None, note=""):
    """Both targets' runs; ratio per run = vineyardfs over /dev/shm for rates, the
    inverse for times (1.0 = as fast as /dev/shm)."""
    out = {"label": label, "unit": unit, "higher": higher, "target": target, "note": note,
           "vineyardfs": summarize(runs_vfs)}
    if runs_shm:
        out["dev_shm"] = summarize(runs_shm)
        ratios = [(v / s if higher else s / v) for v, s in zip(runs_vfs, runs_shm)]
        out["ratio"] = summarize(ratios)
    if per_op:
        # CPU times come in clock ticks (10 ms): the figure that counts is the total
        # over every run divided by every operation (pooled); per run for the spread.
        out["per_op"] = {"daemon_cpu_us": summarize([p["daemon_cpu_us"] for p in per_op]),
                         "daemon_cpu_us_pooled": sum(p["daemon_cpu_s"] for p in per_op) * 1e6
                         / sum(p["ops"] for p in per_op),
                         "daemon_cpu_ticks": round(sum(p["daemon_cpu_s"] for p in per_op) * CLK_TCK),
                         "requests_total": statistics.median(p["requests_total"] for p in per_op),
                         "requests": {k: statistics.median(p["requests"].get(k, 0) for p in per_op)
                                      for k in sorted({k for p in per_op for k in p["requests"]})}}
    return out


def alternate(runs, fn, targets=("vineyardfs", "dev_shm")):
    """fn(target, run) -> value; the order of the targets alternates run by run."""
    vals = {t: [] for t in targets}
    for r in range(runs):
        for t in (targets if r % 2 == 0 else tuple(reversed(targets))):
            vals[t].append(fn(t, r))
    return vals


def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def spread(s):
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def report(key, c):
    line = f"  {key}: vineyardfs {spread(c['vineyardfs'])} {c['unit']}"
    if "dev_shm" in c:
        line += f", /dev/shm {spread(c['dev_shm'])}, ratio {c['ratio']['median']:.3f}"
    if "per_op" in c:
        line += (f"; daemon CPU {c['per_op']['daemon_cpu_us_pooled']:.0f} us/op, counted "
                 f"requests {c['per_op']['requests_total']:.2f}/op")
    if "client_cpu_us_per_object" in c:
        line += f"; client CPU {c['client_cpu_us_per_object']['median']:.1f} us/object"
    print(line, flush=True)
