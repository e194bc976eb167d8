"""pandas through the client on a real mount (README "The Python client", issue
15): DataFrame, Series and indexes in Vineyard's layouts, zero-copy read-only
columns mapped from their blobs, every dtype case, blob reuse for columns that
came from the store, and the daemon's plugins on the same objects (views/ of a
frame put from Python, a .csv dropped into new/ read back as a DataFrame)."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import vineyardfs

from conftest import ROOT


def meta_json(mount, object_id):
    with open(os.path.join(mount.path, "objects", str(object_id), "meta.json")) as f:
        return json.load(f)


def mapping_of(address):
    """The path of the file mapped at `address` in this process (/proc/self/maps)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi:
                return fields[5].strip() if len(fields) > 5 else ""
    return None


def blob_of(array):
    """The vineyardfs.Blob an array's memory belongs to (its base chain), or None."""
    base = array
    while base is not None and not isinstance(base, vineyardfs.Blob):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return base


# ---- Vineyard's layout ----

def test_dataframe_has_vineyards_layout(client, mount):
    df = pd.DataFrame({"a": np.arange(4, dtype=np.float64), "b": np.arange(4, dtype=np.int32)})
    tree = meta_json(mount, client.put(df))
    assert tree["typename"] == "vineyard::DataFrame"
    assert json.loads(tree["columns_"]) == ["a", "b"]
    assert tree["__values_-size"] == 2
    assert [json.loads(tree["__values_-key-%d" % i]) for i in range(2)] == ["a", "b"]
    assert tree["__values_-value-0"]["typename"] == "vineyard::Tensor<double>"
    assert tree["__values_-value-1"]["typename"] == "vineyard::Tensor<int>"
    for i, itemsize in enumerate([8, 4]):
        column = tree["__values_-value-%d" % i]
        assert json.loads(column["shape_"]) == [4]
        assert column["buffer_"]["typename"] == "vineyard::Blob"
        assert column["buffer_"]["length"] == 4 * itemsize
    assert tree["index_"]["typename"] == "vineyard::RangeIndex"
    assert (tree["index_"]["start_"], tree["index_"]["stop_"], tree["index_"]["step_"]) == (0, 4, 1)
    assert tree["partition_index_row_"] == 0
    assert tree["partition_index_column_"] == 0
    assert tree["row_batch_index_"] == 0


def test_series_and_index_have_vineyards_layout(client, mount):
    s = pd.Series([1.5, 2.5], index=pd.Index(["x", "y"], name="key"), name="price")
    tree = meta_json(mount, client.put(s))
    assert tree["typename"] == "vineyard::Series"
    assert json.loads(tree["name"]) == "price"
    assert tree["value_"]["typename"] == "vineyard::Tensor<double>"
    assert tree["index_"]["typename"] == "vineyard::Index"
    assert json.loads(tree["index_"]["name"]) == "key"
    assert tree["index_"]["value_type_"] == "object"


# ---- zero-copy ----

def test_get_maps_numeric_columns_zero_copy_and_read_only(client, mount):
    df = pd.DataFrame({"f": np.linspace(0, 1, 1000), "i": np.arange(1000, dtype=np.int64),
                       "b": np.arange(1000) % 3 == 0, "u": np.arange(1000, dtype=np.uint16)})
    object_id = client.put(df)
    tree = meta_json(mount, object_id)
    back = client.get(object_id)
    pd.testing.assert_frame_equal(back, df)
    for i, name in enumerate(df.columns):
        blob_id = tree["__values_-value-%d" % i]["buffer_"]["id"]
        values = back[name].to_numpy()
        assert not values.flags.writeable
        blob = blob_of(values)
        assert blob is not None and str(blob.id) == blob_id
        address = values.__array_interface__["data"][0]
        assert address == blob.address
        # the column's memory is the blob's payload mapped from the mount
        assert mapping_of(address) == os.path.join(mount.path, "objects", blob_id, "data")
        with pytest.raises(ValueError):
            values[0] = values[1]


def test_series_values_are_zero_copy(client, mount):
    s = pd.Series(np.arange(100, dtype=np.float32), name="x")
    back = client.get(client.put(s))
    pd.testing.assert_series_equal(back, s)
    values = back.to_numpy()
    assert not values.flags.writeable
    assert isinstance(blob_of(values), vineyardfs.Blob)


# ---- every dtype case ----

def _frames():
    n = 6
    rng = np.random.default_rng(7)
    frames = {
        "ints": pd.DataFrame({t: np.arange(n, dtype=t) for t in
                              ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                               "uint64")}),
        "floats_complex_bool": pd.DataFrame({
            "f2": np.arange(n, dtype=np.float16), "f4": rng.random(n).astype(np.float32),
            "f8": rng.random(n), "c16": rng.random(n) + 1j, "b": np.arange(n) % 2 == 0}),
        "nan": pd.DataFrame({"x": [1.0, np.nan, 3.0, np.nan, 5.0, np.inf]}),
        "strings": pd.DataFrame({"s": ["a", "bb", "", "ünï", "x y", "z" * 40]}),
        "objects": pd.DataFrame({"o": [1, "a", None, 2.5, b"x", (1, 2)]}),
        "strings_with_none": pd.DataFrame({"s": ["a", None, "c", np.nan, "e", "f"]}),
        "datetime": pd.DataFrame({"t": pd.date_range("2021-03-27", periods=n, freq="7H")}),
        "datetime_tz": pd.DataFrame({
            "utc": pd.date_range("2021-03-27", periods=n, freq="7H", tz="UTC"),
            "berlin": pd.date_range("2021-03-27", periods=n, freq="7H", tz="Europe/Berlin")}),
        "timedelta": pd.DataFrame({"d": pd.to_timedelta(np.arange(n) * 1.5, unit="h")}),
        "categorical": pd.DataFrame({
            "c": pd.Categorical(list("abcabc")),
            "ordered": pd.Categorical(["lo", "hi", "mid", "lo", "hi", "mid"],
                                      categories=["lo", "mid", "hi"], ordered=True)}),
        "nullable": pd.DataFrame({"I": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
                                  "B": pd.array([True, None, False] * 2, dtype="boolean")}),
        "int_labels": pd.DataFrame(rng.random((n, 3)), columns=[10, 20, 30]),
        "mixed_labels": pd.DataFrame({1: np.arange(n), "a": np.arange(n) * 2.0}),
        "multi_level_labels": pd.DataFrame(
            rng.random((n, 4)),
            columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1), ("b", 2)],
                                              names=["letter", "number"])),
        "named_columns": pd.DataFrame(rng.random((n, 2)),
                                      columns=pd.Index(["p", "q"], name="cols")),
        "reindexed": pd.DataFrame({"x": np.arange(n)}).reindex([5, 3, 1, 0, 2, 4]),
        "reindex_with_gaps": pd.DataFrame({"x": np.arange(n) * 1.0}).reindex([0, 2, 9, 4]),
        "set_index": pd.DataFrame({"k": list("uvwxyz"), "v": np.arange(n)}).set_index("k"),
        "datetime_index": pd.DataFrame({"v": np.arange(n)}).set_index(
            pd.date_range("2020-01-01", periods=n, name="day")),
        "multi_index_rows": pd.DataFrame(
            {"k1": list("aabbcc"), "k2": [1, 2] * 3, "v": np.arange(n) * 1.0}
        ).set_index(["k1", "k2"]),
        "float_index": pd.DataFrame({"v": np.arange(n)}, index=np.arange(n) / 2),
        "range_index_step": pd.DataFrame({"v": np.arange(n)}, index=pd.RangeIndex(10, 10 + 3 * n, 3)),
        "duplicate_labels": pd.DataFrame([[1, 2.0], [3, 4.0]], columns=["x", "x"]),
        "empty_rows": pd.DataFrame({"a": np.array([], dtype=np.float64),
                                    "s": np.array([], dtype=object)}),
        "empty_columns": pd.DataFrame(index=[1, 2, 3]),
        "empty": pd.DataFrame(),
        "sparse": pd.DataFrame({"sp": pd.arrays.SparseArray([0.0, 0.0, 1.5, np.nan, 0.0, 2.0]),
                                "spi": pd.arrays.SparseArray([0, 0, 3, 0, 0, 7], fill_value=0)}),
    }
    return frames


@pytest.mark.parametrize("case", sorted(_frames()))
def test_dataframe_round_trips(client, case):
    df = _frames()[case]
    back = client.get(client.put(df))
    pd.testing.assert_frame_equal(back, df)
    assert list(back.dtypes) == list(df.dtypes)


def test_sparse_columns_come_back_sparse_with_their_fill_value(client, mount):
    df = _frames()["sparse"]
    object_id = client.put(df)
    tree = meta_json(mount, object_id)
    column = tree["__values_-value-0"]
    assert column["typename"] == "vineyard::SparseArray<float64>"
    assert column["sp_index_name"] == "IntIndex" and column["sp_index_size"] == 6
    back = client.get(object_id)
    assert back["sp"].dtype == pd.SparseDtype(np.float64, np.nan)
    assert back["spi"].dtype == pd.SparseDtype(np.int64, 0)


def test_datetime_columns_keep_unit_and_time_zone(client, mount):
    df = _frames()["datetime_tz"]
    object_id = client.put(df)
    tree = meta_json(mount, object_id)
    assert tree["__values_-value-1"]["pandas_dtype_"] == "datetime64[ns, Europe/Berlin]"
    assert tree["__values_-value-1"]["typename"] == "vineyard::Tensor<int64>"
    back = client.get(object_id)
    assert str(back["berlin"].dtype) == "datetime64[ns, Europe/Berlin]"
    # tz-aware values are the UTC counts, mapped
    assert isinstance(blob_of(back["berlin"].array._ndarray), vineyardfs.Blob)


@pytest.mark.parametrize("value", [
    pd.Series([1, 2, 3], name="n"),
    pd.Series(["a", "b"], index=[10, 20], name=("multi", "name")),
    pd.Series(pd.date_range("2020", periods=3, tz="Asia/Tokyo")),
    pd.Series(pd.Categorical(["x", "y", "x"])),
    pd.Series([], dtype=np.float64),
], ids=["ints", "tuple_name", "tz", "categorical", "empty"])
def test_series_round_trips(client, value):
    pd.testing.assert_series_equal(client.get(client.put(value)), value)


@pytest.mark.parametrize("value", [
    pd.RangeIndex(3, 30, 3, name="r"),
    pd.Index([3, 1, 2], name="ints"),
    pd.Index(["b", "a"], name="strings"),
    pd.Index([0.5, np.nan]),
    pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["l", "n"]),
    pd.DatetimeIndex(["2020-01-01", "2021-06-30"], tz="UTC", name="t"),
    pd.CategoricalIndex(["p", "q", "p"]),
], ids=["range", "ints", "strings", "nan", "multi", "datetime_tz", "categorical"])
def test_indexes_round_trip(client, value):
    pd.testing.assert_index_equal(client.get(client.put(value)), value, exact=True)


def test_range_index_stores_no_blob(client, mount):
    tree = meta_json(mount, client.put(pd.RangeIndex(0, 1 << 40)))
    assert tree["typename"] == "vineyard::RangeIndex"
    assert tree["nbytes"] == 0


# ---- blob reuse ----

def _column_blobs(mount, object_id):
    tree = meta_json(mount, object_id)
    return {json.loads(tree["__values_-key-%d" % i]): tree["__values_-value-%d" % i]["buffer_"]["id"]
            for i in range(tree["__values_-size"])}


def test_a_frame_from_get_extended_and_put_again_reuses_the_column_blobs(client, mount):
    df = pd.DataFrame({"a": np.arange(1000, dtype=np.float64), "b": np.arange(1000)})
    first = client.put(df)
    back = client.get(first)
    back["c"] = back["a"] * 2  # a new column: the only one that needs a new blob
    second = client.put(back)
    before, after = _column_blobs(mount, first), _column_blobs(mount, second)
    assert after["a"] == before["a"] and after["b"] == before["b"]
    assert after["c"] not in before.values()
    # the shared blobs outlive the first frame
    client.delete(first)
    pd.testing.assert_frame_equal(client.get(second), back)
    client.delete(second)


def test_two_frames_built_on_one_stored_array_share_its_blob(client, mount):
    array = client.get(client.put(np.arange(500, dtype=np.int64)))
    ids = [client.put(pd.DataFrame({"x": array}, copy=False)),
           client.put(pd.DataFrame({"y": array, "z": np.ones(500)}, copy=False))]
    assert _column_blobs(mount, ids[0])["x"] == _column_blobs(mount, ids[1])["y"]


def test_a_copied_or_sliced_column_is_not_mistaken_for_the_blob(client, mount):
    df = pd.DataFrame({"a": np.arange(100, dtype=np.float64)})
    first = client.put(df)
    back = client.get(first)
    sliced = pd.DataFrame({"a": back["a"].to_numpy()[10:]}, copy=False)
    second = client.put(sliced)
    assert _column_blobs(mount, second)["a"] != _column_blobs(mount, first)["a"]
    pd.testing.assert_frame_equal(client.get(second), sliced)


# ---- the daemon's plugins on the same objects ----

def test_a_frame_put_from_python_has_a_csv_view_and_npy_views_of_its_columns(client, mount):
    df = pd.DataFrame({"i": np.arange(5), "f": [0.5, np.nan, 2.25, 1e-7, -3.0],
                       "b": [True, False, True, True, False], "s": ["a", "b,c", "d\"e", "", "ü"]})
    object_id = client.put(df)
    views = os.path.join(mount.path, "objects", str(object_id), "views")
    assert "dataframe.csv" in os.listdir(views)
    pd.testing.assert_frame_equal(pd.read_csv(os.path.join(views, "dataframe.csv"),
                                              keep_default_na=False, na_values=[""],
                                              dtype={"s": object}).fillna({"s": ""}), df)
    tree = meta_json(mount, object_id)
    for i, name in enumerate(["i", "f", "b"]):
        column = tree["__values_-value-%d" % i]["id"]
        npy = os.path.join(mount.path, "objects", column, "views", "tensor.npy")
        np.testing.assert_array_equal(np.load(npy, mmap_mode="r"), df[name].to_numpy())


def test_a_csv_dropped_into_new_is_a_dataframe_with_the_right_dtypes(client, mount):
    text = "id,price,ok,name\n1,2.5,True,apple\n2,,False,\"b,anana\"\n3,4.0,True,cherry\n"
    path = os.path.join(mount.path, "new", "fruit.csv")
    with open(path, "w") as f:
        f.write(text)
    object_id = vineyardfs.ObjectID(os.readlink(path))
    os.unlink(path)
    df = client.get(object_id)
    assert isinstance(df, pd.DataFrame)
    assert dict(df.dtypes.astype(str)) == {"id": "int64", "price": "float64", "ok": "bool",
                                           "name": "object"}
    expected = pd.DataFrame({"id": [1, 2, 3], "price": [2.5, np.nan, 4.0],
                             "ok": [True, False, True], "name": ["apple", "b,anana", "cherry"]})
    pd.testing.assert_frame_equal(df, expected)
    assert isinstance(blob_of(df["id"].to_numpy()), vineyardfs.Blob)  # numeric columns mapped


# ---- without pandas ----

def _run_without(mount, modules, code):
    prelude = ("import sys\n"
               "for m in %r: sys.modules[m] = None  # import fails, as when not installed\n"
               "sys.path.insert(0, %r)\n" % (modules, os.path.join(ROOT, "python")))
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, env=dict(os.environ, MNT=mount.path), timeout=120)


def test_importing_the_client_imports_neither_pandas_nor_scipy(mount):
    r = subprocess.run([sys.executable, "-c",
                        "import sys; sys.path.insert(0, %r); import vineyardfs; "
                        "print('pandas' in sys.modules, 'scipy' in sys.modules)"
                        % os.path.join(ROOT, "python")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_the_client_works_without_pandas_and_scipy(client, mount):
    frame = client.put(pd.DataFrame({"a": [1.0, 2.0]}))
    r = _run_without(mount, ["pandas", "scipy"], (
        "import os, numpy as np, vineyardfs\n"
        "c = vineyardfs.connect(os.environ['MNT'])\n"
        "i = c.put(np.arange(3.0)); assert list(c.get(i)) == [0.0, 1.0, 2.0]\n"
        "assert c.get(c.put({'k': 1})) == {'k': 1}\n"
        "obj = c.get('%s')  # no pandas: the Object itself\n"
        "print(type(obj).__name__, obj.typename)\n" % frame))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Object", "vineyard::DataFrame"]
