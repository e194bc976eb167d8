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

from . import utils
from .context import default_builder_context, default_resolver_context
from .errors import InvalidMetadata
from .objects import Object, ObjectID, ObjectMeta, _json_field

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
    if any(m.instance_id != client.instance_id for m in member_ids):
        meta.set_global(True)


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
    ids = [builder.run(client, item) for item in value]
    _elements(m, ids)
    _make_global_if_remote(client, m, ids)
    return client.create_metadata(m)


def _elements(meta, ids):
    meta["__elements_-size"] = len(ids)
    for i, member in enumerate(ids):
        meta.add_member("__elements_-%d" % i, member)


def tensor_builder(client, value, builder=None, partition_index=None, **meta):
    np = utils.numpy()
    if value.dtype.kind not in "biufcSU" or value.dtype.fields is not None:
        return pickle_builder(client, value, builder, **meta)
    if value.dtype.byteorder == ">":
        value = value.astype(value.dtype.newbyteorder("<"))
    if value.flags.c_contiguous:
        order, flat = "C", value
    elif value.flags.f_contiguous:
        order, flat = "F", value.T  # Fortran order kept as is (order_ "F")
    else:
        order, flat = "C", np.ascontiguousarray(value)
    buffer = client._put_bytes(flat.reshape(-1).view(np.uint8))
    m = ObjectMeta(**meta)
    m["typename"] = "vineyard::Tensor<%s>" % utils.vineyard_type_name(value.dtype)
    m["value_type_"] = value.dtype.name
    m["value_type_meta_"] = utils.descr(value.dtype)
    m["shape_"] = json.dumps(list(value.shape))
    m["partition_index_"] = json.dumps(list(partition_index or []))
    m["order_"] = json.dumps(order)
    m["nbytes"] = value.nbytes
    m.add_member("buffer_", buffer)
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
    if "value_type_meta_" in meta:
        dtype = np.dtype(meta["value_type_meta_"])
    else:
        dtype = utils.normalize_dtype(meta.get("value_type_") or utils.template_arg(obj.typename))
    shape = tuple(int(d) for d in _json_field(meta["shape_"]))
    order = _json_field(meta.get("order_", "C")) or "C"
    count = math.prod(shape)
    view = obj.member("buffer_").buffer
    if len(view) < count * dtype.itemsize:
        raise InvalidMetadata("%s: buffer_ holds %d bytes, the tensor needs %d"
                              % (obj.id, len(view), count * dtype.itemsize))
    flat = np.frombuffer(view, dtype=dtype, count=count) if count else np.empty(0, dtype)
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


def register_builtins(builders=default_builder_context, resolvers=default_resolver_context):
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
