"""bench_objects.py's output: the table of results and the chart."""

from .objects_stats import fmt, spread

ORDER = ["create_1w", "create_2w", "create_pair", "rmdir", "openmap_1m", "openmap_1g",
         "get_meta", "get_object", "get_blob", "get_pair", "put_list", "put_df"]


def print_table(res):
    print(f"| per-object operation | vineyardfs | /dev/shm | ratio | daemon CPU per op | "
          f"counted requests per op | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key in ORDER:
        c = res["cases"].get(key)
        if not c:
            continue
        unit = c["unit"].replace("objects/s", "/s")
        shm = spread(c["dev_shm"]) + f" {unit}" if "dev_shm" in c else ""
        ratio = (f"{c['ratio']['median']:.3f} ({c['ratio']['min']:.3f}–{c['ratio']['max']:.3f})"
                 if "ratio" in c else "")
        po = c.get("per_op", {})
        cpu = ""
        if po and "daemon_cpu_us_pooled" in po:
            cpu = f"{po['daemon_cpu_us_pooled']:.0f} µs"
            if po["daemon_cpu_ticks"] < 20:  # under 0.2 s in all: too few clock ticks
                cpu += f" ({po['daemon_cpu_ticks']} clock ticks in all: coarse)"
        elif po:
            cpu = f"{po['daemon_cpu_us']['median']:.0f} µs"
        req = (f"{po['requests_total']:.2f} (" + ", ".join(
            f"{k} {v:.2g}" for k, v in po["requests"].items()) + ")") if po else ""
        label = c["label"]
        if "ms_per_put" in c:
            label += (f" ({c['objects_per_put']['vineyardfs']:,} objects per put, "
                      f"{c['ms_per_put']['vineyardfs']:.1f} ms; /dev/shm "
                      f"{c['ms_per_put']['dev_shm']:.1f} ms)")
        print(f"| {label} | {spread(c['vineyardfs'])} {unit} | {shm} | {ratio} | {cpu} | "
              f"{req} | {c['target']} |")
    s = res.get("scale")
    if s:
        for size, at in s["sizes"].items():
            print(f"| remount with {int(size):,} objects (mount + all listed) | "
                  f"{spread(at['remount_listed_s'])} s = "
                  f"{at['remount_us_per_object']['median']:.1f} µs/object (mount "
                  f"{at['remount_mount_s']['median']:.2f} s) | | | | | |")
        print(f"| remount of an empty store (the fixed cost) | "
              f"{spread(s['remount_empty_s'])} s | | | | | |")
        print(f"| per-object remount time, {max(map(int, s['sizes'])):,} over "
              f"{min(map(int, s['sizes'])):,} | {s['per_object_growth']:.2f}x | | | | | ≤ 1.3x |")
        b = s["dev_shm"]
        print(f"| creation rate, first / last {s['window']:,} of {s['objects']:,} (1 writer) | "
              f"{fmt(s['first_window_per_s'])} / {fmt(s['last_window_per_s'])} /s "
              f"({s['last_over_first']:.2f}) | {fmt(b['first_window_per_s'])} / "
              f"{fmt(b['last_window_per_s'])} /s (files kept, {b['objects']:,}) | | "
              f"{s['daemon_cpu_us_first_chunk']:.0f} → {s['daemon_cpu_us_last_chunk']:.0f} µs | | "
              f"within 20% |")
        a = s.get("alternating")
        if a:
            print(f"| creation rate, last {s['window']:,} of {s['objects']:,} against the first "
                  f"{s['window']:,} of an empty store, chunks alternating | "
                  f"{fmt(a['last_window_per_s'])} / {fmt(a['empty_window_per_s'])} /s "
                  f"({a['last_over_empty']:.2f}; per pair of chunks {spread(a['pair_ratios'])}) "
                  f"| | | daemon CPU {a['pair_cpu_ratios']['median']:.2f}x | | within 20% |")
        big = s["sizes"][str(max(map(int, s["sizes"])))]
        print(f"| daemon RSS per object at {big['objects']:,} | "
              f"{big['rss_per_object_bytes']:,.0f} B added ({big['rss_total_per_object_bytes']:,.0f}"
              f" B total RSS / objects; {big['rss_after_remount_and_list_bytes'] / big['objects']:,.0f}"
              f" B total after a remount and a listing) | | | | | ≤ 1 KiB |")
    lo = res.get("leftover") or (s or {}).get("leftover")
    if lo:
        print(f"| create with {lo['links']:,} links left in new/ vs an empty new/ | "
              f"{spread(lo['held_per_s'])} /s against {spread(lo['empty_per_s'])} /s | | "
              f"{lo['ratio']['median']:.2f} ({lo['ratio']['min']:.2f}–{lo['ratio']['max']:.2f}) "
              f"| | | ≈ 1 |")
    st = res.get("strace")
    if st:
        print(f"\ndaemon syscalls per created object (strace -c -f, {st['creates']:,} creates): "
              f"{st['syscalls_per_create_total']:.1f}: " + ", ".join(
                  f"{k} {v:.2f}" for k, v in list(st["syscalls_per_create"].items())[:14]))
        print(f"FUSE requests per created object (opcodes read from /dev/fuse): "
              f"{st['fuse_requests_per_create_total']:.2f}: " + ", ".join(
                  f"{k} {v:.2f}" for k, v in st["fuse_requests_per_create"].items()))
        for name, ops in st.get("fuse_requests_per_op", {}).items():
            print(f"FUSE requests per {name}: {sum(ops.values()):.2f}: " + ", ".join(
                f"{k} {v:.2f}" for k, v in ops.items()))
        print(f"status.json counters per create: " + ", ".join(
            f"{k} {v:.2f}" for k, v in st["status_json_requests_per_create"].items()))


def chart(res, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no matplotlib: no chart)")
        return
    keys = [k for k in ORDER if k in res["cases"] and "ratio" in res["cases"][k]]
    s = res.get("scale")
    fig, axes = plt.subplots(1, 2 if s else 1, figsize=(14 if s else 9, 5.5), squeeze=False)
    ax = axes[0][0]
    if keys:
        med = [res["cases"][k]["ratio"]["median"] for k in keys]
        lo = [m - res["cases"][k]["ratio"]["min"] for k, m in zip(keys, med)]
        hi = [res["cases"][k]["ratio"]["max"] - m for k, m in zip(keys, med)]
        ys = range(len(keys))
        ax.barh(list(ys), med, xerr=[lo, hi], color="tab:blue", capsize=3)
        ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        ax.set_yticks(list(ys))
        ax.set_yticklabels(keys)
        ax.invert_yaxis()
        ax.set_xlabel("ratio to the same on /dev/shm (1 = as fast; whiskers: min-max of runs)")
        ax.set_title(f"per-object cost, medians of {res['runs']} runs")
    if s:
        ax2 = axes[0][1]
        xs = [c["objects"] for c in s["chunks"]]
        ax2.plot(xs, [c["per_s"] for c in s["chunks"]], label="creates/s (1 writer)")
        ax2.set_xlabel("objects in the store")
        ax2.set_ylabel("creates/s per chunk")
        ax2.set_ylim(bottom=0)
        if s.get("empty_chunks"):
            ax2.plot([c["objects"] for c in s["empty_chunks"]],
                     [c["per_s"] for c in s["empty_chunks"]], "o", color="tab:green",
                     label="an empty store, alternating with the last window")
            ax2.legend(loc="lower left", fontsize=8)
        ax3 = ax2.twinx()
        ax3.plot(xs, [c["daemon_cpu_us"] for c in s["chunks"]], color="tab:red",
                 label="daemon CPU µs/object")
        ax3.set_ylabel("daemon CPU µs per object", color="tab:red")
        ax3.set_ylim(bottom=0)
        ax2.set_title("creation as the store grows")
    m = res["machine"]
    fig.suptitle(f"vineyardfs bench_objects ({m['cpus']} CPUs, {m['cpu']}, kernel {m['kernel']})")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
