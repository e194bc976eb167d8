"""The builtin builders and resolvers, registered in the default contexts.

The layouts are Vineyard's and those the daemon's builtin plugins read, so that
``objects/<id>/views/`` works for objects made from Python:

  bytes, bytearray, memoryview -> vineyard::Blob (the raw bytes); resolved as a
                                  read-only memoryview of the mapped payload
  numpy.ndarray                -> vineyard::Tensor<T>: value_type_, value_type_meta_,
                                  shape_, order_ and partition_index_ (JSON text), and
                                  the buffer_ blob; resolved as a read-only array
                                  mapped from buffer_'s data file (zero-copy)
  tuple                        -> vineyard::Pair (2 elements: first_, second_) or
                                  vineyard::Tuple (__elements_-size, __elements_-<i>)
  list                         -> vineyard::List (like Tuple)
  str, int, float, bool, None  -> vineyard::Scalar<std::string | int | double | bool |
                                  None>: value_ and type_
  Object, ObjectMeta, ObjectID -> the object itself (no new object: a reference,
                                  e.g. a member of a Pair)
  anything else                -> vineyard::PickleBuffer: pickle protocol 5; the stream
                                  in buffer_, each out-of-band buffer (numpy arrays
                                  inside) in its own blob __buffers_-<i>, mapped back
                                  zero-copy on get

Also resolved: vineyard::NumericArray<T> and vineyard::Array<T> (buffer_, length_
or size_, offset_) as 1-D arrays, vineyard::Sequence as a list.

Containers whose members were created on another instance are made global
(DESIGN.md §4: only a global object may have members on other nodes).
"""

import json
import math
import pickle

from . import batch as _batch
from . import utils
from .context import default_builder_context, default_resolver_context
from .errors import InvalidMetadata
from .objects import Blob, Object, ObjectID, ObjectMeta, _json_field, buffer_address

# ---- builders ----


def bytes_builder(client, value, builder=None, **meta):
    if meta:
        raise InvalidMetadata("a vineyard::Blob carries no extra fields (got %s)" % sorted(meta))
    return client._put_bytes(value)


def _scalar(typename, value, type_name, meta):
    m = ObjectMeta(**meta)
    m["typename"] = typename
    m["value_"] = value
    m["type_"] = type_name
    m["nbytes"] = 0
    return m


def int_builder(client, value, builder=None, **meta):
    # JSON numbers beyond 64 bits would lose digits in the daemon: keep them as text.
    v = int(value)
    stored = v if -(1 << 63) <= v < (1 << 64) else str(v)
    return client.create_metadata(_scalar("vineyard::Scalar<int>", stored,
                                          type(value).__name__, meta))


def float_builder(client, value, builder=None, **meta):
    v = float(value)
    stored = v if math.isfinite(v) else repr(v)  # JSON has no nan/inf
    return client.create_metadata(_scalar("vineyard::Scalar<double>", stored,
                                          type(value).__name__, meta))


def bool_builder(client, value, builder=None, **meta):
    return client.create_metadata(_scalar("vineyard::Scalar<bool>", bool(value), "bool", meta))


def str_builder(client, value, builder=None, **meta):
    return client.create_metadata(_scalar("vineyard::Scalar<std::string>", str(value), "str",
                                          meta))


def none_builder(client, value, builder=None, **meta):
    return client.create_metadata(_scalar("vineyard::Scalar<None>", None, "NoneType", meta))


def object_ref_builder(client, value, builder=None, **meta):
    if meta:
        raise InvalidMetadata("an existing object cannot take new fields (got %s)" % sorted(meta))
    if isinstance(value, ObjectMeta) and value.id is None:
        return client.create_metadata(value).id
    return value.id if isinstance(value, (Object, ObjectMeta)) else value


def _make_global_if_remote(client, meta, member_ids):
    here = client.instance_id
    for m in member_ids:  # (an ObjectID's instance_id inline: lists of 1,000 members)
        if ((m._value >> 48) & 0x7FFF if type(m) is ObjectID else m.instance_id) != here:
            meta.set_global(True)
            return


def tuple_builder(client, value, builder, **meta):
    m = ObjectMeta(**meta)
    ids = [builder.run(client, item) for item in value]
    if len(value) == 2:
        m["typename"] = "vineyard::Pair"
        m.add_member("first_", ids[0])
        m.add_member("second_", ids[1])
    else:
        m["typename"] = "vineyard::Tuple"
        _elements(m, ids)
    _make_global_if_remote(client, m, ids)
    return client.create_metadata(m)


def list_builder(client, value, builder, **meta):
    m = ObjectMeta(**meta)
    m["typename"] = "vineyard::List"
    ids = _build_items(client, value, builder)
    _elements(m, ids)
    _make_global_if_remote(client, m, ids)
    return client.create_metadata(m)


def _build_items(client, items, builder):
    """The ids of `items` built with `builder`. Inside put(), a list of arrays whose
    builder is tensor_builder calls it directly: the same objects, without the
    per-item dispatch (context.build) of builder.run."""
    batch = _batch.current(client)
    if (len(items) > 1 and batch is not None
            and len({type(item) for item in items}) == 1
            and type(items[0]).__name__ == "ndarray"
            and builder.builder_for(items[0]) is tensor_builder):
        ids = record_tensors(client, batch, items)
        if ids is not None:
            return ids
        ids = [tensor_builder(client, item, builder) for item in items]
        return [i if type(i) is ObjectID else i.id for i in ids]
    return [builder.run(client, item) for item in items]


def record_tensors(client, batch, arrays):
    """Inside put(): the stand-in ids of the Tensors of `arrays` (a list of ndarrays),
    recorded in one call (Batch.add_tensors) when they are all plain numeric arrays of
    one dtype (little-endian), shape and C-contiguous layout, of 1 byte to INLINE_MAX,
    none a view of a blob of this mount: then tensor_builder would record, for each,
    its blob and the same Tensor form. None, with nothing recorded, otherwise."""
    np = utils.numpy()
    first = arrays[0]
    dtype, shape, strides = first.dtype, first.shape, first.strides
    if (dtype.kind not in "biufc" or dtype.byteorder == ">" or not first.flags.c_contiguous
            or not 0 < first.nbytes <= _batch.INLINE_MAX):
        return None
    ndarray, last, maybe = np.ndarray, None, False
    for a in arrays:
        if (type(a) is not ndarray or a.strides != strides or a.shape != shape
                or (a.dtype is not dtype and a.dtype != dtype)):
            return None
        base = a.base
        if base is not None:  # a view: of a blob's mapping (reusable_blob) or not
            if base is not last:
                last, maybe = base, _may_be_blob(base)
            if maybe and reusable_blob(client, a.reshape(-1)) is not None:
                return None
    typename, value_type, value_type_meta = _tensor_type(dtype)
    form = {"typename": typename, "value_type_": value_type,
            "value_type_meta_": value_type_meta, "shape_": _json_ints(shape),
            "partition_index_": "[]", "order_": '"C"', "nbytes": first.nbytes}
    return batch.add_tensors(arrays, form)


def _may_be_blob(base):
    """Whether the array memory owner chain from `base` ends where reusable_blob
    looks for a blob (a Blob, a memoryview of one, a mapping with a blob_id)."""
    while getattr(base, "base", None) is not None and not isinstance(base, (Blob, memoryview)):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, Blob) or getattr(base, "blob_id", None) is not None


def _elements(meta, ids):
    meta["__elements_-size"] = len(ids)
    fields = meta._fields
    for i, member in enumerate(ids):
        if type(member) is ObjectID:  # what builders return: nothing to check
            fields["__elements_-%d" % i] = member
        else:
            meta.add_member("__elements_-%d" % i, member)


def reusable_blob(client, flat):
    """The id of the blob of this mount whose whole payload `flat` (a C-contiguous
    array) is, when `flat` is a view of a mapped blob (an array or column `get`
    returned): a new Tensor then shares that blob instead of copying it. None
    otherwise."""
    if not flat.flags.c_contiguous or flat.nbytes == 0:
        return None
    base = flat
    while getattr(base, "base", None) is not None and not isinstance(base, (Blob, memoryview)):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    if isinstance(base, Blob):
        blob_id, mount = base.id, base._client.mount
    else:
        blob_id, mount = getattr(base, "blob_id", None), getattr(base, "mount", None)
    if blob_id is None or mount != client.mount or len(base) != flat.nbytes:
        return None
    if flat.__array_interface__["data"][0] != buffer_address(base):
        return None
    return blob_id if client.exists(blob_id) else None


def _numeric_view(value):
    """(value as a little-endian array of a kind a Tensor holds, pandas_dtype_
    or None): datetime64/timedelta64 are stored as their int64 counts."""
    np = utils.numpy()
    if value.dtype.kind in "mM":
        return value.view(np.int64), value.dtype.name
    if value.dtype.byteorder == ">":
        value = value.astype(value.dtype.newbyteorder("<"))
    return value, None


_TENSOR_TYPES = {}  # dtype -> (typename, value_type_, value_type_meta_), at most 256


def _tensor_type(dtype):
    t = _TENSOR_TYPES.get(dtype)
    if t is None:
        t = ("vineyard::Tensor<%s>" % utils.vineyard_type_name(dtype), dtype.name,
             utils.descr(dtype))
        if len(_TENSOR_TYPES) < 256:
            _TENSOR_TYPES[dtype] = t
    return t


def _json_ints(values):
    """json.dumps of a list of ints, without the encoder's per-call setup."""
    return "[" + ", ".join(["%d" % v for v in values]) + "]"


def tensor_builder(client, value, builder=None, partition_index=None, **meta):
    np = utils.numpy()
    if value.dtype.kind not in "biufcSUmM" or value.dtype.fields is not None:
        return pickle_builder(client, value, builder, **meta)
    value, pandas_dtype = _numeric_view(value)
    if value.flags.c_contiguous:
        order, flat = '"C"', value
    elif value.flags.f_contiguous:
        order, flat = '"F"', value.T  # Fortran order kept as is (order_ "F")
    else:
        order, flat = '"C"', np.ascontiguousarray(value)
    flat = flat.reshape(-1)
    buffer = reusable_blob(client, flat)
    # The fields in the order the create form lists them (meta's own come first);
    # the names are valid field names: no per-field checks.
    typename, value_type, value_type_meta = _tensor_type(value.dtype)
    form = {"typename": typename, "value_type_": value_type,
            "value_type_meta_": value_type_meta, "shape_": _json_ints(value.shape),
            "partition_index_": json.dumps(list(partition_index)) if partition_index else "[]",
            "order_": order, "nbytes": value.nbytes}
    if pandas_dtype is not None and "pandas_dtype_" not in meta:
        form["pandas_dtype_"] = pandas_dtype
    batch = _batch.current(client)
    if batch is not None and buffer is None and not meta and flat.nbytes <= _batch.INLINE_MAX:
        # Inside put(): the blob and the Tensor straight into the batch (the same
        # entries as below, without an ObjectMeta; the blob is this instance's).
        return batch.add_tensor(memoryview(flat.view(np.uint8)), form)
    if buffer is None:
        buffer = client._put_bytes(flat.view(np.uint8))
    m = ObjectMeta(**meta)
    m._fields.update(form)
    m.add_member("buffer_", buffer)
    _make_global_if_remote(client, m, [buffer])
    return client.create_metadata(m)


def object_tensor_builder(client, value, builder=None, **meta):
    """Vineyard's layout for an array of Python objects: vineyard::Tensor<object>,
    value_type_ "object", the pickled array in buffer_."""
    m = ObjectMeta(**meta)
    m["typename"] = "vineyard::Tensor<object>"
    m["value_type_"] = "object"
    m["shape_"] = json.dumps([len(value)])
    m["partition_index_"] = "[]"
    m["order_"] = json.dumps("C")
    m.add_member("buffer_", client._put_bytes(pickle.dumps(value, protocol=5)))
    return client.create_metadata(m)


def pickle_builder(client, value, builder=None, **meta):
    buffers = []
    stream = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    m = ObjectMeta(**meta)
    m["typename"] = "vineyard::PickleBuffer"
    m["protocol_"] = 5
    m.add_member("buffer_", client._put_bytes(stream))
    m["__buffers_-size"] = len(buffers)
    for i, b in enumerate(buffers):
        m.add_member("__buffers_-%d" % i, client._put_bytes(b.raw()))
    return client.create_metadata(m)


# ---- resolvers ----


def blob_resolver(obj):
    return obj.buffer


def scalar_resolver(obj):
    value = obj.meta.get("value_")
    arg = utils.template_arg(obj.typename)
    if arg in ("None", "none", "void") or value is None:
        return None
    if arg in ("std::string", "string", "str"):
        return str(value)
    if arg == "bool":
        return value in (True, 1, "1", "true", "True")
    if arg in ("double", "float", "float32", "float64"):
        return float(value)
    return int(value)


def pair_resolver(obj, resolver, **kw):
    return (resolver.run(obj.member("first_"), **kw), resolver.run(obj.member("second_"), **kw))


def _element_values(obj, resolver, kw):
    n = int(obj.meta["__elements_-size"])
    return [resolver.run(obj.member("__elements_-%d" % i), **kw) for i in range(n)]


def tuple_resolver(obj, resolver, **kw):
    return tuple(_element_values(obj, resolver, kw))


def list_resolver(obj, resolver, **kw):
    return _element_values(obj, resolver, kw)


def tensor_resolver(obj):
    np = utils.numpy()
    meta = obj.meta
    if meta.get("value_type_") == "object":
        return pickle.loads(obj.member("buffer_").buffer)
    if "value_type_meta_" in meta:
        dtype = np.dtype(meta["value_type_meta_"])
    else:
        dtype = utils.normalize_dtype(meta.get("value_type_") or utils.template_arg(obj.typename))
    shape = tuple(int(d) for d in _json_field(meta["shape_"]))
    order = _json_field(meta.get("order_", "C")) or "C"
    count = math.prod(shape)
    blob = obj.member("buffer_")
    # A Blob is the mapping itself, so the array's base is the Blob: what
    # reusable_blob recognises when the array is put again.
    view = blob if isinstance(blob, Blob) else blob.buffer
    if len(view) < count * dtype.itemsize:
        raise InvalidMetadata("%s: buffer_ holds %d bytes, the tensor needs %d"
                              % (obj.id, len(view), count * dtype.itemsize))
    flat = np.frombuffer(view, dtype=dtype, count=count) if count else np.empty(0, dtype)
    pandas_dtype = meta.get("pandas_dtype_")
    if pandas_dtype and pandas_dtype[:10] in ("datetime64", "timedelta6") and "," not in pandas_dtype:
        flat = flat.view(np.dtype(pandas_dtype))
    return flat.reshape(shape, order="F" if order == "F" else "C")


def numeric_array_resolver(obj):
    np = utils.numpy()
    meta = obj.meta
    dtype = utils.normalize_dtype(utils.template_arg(obj.typename))
    length = int(meta["length_"] if "length_" in meta else meta["size_"])
    offset = int(meta.get("offset_", 0))
    view = obj.member("buffer_").buffer
    if length == 0:
        return np.empty(0, dtype)
    return np.frombuffer(view, dtype=dtype, count=length, offset=offset * dtype.itemsize)


def pickle_resolver(obj):
    n = int(obj.meta.get("__buffers_-size", 0))
    buffers = [obj.member("__buffers_-%d" % i).buffer for i in range(n)]
    return pickle.loads(obj.member("buffer_").buffer, buffers=buffers)


def register_builtin_types(builders=None, resolvers=None):
    """Registers the builtin builders and resolvers in `builders` and `resolvers`
    (Vineyard's register_builtin_types; either may be None). The pandas and scipy
    types are registered by name, so neither is imported before it is used."""
    if builders is not None:
        _register_builders(builders)
    if resolvers is not None:
        _register_resolvers(resolvers)
        from .arrow import register_arrow_types  # Vineyard's Arrow types (arrow.py)
        register_arrow_types(resolvers)


def register_builtins(builders=default_builder_context, resolvers=default_resolver_context):
    register_builtin_types(builders, resolvers)


def _register_builders(builders):
    from . import dataframe, sparse

    for t in (bytes, bytearray, memoryview):
        builders.register(t, bytes_builder)
    builders.register(bool, bool_builder)
    builders.register(int, int_builder)
    builders.register(float, float_builder)
    builders.register(str, str_builder)
    builders.register(type(None), none_builder)
    builders.register(tuple, tuple_builder)
    builders.register(list, list_builder)
    for t in (Object, ObjectMeta, ObjectID):
        builders.register(t, object_ref_builder)
    builders.register(object, pickle_builder)
    np = utils.numpy(required=False)
    if np is not None:
        builders.register(np.ndarray, tensor_builder)
        builders.register(np.ma.MaskedArray, pickle_builder)  # a Tensor would drop the mask
    dataframe.register_builders(builders)
    sparse.register_builders(builders)


def _register_resolvers(resolvers):
    from . import dataframe, sparse

    np = utils.numpy(required=False)
    resolvers.register("vineyard::Blob", blob_resolver)
    resolvers.register("vineyard::Scalar", scalar_resolver)
    resolvers.register("vineyard::Pair", pair_resolver)
    resolvers.register("vineyard::Tuple", tuple_resolver)
    resolvers.register("vineyard::List", list_resolver)
    resolvers.register("vineyard::Sequence", list_resolver)
    resolvers.register("vineyard::PickleBuffer", pickle_resolver)
    if np is not None:
        resolvers.register("vineyard::Tensor", tensor_resolver)
        resolvers.register("vineyard::NumericArray", numeric_array_resolver)
        resolvers.register("vineyard::Array", numeric_array_resolver)
        dataframe.register_resolvers(resolvers)
        sparse.register_resolvers(resolvers)
