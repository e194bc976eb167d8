"""put() of a composite value as one new/<x>.batch upload (README "Many objects in
one upload"): one upload per value, the same metadata as the per-object path, and
all or nothing."""

import json

import numpy as np
import pytest

import vineyardfs
from vineyardfs import batch as vbatch
from vineyardfs.errors import ObjectNotExists

# Fields the store sets per object (they differ between two puts of one value).
_PER_OBJECT = ("id", "signature", "__timestamp")


def _shape(tree):
    """meta.json with the per-object fields dropped, members recursively."""
    if isinstance(tree, dict):
        return {k: _shape(v) for k, v in tree.items() if k not in _PER_OBJECT}
    if isinstance(tree, list):
        return [_shape(v) for v in tree]
    return tree


def _meta_tree(mount, object_id):
    with open("%s/objects/%s/meta.json" % (mount.path, object_id)) as f:
        return json.load(f)


def _objects(client):
    return client.status["objects"]["total"]


@pytest.fixture
def uploads(monkeypatch):
    """The suffix of every file the client writes in new/."""
    seen = []
    real = vineyardfs.Client._create_file

    def spy(self, suffix, data, what):
        seen.append(suffix)
        return real(self, suffix, data, what)

    monkeypatch.setattr(vineyardfs.Client, "_create_file", spy)
    return seen


def _per_object(monkeypatch):
    """Makes put() take the per-object path (every builder counts as foreign)."""
    monkeypatch.setattr(vbatch, "is_ours", lambda builder: False)


VALUES = {
    "list of arrays": lambda: [np.arange(128, dtype=np.float64) + i for i in range(50)],
    "nested containers": lambda: (1, "two", [3.0, None, b"five"], (np.zeros(3), {"k": 1})),
    "pickled": lambda: {"a": [1, 2], "b": np.ones((2, 2))},
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_a_composite_value_is_one_upload_with_the_per_object_metadata(
        client, mount, uploads, monkeypatch, name):
    value = VALUES[name]()
    batched = client.put(value)
    assert uploads == [".batch"], uploads
    _per_object(monkeypatch)
    plain = client.put(value)
    assert ".batch" not in uploads[1:] and len(uploads) > 2
    assert _shape(_meta_tree(mount, batched)) == _shape(_meta_tree(mount, plain))
    got = client.get(batched)
    if name == "list of arrays":
        assert all((a == b).all() for a, b in zip(got, value))


def test_a_dataframe_of_many_columns_round_trips(client, mount, uploads, monkeypatch):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"c%d" % i: np.arange(128, dtype=np.float64) * i for i in range(300)})
    batched = client.put(df)
    assert uploads == [".batch"]
    pd.testing.assert_frame_equal(client.get(batched), df)
    _per_object(monkeypatch)
    plain = client.put(df)
    assert _shape(_meta_tree(mount, batched)) == _shape(_meta_tree(mount, plain))


def test_a_single_object_keeps_its_plain_upload(client, uploads):
    client.put(b"bytes")
    client.put(7)
    assert uploads == [".blob", ".meta.json"]


def test_a_refused_batch_creates_nothing(client):
    before = _objects(client)
    gone = vineyardfs.ObjectID("o0001000000099999")
    big = np.arange(300000, dtype=np.float64)  # over INLINE_MAX: uploaded on its own first
    with pytest.raises(ObjectNotExists, match="does not exist"):
        client.put([np.zeros(16), big, gone])
    assert _objects(client) == before


def test_a_failing_builder_creates_nothing(client):
    class Bad:
        pass

    def bad_builder(client, value, builder):
        raise RuntimeError("refused")

    before = _objects(client)
    with pytest.raises(RuntimeError, match="refused"):
        client.put([np.zeros(4), np.ones(4), Bad()], builder={Bad: bad_builder})
    assert _objects(client) == before


def test_a_foreign_builder_runs_per_object_and_joins_the_batch(client, mount, uploads):
    class Point:
        def __init__(self, x):
            self.x = x

    def point_builder(client, value, builder):
        member = builder.run(client, np.full(4, value.x))
        assert client.exists(member)  # a real id: looked up inside the builder
        m = vineyardfs.ObjectMeta()
        m["typename"] = "test::Point"
        m.add_member("x_", member)
        return client.create_metadata(m)

    root = client.put([Point(1), np.zeros(2)], builder={Point: point_builder})
    assert uploads[-1] == ".batch" and uploads.count(".batch") == 1
    tree = _meta_tree(mount, root)
    assert tree["__elements_-0"]["typename"] == "test::Point"
    assert tree["__elements_-0"]["x_"]["typename"].startswith("vineyard::Tensor")
