"""bench_objects.py's scale and leftover groups: filling a store, remounts, links left
in new/."""
import os
import shutil
import statistics
import time

from . import binaries
from .objects_daemon import Daemon, run_json
from .objects_fs import payload_file, writers
from .objects_python import time_calls
from .objects_stats import summarize


def fill(dirpath, upto, start, chunk, payload, tag, keep, d=None):
    """Creates objects start..upto in chunks (1 writer); per chunk: (objects at its
    end, objects/s, daemon CPU us per object or None, objects in it)."""
    out = []
    n = start
    while n < upto:
        k = min(chunk, upto - n)
        c0 = d.cpu_s() if d else None
        rate, links = writers(dirpath, k, 1, payload, f"{tag}{n}-", ".blob", keep=keep)
        if d and links != k:
            raise RuntimeError("uploads did not become objects")
        cpu = (d.cpu_s() - c0) / k * 1e6 if d else None
        n += k
        out.append((n, rate, cpu, k))
    return out


def window_rate(chunks, lo, hi):
    """Objects/s over the chunks that end in (lo, hi] (each chunk counted whole, by
    its own count: the objects vyfill made between two windows are no chunk's)."""
    total = secs = 0.0
    for n, rate, _, k in chunks:
        if lo < n <= hi:
            total += k
            secs += k / rate
    return total / secs if secs else None


def unlink_all(dirpath):
    for name in os.listdir(dirpath):
        os.unlink(f"{dirpath}/{name}")


def leftover_links(args, d, payload, out):
    """Create rate through new/ (client pattern, links unlinked) with --leftover links
    left in new/ against an empty new/, alternating, --runs times. Both follow the same
    history: --leftover creates that keep their links, removed before the empty case
    and after the held one, then a quiet daemon."""
    n, left = max(1000, min(args.creates, 5000)), args.leftover
    empty, held, ratios = [], [], []
    entries = None
    for r in range(args.runs):
        rates = {}
        for case in (("empty", "held") if r % 2 == 0 else ("held", "empty")):
            _, links = writers(f"{d.mnt}/new", left, 1, payload, f"left{r}{case}-", ".blob", "keep")
            if links != left:
                raise RuntimeError("leftover uploads did not become links")
            if case == "empty":
                unlink_all(f"{d.mnt}/new")
            d.quiet()  # their payload copies done: only the links differ
            if case == "held":
                entries = d.status()["new"]["entries"]
            rates[case] = writers(f"{d.mnt}/new", n, 1, payload, f"o{r}{case}-", ".blob")[0]
            if case == "held":
                unlink_all(f"{d.mnt}/new")
        empty.append(rates["empty"])
        held.append(rates["held"])
        ratios.append(rates["held"] / rates["empty"])
    out["leftover"] = {"links": left, "creates": n, "entries_held": entries,
                       "empty_per_s": summarize(empty), "held_per_s": summarize(held),
                       "ratio": summarize(ratios)}
    print(f"  create with {left:,} links left in new/: {statistics.median(held):,.0f}/s, "
          f"empty new/: {statistics.median(empty):,.0f}/s "
          f"(ratio {statistics.median(ratios):.2f})", flush=True)


def group_leftover(args, work, shm, res):
    """The leftover-links row alone (also part of scale)."""
    d = Daemon(work, "leftover", args.daemon_opts)
    d.start()
    try:
        d.quiet()
        out = {}
        leftover_links(args, d, payload_file(work, "p1k", b"v" * 1024), out)
        res["leftover"] = out["leftover"]
    finally:
        d.stop()


def vyfill(args, d, upto, have, arena_bytes):
    """Fills the unmounted store from `have` to `upto` objects with build/vyfill
    (10,000 records per journal commit); the daemon is stopped and started again."""
    d.stop(keep_arena=True)
    t0 = time.perf_counter()
    r = run_json([binaries.VYFILL, d.arena, d.state, str(upto - have), "1024", str(arena_bytes),
                  args.durability, "10000"])
    print(f"  vyfill {have:,} -> {upto:,}: {r['per_s']:,.0f}/s "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    d.start()
    return r


def scale_window(args):
    """The creation-rate window: 100,000, or half of --objects (a tenth with vyfill)."""
    return min(100_000, args.objects // (10 if args.fill == "direct" else 2))


def fill_to(args, d, size, have, n_total, arena_bytes, payload, out):
    """Fills to `size`: all through new/, or (direct) new/ for the first window from
    empty and the last window before n_total, vyfill for the rest. The last window's
    chunks alternate with those of an empty store's first window (fill_alternating)."""
    win = scale_window(args)
    plan = [("new", size)]
    if args.fill == "direct":
        bulk_end = size - win if size == n_total else size
        plan = [("new", min(win, size)), ("vyfill", bulk_end), ("new", size)]
    for how, upto in plan:
        if upto <= have:
            continue
        if how == "vyfill":
            out.setdefault("vyfill", []).append(vyfill(args, d, upto, have, arena_bytes))
            have = upto
            continue
        t = time.perf_counter()
        if upto == n_total and have < n_total - win:
            have = fill_chunks(args, d, n_total - win, have, payload, out)
        if upto == n_total:
            have = fill_alternating(args, d, n_total, have, payload, out)
        else:
            have = fill_chunks(args, d, upto, have, payload, out)
        print(f"  new/ -> {upto:,} in {time.perf_counter() - t:.0f} s "
              f"(last chunk {out['chunks'][-1]['per_s']:,.0f}/s)", flush=True)
    return have


def chunk_rows(chunks):
    return [{"objects": n, "per_s": r, "daemon_cpu_us": c, "count": k} for n, r, c, k in chunks]


def chunk_tuples(rows):
    """chunk_rows undone: (objects, per_s, daemon_cpu_us, count) per chunk."""
    return [(c["objects"], c["per_s"], c["daemon_cpu_us"], c["count"]) for c in rows]


def fill_chunks(args, d, upto, have, payload, out):
    out["chunks"] += chunk_rows(fill(f"{d.mnt}/new", upto, have, args.chunk, payload, "s",
                                     "unlink", d))
    return upto


def fill_alternating(args, d, upto, have, payload, out):
    """The last window (have..upto) chunk by chunk, alternating with the first window of
    a second daemon on an empty store (d then the empty one, then the other way round):
    both windows of the target made at the same time, so that the VM's drift over the
    minutes between the sequential windows (the daemon's CPU per create moved 370-480
    us from one run to the next with the store's size unchanged: README, Per-object
    cost, "The creation rate at 2M is flat") falls on both alike."""
    e = Daemon(os.path.dirname(d.dir), "scale-empty", args.daemon_opts)
    e.start()
    alt = out.setdefault("empty_chunks", [])
    try:
        e.quiet()
        made = 0
        while have < upto:
            k = min(args.chunk, upto - have)
            for x in ((d, e) if len(alt) % 2 == 0 else (e, d)):
                if x is d:
                    fill_chunks(args, d, have + k, have, payload, out)
                else:
                    alt += chunk_rows(fill(f"{e.mnt}/new", made + k, made, k, payload, "e",
                                           "unlink", e))
            have, made = have + k, made + k
    finally:
        e.stop()
        shutil.rmtree(e.dir, ignore_errors=True)
    return have


def alternating_result(out, n_total, win):
    """The last window against the empty store's first window made alongside: rates
    over each window and the ratio of each pair of chunks made one after the other."""
    cs, es = chunk_tuples(out["chunks"]), chunk_tuples(out["empty_chunks"])
    last = [c for c in cs if n_total - win < c[0] <= n_total]
    pairs = [a[1] / b[1] for a, b in zip(last, es)]
    cpu = [a[2] / b[2] for a, b in zip(last, es)]
    r = {"empty_window_per_s": window_rate(es, 0, win),
         "last_window_per_s": window_rate(cs, n_total - win, n_total),
         "pair_ratios": summarize(pairs), "pair_cpu_ratios": summarize(cpu)}
    r["last_over_empty"] = r["last_window_per_s"] / r["empty_window_per_s"]
    return r


def remounts(args, d, count):
    """--runs remounts of a store of `count` objects: mount, then mount + listed."""
    mounts, listed, rss_after = [], [], []
    for r in range(args.runs):
        d.stop(keep_arena=True)
        mount_s = d.start()
        t0 = time.perf_counter()
        seen = len(os.listdir(f"{d.mnt}/objects"))
        list_s = time.perf_counter() - t0
        if seen != count:
            raise RuntimeError(f"remount listed {seen} of {count} objects")
        mounts.append(mount_s)
        listed.append(mount_s + list_s)
        rss_after.append(d.rss_bytes())
    st = d.status()
    return {"remount_mount_s": summarize(mounts), "remount_listed_s": summarize(listed),
            "remount_us_per_object": summarize([s / count * 1e6 for s in listed]),
            "rss_after_remount_and_list_bytes": statistics.median(rss_after),
            "inodes_after_list": st.get("inodes")}


def group_scale(args, work, shm, res):
    n_total = args.objects
    if args.fill is None:
        args.fill = "direct" if n_total > 200_000 else "new"
    sizes = sorted({max(args.chunk, n_total // 10), n_total})
    arena = max(4 << 30, int(n_total * 4096 * 1.25) + (1 << 30))
    opts = args.daemon_opts.replace("size=4G", f"size={arena}")
    d = Daemon(work, "scale", opts)
    d.start()
    payload = payload_file(work, "p1k", b"v" * 1024)
    out = {"objects": n_total, "chunk": args.chunk, "fill": args.fill, "sizes": {}, "chunks": []}
    try:
        d.quiet()
        leftover_links(args, d, payload, out)
        d.stop()  # a fresh store for the fill
        shutil.rmtree(d.dir)
        d = Daemon(work, "scale", opts)
        d.start()
        d.quiet()
        rss_empty = d.rss_bytes()
        out["rss_empty_bytes"] = rss_empty
        empty = []
        for r in range(args.runs):  # the fixed cost of a mount: an empty store
            d.stop(keep_arena=True)
            empty.append(d.start())
        out["remount_empty_s"] = summarize(empty)
        have = 0
        for size in sizes:
            t_fill = time.perf_counter()
            have = fill_to(args, d, size, have, n_total, arena, payload, out)
            print(f"  filled to {size:,} in {time.perf_counter() - t_fill:.0f} s", flush=True)
            d.quiet()
            count = d.status()["objects"]["total"]
            rss = d.rss_bytes()
            at = {"objects": count, "rss_bytes": rss,
                  "rss_per_object_bytes": (rss - rss_empty) / count,
                  "rss_total_per_object_bytes": rss / count}
            at.update(remounts(args, d, count))
            out["sizes"][str(size)] = at
            print(f"  {count:,} objects: remount + listed {at['remount_listed_s']['median']:.2f} s"
                  f" (mount {at['remount_mount_s']['median']:.2f} s, "
                  f"{at['remount_us_per_object']['median']:.1f} us/object), RSS "
                  f"{at['rss_per_object_bytes']:.0f} B/object added, "
                  f"{at['rss_after_remount_and_list_bytes'] / count:.0f} B/object total "
                  f"after a remount and a listing", flush=True)
        win = scale_window(args)
        cs = chunk_tuples(out["chunks"])
        out["window"] = win
        out["first_window_per_s"] = window_rate(cs, 0, win)
        out["last_window_per_s"] = window_rate(cs, n_total - win, n_total)
        out["last_over_first"] = out["last_window_per_s"] / out["first_window_per_s"]
        # The same without each window's first 40% (with --fill direct the last window
        # starts right after a remount: README, Millions of objects, fourth round).
        steady = win * 3 // 5
        out["steady_window"] = steady
        out["first_steady_per_s"] = window_rate(cs, win - steady, win)
        out["last_steady_per_s"] = window_rate(cs, n_total - steady, n_total)
        out["steady_last_over_first"] = out["last_steady_per_s"] / out["first_steady_per_s"]
        cpu = [c for _, _, c, _ in cs]
        out["daemon_cpu_us_first_chunk"], out["daemon_cpu_us_last_chunk"] = cpu[0], cpu[-1]
        out["alternating"] = alternating_result(out, n_total, win)
    finally:
        d.stop()
    # /dev/shm: the same fill with the files kept, and listing them.
    n_base = min(n_total, 200_000)
    os.mkdir(f"{shm}/many")
    bchunks = fill(f"{shm}/many", n_base, 0, args.chunk, payload, "s", "keep")
    bwin = min(100_000, n_base // 2)
    out["dev_shm"] = {"objects": n_base,
                      "first_window_per_s": window_rate(bchunks, 0, bwin),
                      "last_window_per_s": window_rate(bchunks, n_base - bwin, n_base),
                      "list_s": time_calls(lambda: os.listdir(f"{shm}/many"), args.runs) / 1e6}
    shutil.rmtree(f"{shm}/many")
    res["scale"] = out
    small, big = (out["sizes"][str(s)] for s in (sizes[0], sizes[-1]))
    out["per_object_growth"] = (big["remount_us_per_object"]["median"]
                                / small["remount_us_per_object"]["median"])
    print(f"  creation rate first {win:,}: {out['first_window_per_s']:,.0f}/s, last {win:,}: "
          f"{out['last_window_per_s']:,.0f}/s ({out['last_over_first']:.2f}); the last "
          f"{out['steady_window']:,} of each: {out['first_steady_per_s']:,.0f} / "
          f"{out['last_steady_per_s']:,.0f}/s ({out['steady_last_over_first']:.2f})", flush=True)
    a = out["alternating"]
    print(f"  the last {win:,} alternating with an empty store's first {win:,}: "
          f"{a['last_window_per_s']:,.0f} / {a['empty_window_per_s']:,.0f}/s "
          f"({a['last_over_empty']:.2f}); per pair of chunks {a['pair_ratios']['median']:.2f} "
          f"({a['pair_ratios']['min']:.2f}-{a['pair_ratios']['max']:.2f}), daemon CPU "
          f"{a['pair_cpu_ratios']['median']:.2f}x", flush=True)
