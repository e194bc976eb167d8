"""Many threads and many processes putting, getting and deleting at once, against
one mount and against two nodes, in the manner of Vineyard's own client tests
(issue 15): every value read back is the one written, and nothing is left
behind (objects/, names/ and new/ empty at the end).

Processes are started with "spawn" (pytest's process has threads; a forked copy
of it would inherit their locks) and report through their exit code and a queue.
"""

import multiprocessing
import os
import threading
import traceback

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import vineyardfs as vineyard

from test_cluster import _stop_all, start_cluster, wait_for

ROUNDS = 15


def _value(seed, i):
    """A value of one of several kinds, different for every (seed, i)."""
    kind = i % 5
    rng = np.random.default_rng(seed * 1000 + i)
    if kind == 0:
        return pd.DataFrame({"a": rng.random(50), "b": np.arange(50) + seed,
                             "s": ["w%d-%d" % (seed, k) for k in range(50)]})
    if kind == 1:
        return rng.random((20, 3))
    if kind == 2:
        return sp.random(10, 10, density=0.3, format="csr", random_state=seed * 100 + i)
    if kind == 3:
        return pd.Series(rng.integers(0, 100, 30), name="s%d" % seed)
    return (b"blob-%d-%d" % (seed, i), [seed, i, "x"])


def _same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
    elif sp.issparse(a):
        np.testing.assert_array_equal(a.toarray(), b.toarray())
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert (bytes(b[0]), b[1]) == a, (a, b)


def _round_trips(client, seed, rounds, persist=False):
    """put, get, name, get by name, delete; one value after another."""
    for i in range(rounds):
        value = _value(seed, i)
        object_id = client.put(value, persist=persist)
        name = "w%d-%d" % (seed, i)
        client.put_name(object_id, name)
        _same(value, client.get(object_id))
        _same(value, client.get(name=name))
        client.drop_name(name)
        client.delete(object_id)


def _assert_empty(mount_path):
    for d in ("objects", "names", "new"):
        assert os.listdir(os.path.join(mount_path, d)) == [], d


def _process(mount_path, seed, rounds, queue):
    try:
        _round_trips(vineyard.connect(mount_path), seed, rounds)
        queue.put((seed, None))
    except BaseException:  # noqa: B902 - reported to the parent
        queue.put((seed, traceback.format_exc()))


def _run_processes(targets):
    """Starts one spawned process per (function, args) and fails with the first
    error any of them reported."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=fn, args=args + (queue,)) for fn, args in targets]
    for p in procs:
        p.start()
    try:
        results = dict(queue.get(timeout=300) for _ in procs)
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
                p.join()
    errors = [e for e in results.values() if e]
    assert not errors, errors[0]
    assert all(p.exitcode == 0 for p in procs)


def _run_threads(fn, args_list):
    errors = []

    def run(args):
        try:
            fn(*args)
        except BaseException:  # noqa: B902 - reported below
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=run, args=(a,)) for a in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_many_threads_on_one_client(fresh_mount):
    fresh_mount.start()
    client = vineyard.connect(fresh_mount.path)
    _run_threads(_round_trips, [(client, seed, ROUNDS) for seed in range(8)])
    _assert_empty(fresh_mount.path)


def test_many_threads_with_a_client_each_sharing_objects(fresh_mount):
    """Threads read and build on each other's objects: a shared frame is read by
    all, and each puts a frame extended from it (sharing its blobs)."""
    fresh_mount.start()
    client = vineyard.connect(fresh_mount.path)
    shared = client.put(pd.DataFrame({"x": np.arange(1000.0)}), name="shared")

    def work(seed):
        own = client.fork()
        made = []
        for i in range(ROUNDS):
            df = own.get(name="shared")
            df["y%d" % seed] = np.full(1000, seed + i, dtype=np.int64)
            made.append(own.put(df))
            back = own.get(made[-1])
            assert back["x"].sum() == 499500.0 and (back["y%d" % seed] == seed + i).all()
        own.delete(made)

    _run_threads(work, [(seed,) for seed in range(6)])
    client.drop_name("shared")
    client.delete(shared)
    _assert_empty(fresh_mount.path)


def test_many_processes_on_one_mount(fresh_mount):
    fresh_mount.start()
    _run_processes([(_process, (fresh_mount.path, seed, ROUNDS)) for seed in range(4)])
    _assert_empty(fresh_mount.path)


def _cluster_process(mine, theirs, seed, peers, rounds, barrier, queue):
    """Puts persisted values named c<seed>-<i> on node `mine`, reads every peer's
    values by name on the node `theirs` with fetch=True, then (once every process
    has read) deletes its own."""
    try:
        here, there = vineyard.connect(mine), vineyard.connect(theirs)
        made = []
        for i in range(rounds):
            made.append(here.put(_value(seed, i), persist=True, name="c%d-%d" % (seed, i)))
        barrier.wait(120)
        for peer in peers:
            for i in range(rounds):
                name = "c%d-%d" % (peer, i)
                object_id = there.get_name(name, wait=True, timeout=30)
                _same(_value(peer, i), there.get(object_id, fetch=True))
        barrier.wait(120)
        for i, object_id in enumerate(made):
            here.drop_name("c%d-%d" % (seed, i))
        here.delete(made)
        queue.put((seed, None))
    except BaseException:  # noqa: B902 - reported to the parent
        barrier.abort()
        queue.put((seed, traceback.format_exc()))


@pytest.fixture
def two_nodes(tmp_path):
    mounts = start_cluster(tmp_path)
    try:
        yield mounts
    finally:
        _stop_all(mounts)


def test_many_processes_on_two_nodes(two_nodes):
    n1, n2 = (m.path for m in two_nodes)
    seeds = [1, 2, 3, 4]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(seeds))
    rounds = 5
    targets = []
    for seed in seeds:
        mine, theirs = (n1, n2) if seed % 2 else (n2, n1)
        targets.append((_cluster_process, (mine, theirs, seed, [s for s in seeds if s != seed],
                                           rounds, barrier)))
    _run_processes(targets)
    for path in (n1, n2):
        # deletes replicate; fetched copies go with their objects
        wait_for(lambda: os.listdir(os.path.join(path, "objects")) == [] and
                 os.listdir(os.path.join(path, "names")) == [], "node %s to be empty" % path)


def test_many_threads_on_two_nodes(two_nodes):
    """The same exchange as above, by threads of this process (each connects to
    both nodes)."""
    import queue as queue_module

    n1, n2 = (m.path for m in two_nodes)
    seeds = [1, 2, 3, 4, 5, 6]
    barrier = threading.Barrier(len(seeds))
    results = queue_module.Queue()
    args = []
    for seed in seeds:
        mine, theirs = (n1, n2) if seed % 2 else (n2, n1)
        args.append((mine, theirs, seed, [s for s in seeds if s != seed], 4, barrier, results))
    _run_threads(_cluster_process, args)
    errors = [e for _, e in (results.get() for _ in seeds) if e]
    assert not errors, errors[0]
    for path in (n1, n2):
        wait_for(lambda: os.listdir(os.path.join(path, "objects")) == [] and
                 os.listdir(os.path.join(path, "names")) == [], "node %s to be empty" % path)
