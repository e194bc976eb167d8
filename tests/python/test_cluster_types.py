"""Every type the client stores, made on node 1 and read on node 2 of a real
two-node cluster (issue 15): without fetch=True a value whose payload stays on
node 1 resolves to None; with fetch=True it comes back equal, and its arrays are
then mapped from node 2's own copy of the blobs."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import vineyardfs as vineyard

from test_cluster import _stop_all, start_cluster, wait_exists
from test_pandas import _frames, blob_of


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    mounts = start_cluster(tmp_path_factory.mktemp("types"))
    try:
        yield [vineyard.connect(m.path) for m in mounts]
    finally:
        _stop_all(mounts)


def _values():
    values = {"df_" + k: v for k, v in _frames().items()}
    values.update({
        "bytes": b"payload",
        "empty_bytes": b"",
        "f8": np.arange(10.0),
        "i4_2d_fortran": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
        "bool": np.array([True, False]),
        "datetime64": np.array(["2020-01-01", "2021-01-01"], dtype="M8[ns]"),
        "str_array": np.array(["a", "bc"]),
        "int": 7, "float": 2.5, "str": "s", "bool_scalar": True, "none": None,
        "tuple": (np.zeros(2), "x", 3),
        "pair": (np.ones(3), b"b"),
        "list": [np.arange(3), [1, 2]],
        "pickled": {"k": np.arange(4)},
        "series": pd.Series([1.5, 2.5], index=["a", "b"], name="s"),
        "index": pd.Index([3, 1, 2], name="i"),
        "range_index": pd.RangeIndex(0, 10, 2),
        "multi_index": pd.MultiIndex.from_product([["a", "b"], [1, 2]]),
        "categorical": pd.Categorical(["x", "y", "x"]),
        "sparse_array": pd.arrays.SparseArray([0.0, 1.0, 0.0]),
    })
    for fmt in ("bsr", "coo", "csc", "csr", "dia"):
        values["scipy_" + fmt] = sp.random(6, 6, density=0.4, format=fmt, random_state=5)
    return values


def _assert_same(expected, got):
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(got, expected)
    elif isinstance(expected, pd.Index):
        pd.testing.assert_index_equal(got, expected, exact=True)
    elif isinstance(expected, (pd.Categorical, pd.arrays.SparseArray)):
        pd.testing.assert_extension_array_equal(got, expected)
    elif sp.issparse(expected):
        assert got.format == expected.format
        np.testing.assert_array_equal(got.toarray(), expected.toarray())
    elif isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    elif isinstance(expected, (bytes, memoryview)):
        assert bytes(got) == bytes(expected)
    elif isinstance(expected, (tuple, list)):
        assert type(got) is type(expected) and len(got) == len(expected)
        for e, g in zip(expected, got):
            _assert_same(e, g)
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys()
        for k in expected:
            _assert_same(expected[k], got[k])
    else:
        assert got == expected and type(got) is type(expected)


def _holds_payload(client, object_id):
    """Whether any blob under the object has bytes (what a fetch must copy)."""
    stack = [client.get_meta(object_id)]
    while stack:
        meta = stack.pop()
        if meta.id.is_blob and int(meta.get("length", 0)) > 0:
            return True
        stack.extend(meta.member(n) for n in meta.member_names())
    return False


def _has_none(value):
    if value is None:
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_none(v) for v in value)
    return False


@pytest.mark.parametrize("case", sorted(_values()))
def test_every_type_round_trips_across_two_nodes_with_fetch(nodes, case):
    node1, node2 = nodes
    value = _values()[case]
    object_id = node1.put(value, persist=True)
    wait_exists(node2, object_id)
    if _holds_payload(node1, object_id):
        assert _has_none(node2.get(object_id)), "resolved without fetch=True"
    got = node2.get(object_id, fetch=True)
    _assert_same(value, got)
    if isinstance(got, pd.DataFrame):
        for i, dtype in enumerate(got.dtypes):
            values = got.iloc[:, i].to_numpy()
            if isinstance(dtype, np.dtype) and dtype.kind in "biuf" and len(values):
                blob = blob_of(values)
                assert blob is not None and blob._client is node2  # node 2's copy, mapped
    _assert_same(value, node2.get(object_id))  # fetched: local now
