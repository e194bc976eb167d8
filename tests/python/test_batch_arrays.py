"""put() of a list of arrays inside one batch (python/vineyardfs/builtins.py
_build_items and tensor_builder's batch path, batch.py Batch.add_tensor): the
same objects as the per-object path for every array layout, and a user's
ndarray builder is still the one that runs."""

import numpy as np
import pytest

import vineyardfs
from vineyardfs import batch as vbatch
from meta_trees import meta_tree, shape



def _layouts():
    """Arrays that take each branch of tensor_builder: C, Fortran, strided, empty,
    datetime, big-endian, strings, and one over INLINE_MAX (its own upload)."""
    return [np.arange(128, dtype=np.float64),
            np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
            np.arange(20, dtype=np.int64)[::2],
            np.zeros(0, dtype=np.float32),
            np.array(["2024-01-01", "2025-06-30"], dtype="M8[s]"),
            np.arange(5, dtype=">i4"),
            np.array(["a", "bcd"]),
            np.arange((vbatch.INLINE_MAX // 8) + 1, dtype=np.float64)]


def test_each_array_layout_makes_the_per_object_path_s_objects(client, mount, monkeypatch):
    value = _layouts()
    batched = client.put(value)
    got = client.get(batched)
    assert len(got) == len(value)
    for a, b in zip(got, value):
        assert a.shape == b.shape and (a == b).all()
    monkeypatch.setattr(vbatch, "is_ours", lambda builder: False)  # every object on its own
    plain = client.put(value)
    assert shape(meta_tree(mount, batched)) == shape(meta_tree(mount, plain))


def test_a_mapped_array_in_a_list_shares_its_blob(client, mount):
    first = client.put([np.arange(64, dtype=np.float64), np.ones(8)])
    mapped = client.get(first)[0]  # a view of the stored blob
    second = client.put([mapped, np.zeros(8)])
    old = meta_tree(mount, first)["__elements_-0"]["buffer_"]["id"]
    new = meta_tree(mount, second)["__elements_-0"]["buffer_"]["id"]
    assert new == old
    assert (client.get(second)[0] == np.arange(64)).all()


def test_a_user_ndarray_builder_still_runs_for_each_item(client, mount):
    calls = []

    def my_builder(client, value, builder):
        calls.append(value.shape)
        m = vineyardfs.ObjectMeta()
        m["typename"] = "test::Array"
        m["n_"] = int(value.size)
        return client.create_metadata(m)

    root = client.put([np.zeros(3), np.zeros(5)], builder={np.ndarray: my_builder})
    assert calls == [(3,), (5,)]
    tree = meta_tree(mount, root)
    assert [tree["__elements_-%d" % i]["typename"] for i in (0, 1)] == ["test::Array"] * 2
    assert tree["__elements_-1"]["n_"] == 5


def test_a_list_mixing_arrays_and_other_values_round_trips(client):
    value = [np.arange(4), 7, np.ones(2), "x"]
    got = client.get(client.put(value))
    assert (got[0] == value[0]).all() and got[1] == 7 and (got[2] == 1).all() and got[3] == "x"


@pytest.mark.parametrize("n", [1, 2])
def test_short_lists_of_arrays(client, n):
    value = [np.full(3, i, dtype=np.int16) for i in range(n)]
    got = client.get(client.put(value))
    assert [list(a) for a in got] == [list(a) for a in value]


def test_the_manifest_is_the_one_dumps_of_the_recorded_entries(client, monkeypatch):
    """Tensors are encoded from templates as they are recorded (batch._tensor_text);
    the manifest must be byte for byte the json.dumps of every entry at once."""
    real = vineyardfs.Client._create_file
    seen = []

    def spy(self, suffix, data, what):
        batch = vbatch.current(self)
        if suffix == ".batch":
            manifest, offset = [], 0
            for kind, value in batch.entries:
                if kind == "blob":
                    manifest.append({"blob": [offset, value.nbytes]})
                    offset += value.nbytes
                else:
                    manifest.append({"meta": value})
            root = len(batch.entries) - 1
            seen.append((bytes(data[0]), vbatch._dumps({"entries": manifest, "root": root})))
        return real(self, suffix, data, what)

    monkeypatch.setattr(vineyardfs.Client, "_create_file", spy)
    value = [np.arange(8.0), (1, "é", np.zeros((2, 3), order="F")), np.arange(8.0),
             np.array(["2024-01-01"], dtype="M8[s]"), [np.ones(2, dtype=np.int8), None]]
    got = client.get(client.put(value))
    assert len(seen) == 1 and seen[0][0] == seen[0][1].encode() + b"\0"
    assert (got[2] == np.arange(8.0)).all() and got[1][1] == "é"
