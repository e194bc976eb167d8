"""Round trips of every builtin builder/resolver, the layouts they write (those
the daemon's plugins read, so views/ works for objects made from Python), and
zero-copy get."""

import json
import math
import os
import pickle

import numpy as np
import pytest

DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float16", "float32", "float64", "complex64", "complex128", "S5", "U3"]
VINEYARD_NAMES = {"int32": "int", "float32": "float", "float64": "double",
                  "S5": "bytes40", "U3": "str96"}


def sample(dtype, shape):
    n = int(np.prod(shape))
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        flat = np.arange(n) % 3 == 0
    elif dtype.kind in "SU":
        flat = np.array(["v%d" % (i % 100) for i in range(n)], dtype=dtype)
    elif dtype.kind == "c":
        flat = (np.arange(n) - 7 + 0.5j * np.arange(n)).astype(dtype)
    else:
        flat = (np.arange(n) * 3 + 1).astype(dtype)
    return flat.reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
def test_arrays_round_trip_as_tensors_for_every_dtype_and_order(client, mount, dtype, order):
    array = np.asarray(sample(dtype, (3, 5)), order=order)
    object_id = client.put(array)
    meta = client.get_meta(object_id)
    name = VINEYARD_NAMES.get(dtype, dtype)
    assert meta.typename == "vineyard::Tensor<%s>" % name
    assert meta["value_type_"] == np.dtype(dtype).name
    assert meta["shape_"] == "[3, 5]"
    assert json.loads(meta["order_"]) == order
    assert meta.nbytes == array.nbytes
    value = client.get(object_id)
    assert value.dtype == array.dtype and value.shape == array.shape
    np.testing.assert_array_equal(value, array)
    assert not value.flags.writeable
    assert value.flags.f_contiguous if order == "F" else value.flags.c_contiguous
    # The daemon's numpy plugin reads the same layout.
    view = np.load("%s/objects/%s/views/tensor.npy" % (mount.path, object_id), mmap_mode="r")
    np.testing.assert_array_equal(view, array)


@pytest.mark.parametrize("array", [
    np.array(2.5),                            # 0-d
    np.zeros((0, 4)),                         # empty
    np.arange(20.0).reshape(4, 5)[::2, 1:4],  # not contiguous: copied to C order
    np.arange(6, dtype=">i4"),                # big-endian: stored little-endian
    np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4),
], ids=["0-d", "empty", "strided", "big-endian", "3-d"])
def test_unusual_arrays_round_trip(client, array):
    value = client.get(client.put(array))
    assert value.shape == array.shape
    assert value.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(value, array)


def test_get_of_a_tensor_is_zero_copy_from_the_mapped_data_file(client, mount):
    array = np.random.default_rng(1).random(1 << 18)
    object_id = client.put(array)
    buffer_id = client.get_meta(object_id)["buffer_"].id
    value = client.get(object_id)
    address = value.__array_interface__["data"][0]
    data_path = os.path.join(mount.path, "objects", str(buffer_id), "data")
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi:
                break
        else:
            pytest.fail("the array's memory is in no mapping")
    # The array's memory is a shared mapping of objects/<buffer>/data itself.
    assert fields[-1] == data_path, line
    assert fields[1].startswith("r") and fields[1][3] == "s", line
    assert hi - lo >= array.nbytes
    # Nothing held but the mapping: the bytes stay readable after the object is gone.
    client.delete(object_id)
    assert not client.exists(object_id)
    np.testing.assert_array_equal(value, array)


def test_bytes_like_values_round_trip_as_blobs(client, mount):
    for value in (b"Hello, World!", bytearray(b"\x00\x01\x02"), memoryview(b"abc"),
                  b"", b"\x93NUMPY looks like an npy header but is kept as bytes"):
        object_id = client.put(value)
        assert object_id.is_blob
        obj = client.get_object(object_id)
        assert obj.typename == "vineyard::Blob" and obj.size == len(value)
        got = client.get(object_id)
        assert isinstance(got, memoryview) and got.readonly
        assert bytes(got) == bytes(value)
        with open(os.path.join(mount.path, "objects", str(object_id), "data"), "rb") as f:
            assert f.read() == bytes(value)


@pytest.mark.parametrize("value, typename", [
    ("text ünïcode", "vineyard::Scalar<std::string>"),
    ("", "vineyard::Scalar<std::string>"),
    (42, "vineyard::Scalar<int>"),
    (-(1 << 63), "vineyard::Scalar<int>"),
    (1 << 100, "vineyard::Scalar<int>"),
    (2.5, "vineyard::Scalar<double>"),
    (float("inf"), "vineyard::Scalar<double>"),
    (True, "vineyard::Scalar<bool>"),
    (False, "vineyard::Scalar<bool>"),
    (None, "vineyard::Scalar<None>"),
])
def test_scalars_round_trip(client, mount, value, typename):
    object_id = client.put(value)
    meta = client.get_meta(object_id)
    assert meta.typename == typename
    assert meta["type_"] == type(value).__name__
    got = client.get(object_id)
    assert type(got) is type(value) and got == value
    # json.so serves small values inline.
    if isinstance(value, (str, bool, type(None))) or (isinstance(value, int) and
                                                       abs(value) < 1 << 53):
        with open("%s/objects/%s/views/value.json" % (mount.path, object_id)) as f:
            assert json.load(f) == value


def test_nan_round_trips(client):
    assert math.isnan(client.get(client.put(float("nan"))))


def test_containers_round_trip_with_their_layouts(client, mount):
    pair = client.put((1, "two"))
    meta = client.get_meta(pair)
    assert meta.typename == "vineyard::Pair"
    assert meta["first_"].typename == "vineyard::Scalar<int>"
    assert client.get(pair) == (1, "two")

    triple = client.put((1, 2.5, None))
    meta = client.get_meta(triple)
    assert meta.typename == "vineyard::Tuple" and meta["__elements_-size"] == 3
    assert client.get(triple) == (1, 2.5, None)

    items = client.put([True, [1, 2], (3, 4), b"raw"])
    meta = client.get_meta(items)
    assert meta.typename == "vineyard::List" and meta["__elements_-size"] == 4
    value = client.get(items)
    assert value[:3] == [True, [1, 2], (3, 4)] and bytes(value[3]) == b"raw"
    with open("%s/objects/%s/views/value.json" % (mount.path, items)) as f:
        view = json.load(f)
    assert view[0] is True and view[1]["typename"] == "vineyard::List"

    assert client.get(client.put(())) == ()
    assert client.get(client.put([])) == []


def test_objects_put_inside_containers_are_referenced_not_copied(client):
    array_id = client.put(np.arange(4.0))
    obj = client.get_object(array_id)
    pair = client.put((obj, client.get_meta(array_id)))
    meta = client.get_meta(pair)
    assert meta["first_"].id == array_id and meta["second_"].id == array_id
    first, second = client.get(pair)
    np.testing.assert_array_equal(first, second)
    assert client.put(array_id) == array_id


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return (self.x, self.y) == (other.x, other.y)


def test_other_values_are_pickled_with_out_of_band_buffers_mapped_back(client):
    assert client.get(client.put(Point(1, 2))) == Point(1, 2)
    value = {"weights": np.arange(1000.0), "name": "model", "tags": {1, 2}}
    object_id = client.put(value)
    meta = client.get_meta(object_id)
    assert meta.typename == "vineyard::PickleBuffer"
    assert meta["__buffers_-size"] == 1  # the array went out of band, into its own blob
    assert meta["__buffers_-0"].nbytes == 8000
    got = client.get(object_id)
    assert got["name"] == "model" and got["tags"] == {1, 2}
    np.testing.assert_array_equal(got["weights"], value["weights"])
    assert not got["weights"].flags.writeable  # mapped from the blob, not copied
    masked = np.ma.MaskedArray([1, 2], mask=[0, 1])
    assert client.get_meta(client.put(masked)).typename == "vineyard::PickleBuffer"
    assert client.get(client.put(masked)).mask.tolist() == [False, True]
    # An object array cannot be a Tensor.
    objects = np.array([1, "a", None], dtype=object)
    assert client.get(client.put(objects)).tolist() == [1, "a", None]
    assert pickle.loads(pickle.dumps(Point(3, 4))) == Point(3, 4)
