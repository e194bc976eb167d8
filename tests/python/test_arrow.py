"""The Python client's get of what the arrow plugin builds from Arrow JS's files
(python/vineyardfs/arrow.py), and of Vineyard's Arrow layout written by hand.

Arrow JS (tests/arrow_js, pinned by its package-lock.json) is installed with `npm ci`
into that folder if tools/setup.sh has not done it yet.
"""

import fcntl
import json
import os
import subprocess

import numpy as np
import pytest

from vineyardfs import ObjectID, arrow

HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(os.path.dirname(HERE), "arrow_js")


@pytest.fixture(scope="module")
def arrow_js():
    """tests/arrow_js with Arrow JS installed (once: the lock serialises parallel tests;
    the marker is written after `npm ci` finished and only looked at under the lock)."""
    marker = os.path.join(JS, "node_modules", ".vineyardfs-installed")
    with open(os.path.join(JS, ".install.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(marker):
            subprocess.run(["npm", "ci", "--prefix", JS, "--no-audit", "--no-fund"],
                           check=True, timeout=280)
            open(marker, "w").close()
    return JS


@pytest.fixture(scope="module")
def written(mount, arrow_js):
    """The tables of tests/arrow_js/write.mjs, written by Arrow JS into new/."""
    new = os.path.join(mount.path, "new")
    subprocess.run(["node", os.path.join(arrow_js, "write.mjs"), new], check=True, timeout=120)
    return {name: os.path.basename(os.readlink(os.path.join(new, name)))
            for name in ("frame.arrow", "frame.arrows", "nulls.arrows")}


def _meta(mount, oid):
    with open(os.path.join(mount.path, "objects", oid, "meta.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", ["frame.arrow", "frame.arrows"])
def test_columns_of_an_arrow_js_table_get_back_as_the_same_numpy_arrays(client, mount, written,
                                                                         name):
    meta = _meta(mount, written[name])
    assert meta["typename"] == "vineyard::DataFrame"
    cols = {json.loads(meta["__values_-key-%d" % i]):
            client.get(ObjectID(meta["__values_-value-%d" % i]["id"]))
            for i in range(meta["__values_-size"])}
    expected = {
        "i8": np.array([-128, 0, 127], np.int8),
        "i16": np.array([-32768, 1, 32767], np.int16),
        "i32": np.array([-2147483648, 2, 2147483647], np.int32),
        "i64": np.array([-9007199254740993, 3, 9223372036854775807], np.int64),
        "u8": np.array([0, 1, 255], np.uint8),
        "u16": np.array([0, 2, 65535], np.uint16),
        "u32": np.array([0, 3, 4294967295], np.uint32),
        "u64": np.array([0, 4, 18446744073709551615], np.uint64),
        "f32": np.array([0.5, -1.25, 3.0e38], np.float32),
        "f64": np.array([np.pi, -0.0, 1e-300]),
        "b": np.array([True, False, True]),
        "s": np.array(["", "héllo", "x\U0001F600"]),
    }
    assert list(cols) == list(expected) + ["t"]
    # Timestamps: int64 counts with pandas_dtype_ (the client's layout for datetime64).
    t_meta = meta["__values_-value-12"]
    assert t_meta["pandas_dtype_"] == "datetime64[ms]"
    assert list(np.asarray(cols["t"]).view(np.int64)) == [0, 1700000000123, -1000]
    for key, want in expected.items():
        assert cols[key].dtype == want.dtype, key
        np.testing.assert_array_equal(cols[key], want, err_msg=key)


def test_a_table_with_nulls_gets_back_as_masked_arrays(client, written):
    table = client.get(ObjectID(written["nulls.arrows"]))
    assert list(table) == ["x", "n", "s", "t"]
    x, n, s = table["x"], table["n"], table["s"]
    assert x.dtype == np.float64 and n.dtype == np.int64
    assert list(np.ma.getmaskarray(x)) == [False, True, False, True, False]
    assert list(x.compressed()) == [1.5, 3.5, 5.5]
    assert list(np.ma.getmaskarray(n)) == [False, False, True, False, False]
    assert list(n.compressed()) == [1, 2, 7, 8]
    assert list(s.compressed()) == ["p", "q", "r", "ß"]
    t = table["t"]
    assert t.dtype == np.dtype("datetime64[ms]")
    assert list(np.ma.getmaskarray(t)) == [False, False, True, False, True]
    assert list(t.compressed().astype(np.int64)) == [1000, 2000, -1]


def test_the_schema_proxy_names_the_columns_and_types_of_int64_timestamps(client, mount,
                                                                         written):
    meta = _meta(mount, written["nulls.arrows"])
    proxy = client.get_object(ObjectID(meta["schema_"]["id"]))
    fields = arrow._schema_fields(proxy.member("buffer_").buffer)
    assert fields == [("x", None), ("n", None), ("s", None), ("t", "datetime64[ms]")]


def test_vineyard_arrow_arrays_written_by_hand(client, mount):
    new = os.path.join(mount.path, "new")

    def put(name, data):
        path = os.path.join(new, name)
        with open(path, "wb") as f:
            f.write(data)
        return os.path.basename(os.readlink(path))

    values = put("v.blob", np.array([100, 1, 2, 3, 4], np.int64).tobytes())
    bitmap = put("m.blob", bytes([0b00011010]))  # from bit 1: valid, null, valid, valid
    meta = {"typename": "vineyard::NumericArray<int64>", "length_": 4, "offset_": 1,
            "null_count_": 1, "buffer_": {"id": values}, "null_bitmap_": {"id": bitmap}}
    oid = put("num.meta.json", json.dumps(meta).encode())
    got = client.get(ObjectID(oid))
    assert list(np.ma.getmaskarray(got)) == [False, True, False, False]
    assert list(got.compressed()) == [1, 3, 4]
    bits = put("b.blob", bytes([0b101]))
    empty = put("e.blob", b"")
    meta = {"typename": "vineyard::BooleanArray", "length_": 3, "offset_": 0, "null_count_": 0,
            "buffer_": {"id": bits}, "null_bitmap_": {"id": empty}}
    got = client.get(ObjectID(put("bool.meta.json", json.dumps(meta).encode())))
    assert got.dtype == bool and list(got) == [True, False, True]
