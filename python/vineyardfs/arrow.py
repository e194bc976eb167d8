"""Resolvers for Vineyard's Arrow-backed types, as numpy arrays (no pyarrow).

Vineyard stores Arrow arrays in its own layout (``python/vineyard/data/arrow.py`` in
v6d): ``length_``, ``offset_``, ``null_count_``, a ``null_bitmap_`` blob (empty when
there are no nulls) and the type's buffers. What ``client.get`` returns here:

================================  ==========================================================
typename                          value
================================  ==========================================================
``vineyard::NumericArray<T>``     numpy array of T over the ``buffer_`` blob (zero-copy)
``vineyard::BooleanArray``        numpy bool array (unpacked from Arrow's bits)
``vineyard::StringArray``         numpy ``str`` array (``LargeStringArray`` too)
``vineyard::BinaryArray``         numpy ``bytes`` array (``LargeBinaryArray`` too)
``vineyard::FixedSizeBinaryArray`` numpy ``S<width>`` array over ``buffer_`` (zero-copy)
``vineyard::RecordBatch``         dict column name -> array, in column order
``vineyard::Table``               dict column name -> array, the batches concatenated
================================  ==========================================================

An array with nulls comes back as a ``numpy.ma.MaskedArray`` (masked where null).
Column names come from ``columns_`` (written by vineyardfs' arrow builder) or else from
the ``schema_`` SchemaProxy, an Arrow IPC schema message read by the small flatbuffer
reader below; timestamp and duration columns stored as int64 get their numpy
``datetime64``/``timedelta64`` dtype from it.
"""

import json
import struct

from . import utils

_UNITS = ("s", "ms", "us", "ns")
# Limits on the schema message read below (it is untrusted input like any file).
_MAX_SCHEMA_BYTES = 16 << 20
_MAX_FIELDS = 4096


def _bitmap(np, blob, offset, length):
    """Bits [offset, offset + length) of an Arrow bitmap (LSB first) as numpy bools."""
    if length == 0:
        return np.zeros(0, bool)
    raw = np.frombuffer(blob.buffer, dtype=np.uint8, count=(offset + length + 7) // 8)
    return np.unpackbits(raw, bitorder="little")[offset:offset + length].astype(bool)


def _with_nulls(np, obj, values):
    meta = obj.meta
    nulls = int(meta.get("null_count_", 0))
    if nulls == 0 or "null_bitmap_" not in meta:
        return values
    valid = _bitmap(np, obj.member("null_bitmap_"), int(meta.get("offset_", 0)), len(values))
    return np.ma.MaskedArray(values, mask=~valid)


def numeric_array_resolver(obj):
    np = utils.numpy()
    meta = obj.meta
    arg = utils.template_arg(obj.typename)
    dtype = np.dtype("float16") if arg == "halffloat" else utils.normalize_dtype(arg)
    length = int(meta["length_"] if "length_" in meta else meta["size_"])
    offset = int(meta.get("offset_", 0))
    if length == 0:
        return np.empty(0, dtype)
    values = np.frombuffer(obj.member("buffer_").buffer, dtype=dtype, count=length,
                           offset=offset * dtype.itemsize)
    return _with_nulls(np, obj, values)


def boolean_array_resolver(obj):
    np = utils.numpy()
    meta = obj.meta
    length, offset = int(meta["length_"]), int(meta.get("offset_", 0))
    values = _bitmap(np, obj.member("buffer_"), offset, length) if length else np.zeros(0, bool)
    return _with_nulls(np, obj, values)


def _variable_width(obj, text):
    np = utils.numpy()
    meta = obj.meta
    length, offset = int(meta["length_"]), int(meta.get("offset_", 0))
    large = obj.typename.startswith("vineyard::Large")
    if length == 0:
        return np.array([], dtype=str if text else bytes)
    offsets = np.frombuffer(obj.member("buffer_offsets_").buffer, dtype="<i8" if large else "<i4",
                            count=length + 1, offset=offset * (8 if large else 4))
    data = obj.member("buffer_data_").buffer
    items = [bytes(data[int(offsets[i]):int(offsets[i + 1])]) for i in range(length)]
    if text:
        items = [b.decode("utf-8", "replace") for b in items]
    return _with_nulls(np, obj, np.array(items, dtype=str if text else bytes))


def string_array_resolver(obj):
    return _variable_width(obj, text=True)


def binary_array_resolver(obj):
    return _variable_width(obj, text=False)


def fixed_size_binary_array_resolver(obj):
    np = utils.numpy()
    meta = obj.meta
    width, length = int(meta["byte_width_"]), int(meta["length_"])
    offset = int(meta.get("offset_", 0))
    if length == 0:
        return np.empty(0, "S%d" % width)
    values = np.frombuffer(obj.member("buffer_").buffer, dtype="S%d" % width, count=length,
                           offset=offset * width)
    return _with_nulls(np, obj, values)


# ---- the SchemaProxy: an Arrow IPC schema message (a flatbuffer) ----

def _schema_fields(buf):
    """[(name, numpy dtype or None)] of an encapsulated Arrow schema message.

    Flatbuffers: a table starts with an int32 back-offset to its vtable; the vtable
    holds uint16 byte offsets of the table's fields by slot; offsets to tables,
    vectors and strings are uint32, relative to where they are stored. Slots used:
    Message.header (2), Schema.fields (1), Field.name (0), Field.type_type (2),
    Field.type (3), Timestamp.unit / Duration.unit (0). Type tags: Timestamp 10,
    Duration 18.
    """
    buf = bytes(buf[:_MAX_SCHEMA_BYTES])

    def u32(at):
        return struct.unpack_from("<I", buf, at)[0]

    def field(table, slot):
        vtable = table - struct.unpack_from("<i", buf, table)[0]
        if 4 + 2 * slot >= struct.unpack_from("<H", buf, vtable)[0]:
            return None
        off = struct.unpack_from("<H", buf, vtable + 4 + 2 * slot)[0]
        return table + off if off else None

    def ref(at):
        return at + u32(at)

    start = 8 if u32(0) == 0xFFFFFFFF else 4
    message = ref(start)
    header = field(message, 2)
    fields_at = field(ref(header), 1) if header else None
    if fields_at is None:
        return []
    vec = ref(fields_at)
    out = []
    for i in range(min(u32(vec), _MAX_FIELDS)):
        f = ref(vec + 4 + 4 * i)
        name_at = field(f, 0)
        name = ""
        if name_at is not None:
            s = ref(name_at)
            name = buf[s + 4:s + 4 + u32(s)].decode("utf-8", "replace")
        tag_at, type_at = field(f, 2), field(f, 3)
        tag = buf[tag_at] if tag_at is not None else 0
        dtype = None
        if tag in (10, 18) and type_at is not None:
            unit_at = field(ref(type_at), 0)
            unit = struct.unpack_from("<h", buf, unit_at)[0] if unit_at else (0 if tag == 10 else 1)
            if 0 <= unit < 4:
                dtype = "%s[%s]" % ("datetime64" if tag == 10 else "timedelta64", _UNITS[unit])
        out.append((name, dtype))
    return out


def _columns(obj):
    """[(name, dtype or None)] of a RecordBatch or Table."""
    meta = obj.meta
    fields = []
    if "schema_" in meta:
        proxy = obj.member("schema_")
        try:
            if "buffer_" in proxy.meta:
                fields = _schema_fields(proxy.member("buffer_").buffer)
            elif "schema_binary_" in proxy.meta:
                raw = proxy.meta["schema_binary_"]
                raw = json.loads(raw) if isinstance(raw, str) else raw
                fields = _schema_fields(bytes(b & 0xff for b in raw["bytes"]))
        except (struct.error, IndexError, KeyError, ValueError, TypeError):
            fields = []  # an unreadable schema: names from columns_ or positions
    if "columns_" in meta:
        names = meta["columns_"]
        names = json.loads(names) if isinstance(names, str) else names
        fields = [(n, fields[i][1] if i < len(fields) else None) for i, n in enumerate(names)]
    return fields


def _batch_columns(obj, resolver, fields, kw):
    np = utils.numpy()
    out = []
    for i in range(int(obj.meta["__columns_-size"])):
        value = resolver.run(obj.member("__columns_-%d" % i), **kw)
        dtype = fields[i][1] if i < len(fields) else None
        if dtype is not None and getattr(value, "dtype", None) == np.dtype("int64"):
            value = value.view(dtype)
        out.append(value)
    return out


def _named(fields, values):
    names = [fields[i][0] if i < len(fields) else "f%d" % i for i in range(len(values))]
    return dict(zip(names, values))


def record_batch_resolver(obj, resolver, **kw):
    fields = _columns(obj)
    return _named(fields, _batch_columns(obj, resolver, fields, kw))


def table_resolver(obj, resolver, **kw):
    np = utils.numpy()
    fields = _columns(obj)
    batches = []
    for i in range(int(obj.meta["__batches_-size"])):
        batch = obj.member("__batches_-%d" % i)
        batches.append(_batch_columns(batch, resolver, fields or _columns(batch), kw))
    if not fields and batches:
        fields = _columns(obj.member("__batches_-0"))
    if not batches:
        return {}
    columns = []
    for parts in zip(*batches):
        masked = any(isinstance(p, np.ma.MaskedArray) for p in parts)
        columns.append(np.ma.concatenate(parts) if masked else np.concatenate(parts))
    return _named(fields, columns)


def register_arrow_types(resolvers=None):
    """Registers the resolvers above (in the default resolver context unless given)."""
    if resolvers is None:
        from .context import default_resolver_context as resolvers
    if utils.numpy(required=False) is None:
        return
    resolvers.register("vineyard::NumericArray", numeric_array_resolver)
    resolvers.register("vineyard::BooleanArray", boolean_array_resolver)
    resolvers.register("vineyard::StringArray", string_array_resolver)
    resolvers.register("vineyard::LargeStringArray", string_array_resolver)
    resolvers.register("vineyard::BinaryArray", binary_array_resolver)
    resolvers.register("vineyard::LargeBinaryArray", binary_array_resolver)
    resolvers.register("vineyard::FixedSizeBinaryArray", fixed_size_binary_array_resolver)
    resolvers.register("vineyard::RecordBatch", record_batch_resolver)
    resolvers.register("vineyard::Table", table_resolver)
