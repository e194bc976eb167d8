"""The examples of ../shared/reference/ (Vineyard's "Define Data Types in Python")
that need one node, run against a real mount. Changes to the page's code: the
import and connect lines; `pyarrow`, which Debian 12 does not package, is replaced
by numpy's masked arrays in the NumericArray builder/resolver example (same
layout: buffer_, null_bitmap_, length_, null_count_, offset_); `xgboost` by a
small class standing in for a DMatrix. The two-instance Pair session's remote
half (a member on another node resolving to None) runs here through the one
function that decides locality, Client.is_local; the cluster tests run it on two
real nodes."""

import re

import numpy as np
import pytest

import vineyardfs as vineyard
from vineyardfs import ObjectMeta, resolver_context
from vineyardfs.utils import buffer_builder, normalize_dtype, as_memoryview

builder_ctx = vineyard.default_builder_context
resolver_ctx = vineyard.default_resolver_context


def test_blob_example_prints_typename_size_and_object(client, capsys):
    payload = b"Hello, World!"
    blob_id = client.put(payload)
    blob = client.get_object(blob_id)
    print(blob.typename, blob.size, blob)
    out = capsys.readouterr().out
    # The page shows `vineyard::Blob 28 Object <"o800000011cfa7040": vineyard::Blob>`;
    # the payload is 13 bytes.
    assert re.fullmatch(r'vineyard::Blob 13 Object <"o8[0-9a-f]{15}": vineyard::Blob>\n', out), out
    assert str(blob_id) in out
    assert bytes(blob.buffer) == payload


def test_pair_of_arrays_session_on_one_node(client, capsys, monkeypatch):
    # build the first array
    id1 = client.put(np.zeros(8))
    # persist the object to make it visible to form the global object
    client.persist(id1)
    # build the second array
    id2 = client.put(np.ones(4))
    client.persist(id2)
    # build the pair
    obj1 = client.get_object(id1)
    obj2 = client.get_object(id2)
    id_pair = client.put((obj1, obj2))
    # get the pair object
    obj_pair = client.get_object(id_pair)
    print(obj_pair.first.typename, obj_pair.first.size(), obj_pair.second.size())
    assert capsys.readouterr().out == "vineyard::Tensor<double> 8 4\n"
    # Both payloads are here: both values come back.
    value_pair = client.get(id_pair)
    assert isinstance(value_pair, tuple) and len(value_pair) == 2
    np.testing.assert_array_equal(value_pair[0], np.zeros(8))
    np.testing.assert_array_equal(value_pair[1], np.ones(4))
    # As seen from the second instance: the first array's payload is elsewhere.
    first_blob = obj1.member("buffer_").id
    local = client.is_local
    monkeypatch.setattr(client, "is_local", lambda i: False if i == first_blob else local(i))
    value_pair = client.get(id_pair)
    print(value_pair)
    assert capsys.readouterr().out == "(None, array([1., 1., 1., 1.]))\n"
    # fetch=True asks for the payload wherever it is.
    value_pair = client.get(id_pair, fetch=True)
    np.testing.assert_array_equal(value_pair[0], np.zeros(8))


# The page's NumericArray builder and resolver, with numpy.ma in place of pyarrow.
def numeric_array_builder(client, array, builder):
    meta = ObjectMeta()
    meta['typename'] = 'vineyard::NumericArray<%s>' % array.dtype
    meta['length_'] = len(array)
    meta['null_count_'] = int(np.ma.count_masked(array))
    meta['offset_'] = 0
    null_bitmap = buffer_builder(client, np.packbits(~np.ma.getmaskarray(array),
                                                     bitorder='little'), builder)
    buffer = buffer_builder(client, np.ma.getdata(array), builder)
    meta.add_member('buffer_', buffer)
    meta.add_member('null_bitmap_', null_bitmap)
    meta['nbytes'] = array.nbytes
    return client.create_metadata(meta)


def numeric_array_resolver(obj):
    meta = obj.meta
    typename = obj.typename
    value_type = normalize_dtype(re.match(r'vineyard::NumericArray<([^>]+)>', typename).groups()[0])
    buffer = as_memoryview(obj.member('buffer_'))
    null_bitmap = as_memoryview(obj.member('null_bitmap_'))
    length = int(meta['length_'])
    null_count = int(meta['null_count_'])
    offset = int(meta['offset_'])
    values = np.frombuffer(buffer, dtype=value_type, count=length,
                           offset=offset * value_type.itemsize)
    valid = np.unpackbits(np.frombuffer(null_bitmap, dtype=np.uint8), count=length,
                          bitorder='little').astype(bool)
    assert int((~valid).sum()) == null_count
    return np.ma.MaskedArray(values, mask=~valid)


def test_numeric_array_builder_and_resolver_are_registered_and_used(client, mount):
    builder_ctx.register(np.ma.MaskedArray, numeric_array_builder)
    resolver_ctx.register('vineyard::NumericArray', numeric_array_resolver)
    try:
        array = np.ma.MaskedArray([1, 2, 3, 4, 5], mask=[0, 1, 0, 0, 1], dtype=np.int64)
        object_id = client.put(array)
        meta = client.get_meta(object_id)
        assert meta.typename == 'vineyard::NumericArray<int64>'
        assert meta['null_count_'] == 2 and meta['length_'] == 5
        value = client.get(object_id)
        assert isinstance(value, np.ma.MaskedArray)
        assert value.tolist() == [1, None, 3, 4, None]
        # Vineyard's layout: the daemon's numpy plugin serves the same object as .npy.
        view = np.load('%s/objects/%s/views/array.npy' % (mount.path, object_id))
        np.testing.assert_array_equal(view, [1, 2, 3, 4, 5])
    finally:
        builder_ctx.unregister(np.ma.MaskedArray)
        resolver_ctx.register('vineyard::NumericArray',
                              vineyard.builtins.numeric_array_resolver)


class DMatrix:
    """Stands in for xgboost.DMatrix: a second way to resolve a Tensor."""

    def __init__(self, data):
        self.data = data


def numpy_resolver(obj):
    return vineyard.builtins.tensor_resolver(obj)


def xgboost_resolver(obj):
    return DMatrix(vineyard.builtins.tensor_resolver(obj))


def test_two_resolvers_registered_for_one_type_the_last_one_serves(client):
    object_id = client.put(np.arange(6.0))
    with resolver_context() as ctx:  # registered in a context so the default stays clean
        ctx.register('vineyard::Tensor', numpy_resolver)
        ctx.register('vineyard::Tensor', xgboost_resolver)
        assert isinstance(client.get(object_id), DMatrix)
        ctx.register('vineyard::Tensor', numpy_resolver)
        assert isinstance(client.get(object_id), np.ndarray)


def test_resolver_context_overrides_the_default_and_restores_it(client):
    object_id = client.put(np.arange(6.0))
    assert isinstance(client.get(object_id), np.ndarray)
    # The page's spelling, a two-element set, and the dict form.
    with resolver_context({'vineyard::Tensor', xgboost_resolver}):
        value = client.get(object_id)
        assert isinstance(value, DMatrix)
        np.testing.assert_array_equal(value.data, np.arange(6.0))
    assert isinstance(client.get(object_id), np.ndarray)
    with resolver_context({'vineyard::Tensor': xgboost_resolver}):
        assert isinstance(client.get(object_id), DMatrix)
    assert isinstance(client.get(object_id), np.ndarray)


def test_resolver_contexts_nest(client):
    tensor = client.put(np.arange(3.0))
    scalar = client.put("text")
    with resolver_context({'vineyard::Tensor': xgboost_resolver}):
        with resolver_context({'vineyard::Scalar': lambda obj: "inner"}):
            assert isinstance(client.get(tensor), DMatrix)  # from the outer context
            assert client.get(scalar) == "inner"
        assert client.get(scalar) == "text"
        assert isinstance(client.get(tensor), DMatrix)
    assert isinstance(client.get(tensor), np.ndarray)


def test_a_context_is_restored_when_the_block_raises(client):
    object_id = client.put(np.arange(3.0))
    with pytest.raises(RuntimeError):
        with resolver_context({'vineyard::Tensor': xgboost_resolver}):
            raise RuntimeError("boom")
    assert isinstance(client.get(object_id), np.ndarray)
