"""put() records a list of same-shaped arrays, and the columns of a DataFrame's
numeric blocks, in one call (builtins.record_tensors, batch.Batch.add_tensors,
dataframe._column_ids): the upload's manifest is byte for byte the one the
per-array path (tensor_builder, one array at a time) writes, the payload the same
bytes, and the stored objects and what get() returns are unchanged. Values that do
not fit the run (mixed shapes or dtypes, strided, Fortran, big-endian, empty,
mapped blobs, object columns) keep the per-array path."""

import json
import re

import numpy as np
import pytest

from vineyardfs import batch as vbatch
from vineyardfs import builtins as vbuiltins
from meta_trees import meta_tree, shape

pd = pytest.importorskip("pandas")



def _put_recorded(client, monkeypatch, value):
    """(id, [(suffix, manifest bytes or None, payload bytes)]) of client.put(value):
    what each upload to new/ carried (the real uploads, recorded on the way)."""
    uploads = []
    real = client._create_file

    def recording(suffix, data, what):
        pieces = data if isinstance(data, list) else [data]
        views = [bytes(memoryview(p).cast("B")) for p in pieces]
        if suffix == ".batch":  # (ids of objects uploaded before differ from put to put)
            uploads.append((suffix, re.sub(rb'"o[0-9a-f]{16}"', b'"o"', views[0]),
                            b"".join(views[1:])))
        else:
            uploads.append((suffix, None, b"".join(views)))
        return real(suffix, data, what)

    monkeypatch.setattr(client, "_create_file", recording)
    try:
        return client.put(value), uploads
    finally:
        monkeypatch.undo()


def _both_ways(client, mount, monkeypatch, value):
    """Puts `value` with the runs and without them (record_tensors finding no run);
    asserts the same uploads and objects; returns both ids."""
    fast, fast_uploads = _put_recorded(client, monkeypatch, value)
    monkeypatch.setattr(vbuiltins, "record_tensors", lambda *args: None)
    slow, slow_uploads = _put_recorded(client, monkeypatch, value)
    assert fast_uploads == slow_uploads
    assert shape(meta_tree(mount, fast)) == shape(meta_tree(mount, slow))
    return fast, slow


def _runs_recorded(client, monkeypatch, value):
    """How many add_tensors runs a put of `value` recorded, and of how many arrays."""
    seen = []
    real = vbatch.Batch.add_tensors

    def counting(self, arrays, form):
        seen.append(len(arrays))
        return real(self, arrays, form)

    monkeypatch.setattr(vbatch.Batch, "add_tensors", counting)
    try:
        client.put(value)
    finally:
        monkeypatch.undo()
    return seen


# ---- lists of arrays ----


@pytest.mark.parametrize("dtype", ["f8", "f4", "i8", "u1", "?", "c16", "f2"])
def test_a_list_of_same_arrays_is_one_run_with_the_per_array_manifest(
        client, mount, monkeypatch, dtype):
    rng = np.random.default_rng(1)
    value = [(rng.random(33) * 100).astype(dtype) for _ in range(40)]
    assert _runs_recorded(client, monkeypatch, value) == [40]
    fast, _ = _both_ways(client, mount, monkeypatch, value)
    got = client.get(fast)
    assert len(got) == 40
    for a, b in zip(got, value):
        assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all()


def test_2d_arrays_run_and_keep_their_shape(client, mount, monkeypatch):
    value = [np.arange(24, dtype=np.int32).reshape(4, 6) + i for i in range(5)]
    assert _runs_recorded(client, monkeypatch, value) == [5]
    fast, _ = _both_ways(client, mount, monkeypatch, value)
    tree = meta_tree(mount, fast)
    assert tree["__elements_-3"]["shape_"] == "[4, 6]"
    assert tree["__elements_-3"]["order_"] == '"C"'
    for a, b in zip(client.get(fast), value):
        assert a.shape == (4, 6) and (a == b).all()


@pytest.mark.parametrize("value", [
    [np.arange(8.0), np.arange(9.0)],  # shapes differ
    [np.arange(8.0), np.arange(8)],  # dtypes differ
    [np.arange(16.0)[::2], np.arange(16.0)[1::2]],  # strided
    [np.asfortranarray(np.ones((3, 4))), np.asfortranarray(np.zeros((3, 4)))],
    [np.arange(4, dtype=">f8"), np.arange(4, dtype=">f8")],  # big-endian
    [np.zeros(0), np.zeros(0)],  # empty
    [np.array(["2024-01-01", "2025-01-01"], dtype="M8[D]")] * 2,  # datetime
    [np.array(["ab", "c"]), np.array(["d", "ef"])],  # strings
])
def test_arrays_a_run_does_not_take_keep_the_per_array_path(client, mount, monkeypatch, value):
    assert _runs_recorded(client, monkeypatch, value) == []
    fast, _ = _both_ways(client, mount, monkeypatch, value)
    for a, b in zip(client.get(fast), value):  # (stored little-endian)
        assert a.dtype == b.dtype.newbyteorder("<") and a.shape == b.shape and (a == b).all()


def test_views_of_one_array_run_and_copy_their_bytes(client, mount, monkeypatch):
    rows = np.arange(600, dtype=np.float64).reshape(6, 100)
    value = list(rows)  # C-contiguous views with a common base, not of a blob
    assert _runs_recorded(client, monkeypatch, value) == [6]
    fast, _ = _both_ways(client, mount, monkeypatch, value)
    for a, b in zip(client.get(fast), rows):
        assert (a == b).all()


def test_a_mapped_array_among_others_shares_its_blob(client, mount, monkeypatch):
    first = client.put([np.arange(64, dtype=np.float64), np.ones(64)])
    mapped = client.get(first)[1]  # a view of a stored blob: reused, not a run
    value = [np.zeros(64), mapped, np.full(64, 2.0)]
    assert _runs_recorded(client, monkeypatch, value) == []
    second = client.put(value)
    old = meta_tree(mount, first)["__elements_-1"]["buffer_"]["id"]
    assert meta_tree(mount, second)["__elements_-1"]["buffer_"]["id"] == old
    got = client.get(second)
    assert (got[0] == 0).all() and (got[1] == 1).all() and (got[2] == 2).all()


def test_runs_between_other_blobs_keep_every_payload_offset(client, mount, monkeypatch):
    big = np.arange(vbatch.INLINE_MAX // 8 + 3, dtype=np.float64)  # its own upload
    value = (b"head bytes", [np.full(10, float(i)) for i in range(7)], b"",
             [np.arange(5, dtype=np.int16) * i for i in range(3)], big, b"tail")
    assert _runs_recorded(client, monkeypatch, value) == [7, 3]
    fast, _ = _both_ways(client, mount, monkeypatch, value)
    got = client.get(fast)
    assert bytes(got[0]) == b"head bytes" and bytes(got[2]) == b"" and bytes(got[5]) == b"tail"
    assert [float(a[0]) for a in got[1]] == [float(i) for i in range(7)]
    assert all((a == np.arange(5) * i).all() for i, a in enumerate(got[3]))
    assert (got[4] == big).all()


# ---- DataFrames ----


def _frames():
    rng = np.random.default_rng(3)
    mixed = pd.DataFrame({"f": rng.random(6), "i": np.arange(6), "s": list("abcdef"),
                          "g": rng.random(6), "b": [True, False] * 3,
                          "t": pd.date_range("2024-01-01", periods=6, freq="D"),
                          "c": pd.Categorical(list("xyxyxy")), "h": rng.random(6),
                          "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64")})
    return {
        "one block": pd.DataFrame({"c%d" % i: rng.random(16) for i in range(30)}),
        "mixed dtypes": mixed,
        "non-contiguous block": pd.DataFrame(np.arange(40.0).reshape(8, 5)),
        "empty": pd.DataFrame(),
        "no rows": pd.DataFrame({"a": np.zeros(0), "b": np.zeros(0)}),
        "one column": pd.DataFrame({"x": np.arange(4.0)}),
        "multiindex columns": pd.DataFrame(
            np.ascontiguousarray(np.arange(24.0).reshape(6, 4).T).T,
            columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1), ("b", 2)],
                                              names=["top", "low"])),
        "int labels": pd.DataFrame({i: np.arange(3, dtype=np.int8) + i for i in range(5)}),
        "odd labels": pd.DataFrame({'q"uote': [1.0, 2.0], "üñï": [3.0, 4.0],
                                    "back\\slash": [5.0, 6.0]}),
    }


@pytest.mark.parametrize("name", sorted(_frames()))
def test_a_frame_makes_the_per_column_objects_and_comes_back_equal(
        client, mount, monkeypatch, name):
    frame = _frames()[name]
    fast, _ = _both_ways(client, mount, monkeypatch, frame)
    pd.testing.assert_frame_equal(client.get(fast), frame)


def test_a_consolidated_block_is_one_run(client, monkeypatch):
    frame = _frames()["one block"]
    assert len(frame._mgr.blocks) == 1
    assert _runs_recorded(client, monkeypatch, frame) == [30]


def test_mixed_blocks_run_per_block_in_column_order(client, mount, monkeypatch):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.random(4), "b": rng.random(4), "s": list("wxyz"),
                          "c": rng.random(4), "i": np.arange(4), "j": np.arange(4) * 2})
    frame = frame.copy()  # consolidated: float block (a, b, c), int block (i, j), object
    runs = _runs_recorded(client, monkeypatch, frame)
    assert sorted(runs) == [2, 2]  # a-b and i-j are runs; c stands alone after s
    fast, _ = _both_ways(client, mount, monkeypatch, frame)
    tree = meta_tree(mount, fast)
    assert [json.loads(tree["__values_-key-%d" % i]) for i in range(6)] == list(frame.columns)
    pd.testing.assert_frame_equal(client.get(fast), frame)


def test_a_frame_from_get_shares_its_column_blobs(client, mount, monkeypatch):
    frame = pd.DataFrame({"a": np.arange(8.0), "b": np.ones(8), "c": np.zeros(8)})
    first = client.put(frame)
    again = client.get(first)  # columns are views of the stored blobs
    assert _runs_recorded(client, monkeypatch, again) == []
    second = client.put(again)
    t1, t2 = meta_tree(mount, first), meta_tree(mount, second)
    for i in range(3):
        key = "__values_-value-%d" % i
        assert t2[key]["buffer_"]["id"] == t1[key]["buffer_"]["id"]
    pd.testing.assert_frame_equal(client.get(second), frame)


def test_a_frame_outside_put_is_built_column_by_column(client, mount):
    from vineyardfs import dataframe as vdf
    from vineyardfs.context import default_builder_context

    frame = pd.DataFrame({"a": np.arange(3.0), "b": np.arange(3.0) + 1})
    meta = vdf.dataframe_builder(client, frame, default_builder_context)
    pd.testing.assert_frame_equal(client.get(meta.id), frame)


def test_many_columns_and_a_wider_frame_after_a_narrower_one(client, mount, monkeypatch):
    narrow = pd.DataFrame({"c%d" % i: np.full(2, float(i)) for i in range(3)})
    wide = pd.DataFrame({"c%d" % i: np.full(2, float(i)) for i in range(1200)})
    for frame in (narrow, wide, narrow):
        fast, _ = _both_ways(client, mount, monkeypatch, frame)
        tree = meta_tree(mount, fast)
        assert tree["__values_-size"] == len(frame.columns)
        assert json.loads(tree["__values_-key-%d" % (len(frame.columns) - 1)]) == \
            frame.columns[-1]
        pd.testing.assert_frame_equal(client.get(fast), frame)


@pytest.mark.parametrize("enabled", [True, False])
def test_put_leaves_the_garbage_collector_as_it_found_it(client, enabled):
    import gc

    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        client.put([np.ones(4), np.zeros(4)])
        assert gc.isenabled() == enabled
        with pytest.raises(TypeError):
            client.put([np.ones(4), {1, 2}, object.__new__(_Unpicklable)])
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("not picklable")


@pytest.mark.parametrize("chunk,iov", [(1 << 30, 1024), (7, 2), (1, 1)])
def test_write_all_takes_arrays_views_and_bytes_as_they_are(tmp_path, monkeypatch, chunk, iov):
    from vineyardfs import client_files

    pieces = [b"head", np.arange(10, dtype=np.float64), memoryview(b"xyz"), bytearray(b"ba"),
              np.zeros((2, 3), np.int16), memoryview(np.arange(4, dtype=np.int32)), b""]
    expect = b"".join(bytes(memoryview(p).cast("B")) for p in pieces)
    monkeypatch.setattr(client_files, "_WRITE_CHUNK", chunk)  # huge pieces, short groups
    monkeypatch.setattr(client_files, "_IOV_MAX", iov)
    path = tmp_path / "out"
    with open(path, "wb") as f:
        client_files._write_all(f.fileno(), pieces)
    assert path.read_bytes() == expect


def test_zero_dimensional_arrays_run(client, mount, monkeypatch):
    value = [np.array(float(i)) for i in range(4)]
    assert _runs_recorded(client, monkeypatch, value) == [4]
    fast, _ = _both_ways(client, mount, monkeypatch, value)
    got = client.get(fast)
    assert [a.shape for a in got] == [()] * 4 and [float(a) for a in got] == [0.0, 1.0, 2.0, 3.0]


def test_a_big_endian_block_keeps_the_per_column_path(client, mount, monkeypatch):
    frame = pd.DataFrame(np.arange(12, dtype=">f8").reshape(3, 4).T.copy().T,
                         columns=list("abcd"))
    assert _runs_recorded(client, monkeypatch, frame) == []
    fast, _ = _both_ways(client, mount, monkeypatch, frame)
    got = client.get(fast)
    assert (got.to_numpy() == frame.to_numpy()).all() and list(got.columns) == list("abcd")
