"""pandas DataFrame, Series, Index and column arrays in Vineyard's layouts
(vineyard/data/dataframe.py, series.py, index.py, tensor.py), so that the daemon's
csv and numpy plugins read them and objects look as Vineyard's client makes them:

  DataFrame  -> vineyard::DataFrame  columns_ (JSON text of the labels),
                __values_-size, __values_-key-<i> (JSON text of label i),
                __values_-value-<i> (column i), index_, partition_index_row_,
                partition_index_column_, row_batch_index_; columns_names_ (the
                names of the column levels) when any is set
  Series     -> vineyard::Series     name (JSON text), index_, value_
  RangeIndex -> vineyard::RangeIndex start_, stop_, step_, name (no blob)
  MultiIndex -> vineyard::MultiIndex names, __levels_-size, __levels_-<i> (Index),
                __codes_-<i> (Tensor)
  Index      -> vineyard::Index      name, value_type_, value_ (a column)

A column (also an Index's or Series' values) is:

  numeric, bool          vineyard::Tensor<T>; get maps the blob: a read-only,
                         zero-copy view
  datetime64, timedelta  vineyard::Tensor<int64> of the counts (UTC for tz-aware),
                         pandas_dtype_ "datetime64[ns]", "datetime64[ns, <tz>]",
                         "timedelta64[ns]"; zero-copy
  strings (object)       vineyard::Tensor<str<bits>> (fixed-width UCS-4, what the
                         csv plugin reads and writes), pandas_dtype_ "object";
                         comes back as an object column (a copy)
  categorical            vineyard::Categorical: codes_ (Tensor), categories_
                         (Index), ordered_
  SparseArray            vineyard::SparseArray<T> (Vineyard's sp_index_name,
                         sp_index_size, sp_index, sp_values) and fill_value_;
                         comes back as a SparseArray of the same Sparse dtype
  anything else          vineyard::Tensor<object>: the pickled array in buffer_
                         (Vineyard's layout for object arrays): mixed objects,
                         strings with None/NaN, pandas' nullable types

A column that already lives in a blob of this mount (it came from get) is not
copied: its Tensor reuses the blob (builtins.reusable_blob).

pandas is imported when a value is resolved; builders are registered by name
("pandas:DataFrame"), so importing vineyardfs never imports pandas.
"""

import json
from json.encoder import encode_basestring_ascii as _ascii

from . import batch as _batch
from . import builtins, utils
from .objects import ObjectID, ObjectMeta


def _pd():
    import pandas

    return pandas


# ---- labels and names as JSON text (Vineyard's to_json / from_json) ----


def _plain(value):
    """`value` as a JSON-able Python value: numpy scalars unwrapped, tuples as
    lists. TypeError for anything else (a Timestamp label, say)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", 1) == 0:
        return _plain(item())
    raise TypeError("%r cannot be stored as JSON" % (value,))


def to_json(value):
    return json.dumps(_plain(value))


def _as_label(value):
    return tuple(_as_label(v) for v in value) if isinstance(value, list) else value


def from_json(text):
    """A label or name from its JSON text; lists (multi-level labels) as tuples."""
    return _as_label(json.loads(text) if isinstance(text, str) else text)


# ---- columns ----


def _all_plain_strings(values):
    pd = _pd()
    if pd.api.types.infer_dtype(values, skipna=False) != "string":
        return False
    return not any(s.endswith("\0") for s in values)  # fixed width drops trailing NULs


def build_column(client, values, builder):
    """The object holding one column's values (a 1-D ndarray or ExtensionArray)."""
    pd = _pd()
    np = utils.numpy()
    if isinstance(values, pd.arrays.SparseArray):
        return sparse_array_builder(client, values, builder)
    if isinstance(values, pd.Categorical):
        return categorical_builder(client, values, builder)
    if isinstance(values, (pd.arrays.DatetimeArray, pd.arrays.TimedeltaArray)):
        return builtins.tensor_builder(client, values._ndarray, pandas_dtype_=str(values.dtype))
    if isinstance(values, np.ndarray) and values.dtype.fields is None:
        if values.dtype.kind in "biufcmMSU":
            return builtins.tensor_builder(client, values)
        if values.dtype.kind == "O" and _all_plain_strings(values):
            return builtins.tensor_builder(client, values.astype(str), pandas_dtype_="object")
    return builtins.object_tensor_builder(client, values)


def resolve_column(obj, resolver, kw):
    """A column's values from its object; None when a payload is on another node
    and was not fetched."""
    pd = _pd()
    np = utils.numpy()
    value = resolver.run(obj, **kw)
    if value is None or not obj.typename.startswith("vineyard::Tensor"):
        return value
    pandas_dtype = obj.meta.get("pandas_dtype_")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SU":
        return value.astype(object)  # pandas keeps strings as objects: a copy
    if pandas_dtype and pandas_dtype.startswith("datetime64") and "," in pandas_dtype:
        dtype = pd.api.types.pandas_dtype(pandas_dtype)
        return pd.arrays.DatetimeArray(value.view("M8[ns]"), dtype=dtype, copy=False)
    return value


def categorical_builder(client, value, builder, **meta):
    m = ObjectMeta(**meta)
    m["typename"] = "vineyard::Categorical"
    m["ordered_"] = bool(value.ordered)
    m.add_member("codes_", builtins.tensor_builder(client, value.codes))
    m.add_member("categories_", builder.run(client, value.categories))
    return client.create_metadata(m)


def categorical_resolver(obj, resolver, **kw):
    pd = _pd()
    codes = resolver.run(obj.member("codes_"), **kw)
    categories = resolver.run(obj.member("categories_"), **kw)
    if codes is None or categories is None:
        return None
    dtype = pd.CategoricalDtype(categories, ordered=bool(obj.meta["ordered_"]))
    return pd.Categorical.from_codes(codes, dtype=dtype)


def sparse_array_builder(client, value, builder, **meta):
    m = ObjectMeta(**meta)
    subtype = value.dtype.subtype
    m["typename"] = "vineyard::SparseArray<%s>" % subtype.name
    m["value_type_"] = subtype.name
    m["fill_value_"] = to_json(value.fill_value)
    index = value.sp_index.to_int_index()
    m["sp_index_name"] = "IntIndex"
    m["sp_index_size"] = int(index.length)
    m.add_member("sp_index", builtins.tensor_builder(client, index.indices))
    m.add_member("sp_values", builtins.tensor_builder(client, value.sp_values))
    return client.create_metadata(m)


def sparse_array_resolver(obj, resolver, **kw):
    pd = _pd()
    meta = obj.meta
    indices = resolver.run(obj.member("sp_index"), **kw)
    values = resolver.run(obj.member("sp_values"), **kw)
    if indices is None or values is None:
        return None
    index = getattr(pd._libs.sparse, meta["sp_index_name"])(int(meta["sp_index_size"]), indices)
    fill = from_json(meta["fill_value_"]) if "fill_value_" in meta else None
    dtype = pd.SparseDtype(utils.normalize_dtype(meta["value_type_"]), fill)
    return pd.arrays.SparseArray(values, sparse_index=index, dtype=dtype)


# ---- Index ----


def index_builder(client, value, builder, **meta):
    pd = _pd()
    m = ObjectMeta(**meta)
    if isinstance(value, pd.RangeIndex):
        m["typename"] = "vineyard::RangeIndex"
        m["name"] = to_json(value.name)
        m["start_"], m["stop_"], m["step_"] = int(value.start), int(value.stop), int(value.step)
    elif isinstance(value, pd.MultiIndex):
        m["typename"] = "vineyard::MultiIndex"
        m["names"] = to_json(list(value.names))
        m["__levels_-size"] = value.nlevels
        for i, (level, codes) in enumerate(zip(value.levels, value.codes)):
            m.add_member("__levels_-%d" % i, index_builder(client, level, builder))
            m.add_member("__codes_-%d" % i, builtins.tensor_builder(client, codes))
    else:
        m["typename"] = "vineyard::Index"
        m["name"] = to_json(value.name)
        m["value_type_"] = value.dtype.name
        if getattr(value, "freqstr", None):
            m["freq_"] = value.freqstr  # a DatetimeIndex's or TimedeltaIndex's frequency
        m.add_member("value_", build_column(client, value._values, builder))
    return client.create_metadata(m)


def range_index_resolver(obj):
    meta = obj.meta
    return _pd().RangeIndex(int(meta["start_"]), int(meta["stop_"]), int(meta["step_"]),
                            name=from_json(meta["name"]))


def multi_index_resolver(obj, resolver, **kw):
    meta = obj.meta
    n = int(meta["__levels_-size"])
    levels = [resolver.run(obj.member("__levels_-%d" % i), **kw) for i in range(n)]
    codes = [resolver.run(obj.member("__codes_-%d" % i), **kw) for i in range(n)]
    if any(x is None for x in levels + codes):
        return None
    return _pd().MultiIndex(levels=levels, codes=codes, names=from_json(meta["names"]),
                            verify_integrity=False)


def index_resolver(obj, resolver, **kw):
    values = resolve_column(obj.member("value_"), resolver, kw)
    if values is None:
        return None
    index = _pd().Index(values, name=from_json(obj.meta["name"]), copy=False)
    if "freq_" in obj.meta:
        index.freq = obj.meta["freq_"]  # checked against the values by pandas
    return index


# ---- Series ----


def series_builder(client, value, builder, **meta):
    m = ObjectMeta(**meta)
    m["typename"] = "vineyard::Series"
    m["name"] = to_json(value.name)
    m.add_member("index_", builder.run(client, value.index))
    m.add_member("value_", build_column(client, value._values, builder))
    return client.create_metadata(m)


def series_resolver(obj, resolver, **kw):
    values = resolve_column(obj.member("value_"), resolver, kw)
    index = resolver.run(obj.member("index_"), **kw)
    if values is None or index is None:
        return None
    return _pd().Series(values, index=index, name=from_json(obj.meta["name"]), copy=False)


# ---- DataFrame ----


def dataframe_builder(client, value, builder, partition_index=None, row_batch_index=0, **meta):
    columns = value.columns
    try:
        keys = _label_texts(columns)
        labels = "[%s]" % ", ".join(keys)  # to_json(list(columns)): the same text
        names = to_json(list(columns.names))
    except TypeError:  # labels JSON cannot carry: keep the frame whole
        return builtins.pickle_builder(client, value, builder, **meta)
    m = ObjectMeta(**meta)
    m["typename"] = "vineyard::DataFrame"
    m["columns_"] = labels
    if columns.nlevels > 1 or any(n is not None for n in columns.names):
        m["columns_names_"] = names
    m.add_member("index_", builder.run(client, value.index))
    members = m.member_ids()  # (index_ and any in `meta`; the columns' added below)
    fields = m._fields  # the names below are valid: set directly, not checked per column
    for (key_name, name), key, column in zip(_field_names(len(keys)), keys,
                                             _column_ids(client, value, builder)):
        fields[key_name] = key
        if type(column) is ObjectMeta and column.id is not None:
            column = column.id  # the batch maps an id to its entry without parsing text
        if type(column) is ObjectID:
            fields[name] = column
        else:
            m.add_member(name, column)
            column = fields[name] if type(fields[name]) is ObjectID else fields[name].id
        members.append(column)
    m["__values_-size"] = len(keys)
    row, column = list(partition_index) if partition_index is not None else (0, 0)
    m["partition_index_row_"] = row
    m["partition_index_column_"] = column
    m["row_batch_index_"] = row_batch_index
    builtins._make_global_if_remote(client, m, members)
    return client.create_metadata(m)


_FIELD_NAMES = []  # i -> ("__values_-key-<i>", "__values_-value-<i>"), made once


def _field_names(n):
    """The field names of columns 0..n-1 (kept for up to 1 << 16 columns; a longer
    list replaces the kept one whole, so another thread reads an old or a new one)."""
    global _FIELD_NAMES
    names = _FIELD_NAMES
    if len(names) < n:
        names = names + [("__values_-key-%d" % i, "__values_-value-%d" % i)
                         for i in range(len(names), n)]
        if n <= 1 << 16:
            _FIELD_NAMES = names
    return names[:n]


def _label_texts(columns):
    """to_json of each label: str and int labels without json.dumps' per-call work
    (the same text: json.dumps of a str is its ASCII-escaped form)."""
    out = []
    for label in columns:
        t = type(label)
        out.append(_ascii(label) if t is str else int.__repr__(label) if t is int
                   else to_json(label))
    return out


def _column_ids(client, frame, builder):
    """The objects of the frame's columns, built in column order (what build_column
    gives for each). Inside put(), the columns of a numeric numpy block that follow
    each other are recorded in one call (builtins.record_tensors); the others, and
    everything outside put(), go through build_column."""
    mgr = frame._mgr
    batch = _batch.current(client)
    if batch is None or not hasattr(mgr, "blknos"):
        return [build_column(client, mgr.iget_values(i), builder)
                for i in range(len(frame.columns))]
    np = utils.numpy()
    plain = [blk.values if type(blk.values) is np.ndarray and blk.values.ndim == 2
             and blk.values.dtype.kind in "biufc" else None for blk in mgr.blocks]
    blknos, blklocs = mgr.blknos.tolist(), mgr.blklocs.tolist()
    ids, i, n = [], 0, len(blknos)
    while i < n:
        values = plain[blknos[i]]
        if values is None:
            ids.append(build_column(client, mgr.iget_values(i), builder))
            i += 1
            continue
        j = i + 1
        while j < n and blknos[j] == blknos[i]:
            j += 1
        run = [values[loc] for loc in blklocs[i:j]]  # Block.iget: what iget_values gives
        got = builtins.record_tensors(client, batch, run) if len(run) > 1 else None
        ids.extend(got if got is not None else [build_column(client, a, builder) for a in run])
        i = j
    return ids


def _columns_index(labels, names):
    pd = _pd()
    if labels and all(isinstance(label, tuple) for label in labels):
        return pd.MultiIndex.from_tuples(labels, names=names)
    return pd.Index(labels, dtype=object if not labels else None,
                    name=names[0] if names else None)


def dataframe_resolver(obj, resolver, **kw):
    """The DataFrame over the columns' mapped blobs: one block per column, made
    from the resolved arrays without copying them (strings excepted)."""
    pd = _pd()
    np = utils.numpy()
    from pandas.core.internals import BlockManager
    from pandas.core.internals.api import make_block

    meta = obj.meta
    labels = [_as_label(label) for label in json.loads(meta["columns_"])]
    names = from_json(meta["columns_names_"]) if "columns_names_" in meta else None
    n = int(meta["__values_-size"])
    arrays = [resolve_column(obj.member("__values_-value-%d" % i), resolver, kw)
              for i in range(n)]
    if any(a is None for a in arrays):
        return None
    rows = len(arrays[0]) if arrays else 0
    if "index_" in meta:
        index = resolver.run(obj.member("index_"), **kw)
        if index is None:
            return None
    else:
        index = pd.RangeIndex(rows)  # frames the csv plugin builds have none
    blocks = []
    for i, values in enumerate(arrays):
        if isinstance(values, np.ndarray):
            values = values.reshape(1, -1)
        elif isinstance(values, (pd.arrays.DatetimeArray, pd.arrays.TimedeltaArray)):
            values = values.reshape(1, -1)
        blocks.append(make_block(values, placement=slice(i, i + 1), ndim=2))
    mgr = BlockManager(blocks, [_columns_index(labels, names), index], verify_integrity=False)
    return pd.DataFrame(mgr)


def register_builders(builders):
    builders.register("pandas:DataFrame", dataframe_builder)
    builders.register("pandas:Series", series_builder)
    builders.register("pandas:Index", index_builder)
    builders.register("pandas:Categorical", categorical_builder)
    builders.register("pandas:SparseArray", sparse_array_builder)


def register_resolvers(resolvers):
    import importlib.util

    if importlib.util.find_spec("pandas") is None:
        return
    resolvers.register("vineyard::DataFrame", dataframe_resolver)
    resolvers.register("vineyard::Series", series_resolver)
    resolvers.register("vineyard::Index", index_resolver)
    resolvers.register("vineyard::RangeIndex", range_index_resolver)
    resolvers.register("vineyard::MultiIndex", multi_index_resolver)
    resolvers.register("vineyard::Categorical", categorical_resolver)
    resolvers.register("vineyard::SparseArray", sparse_array_resolver)
