"""scipy.sparse matrices in Vineyard's layouts (vineyard/data/tensor.py).

Every matrix is a metadata object whose arrays are members built as Tensors (so
``get`` maps them, zero-copy, and the numpy plugin shows each as a ``.npy``):

  csr_matrix -> vineyard::CSRMatrix<T>  data, indices, indptr; has_sorted_indices
  csc_matrix -> vineyard::CSCMatrix<T>  data, indices, indptr
  bsr_matrix -> vineyard::BSRMatrix<T>  data (nnz blocks), indices, indptr;
                                        blocksize, has_sorted_indices
  coo_matrix -> vineyard::COOMatrix<T>  data, row, col
  dia_matrix -> vineyard::DIAMatrix<T>  data, offsets

with value_type_ (the dtype name), shape_ (JSON text), ndim, nnz and
partition_index_, as Vineyard writes them. T is numpy's dtype name. scipy is
imported only when a matrix is resolved (a builder only ever sees a matrix whose
module is loaded already). The sparse array classes of scipy >= 1.8 (csr_array,
...) are built the same way and come back as the matrix classes.
"""

import json

from .objects import ObjectMeta

# class -> (typename stem, member arrays)
_LAYOUTS = {
    "csr": ("CSRMatrix", ("data", "indices", "indptr")),
    "csc": ("CSCMatrix", ("data", "indices", "indptr")),
    "bsr": ("BSRMatrix", ("data", "indices", "indptr")),
    "coo": ("COOMatrix", ("data", "row", "col")),
    "dia": ("DIAMatrix", ("data", "offsets")),
}


def _builder(fmt):
    stem, arrays = _LAYOUTS[fmt]

    def build(client, value, builder, partition_index=None, **meta):
        m = ObjectMeta(**meta)
        m["typename"] = "vineyard::%s<%s>" % (stem, value.dtype.name)
        m["value_type_"] = value.dtype.name
        m["shape_"] = json.dumps(list(value.shape))
        m["ndim"] = value.ndim
        m["nnz"] = int(value.nnz)
        for name in arrays:
            m.add_member(name, builder.run(client, getattr(value, name)))
        if fmt == "bsr":
            m["blocksize"] = list(value.blocksize)
        if fmt in ("csr", "bsr"):
            m["has_sorted_indices"] = bool(value.has_sorted_indices)
        m["partition_index_"] = json.dumps(list(partition_index or []))
        m["nbytes"] = int(value.nnz) * value.dtype.itemsize
        return client.create_metadata(m)

    build.__name__ = "%s_matrix_builder" % fmt
    return build


def _resolver(fmt):
    stem, arrays = _LAYOUTS[fmt]

    def resolve(obj, resolver, **kw):
        import scipy.sparse

        meta = obj.meta
        shape = tuple(json.loads(meta["shape_"]) if isinstance(meta["shape_"], str)
                      else meta["shape_"])
        parts = [resolver.run(obj.member(name), **kw) for name in arrays]
        if any(p is None for p in parts):
            return None  # a payload on another node, not fetched
        cls = getattr(scipy.sparse, "%s_matrix" % fmt)
        if fmt == "coo":
            data, row, col = parts
            return cls((data, (row, col)), shape=shape)
        if fmt == "dia":
            return cls(tuple(parts), shape=shape)
        if fmt == "bsr":
            return cls(tuple(parts), shape=shape, blocksize=tuple(meta["blocksize"]))
        return cls(tuple(parts), shape=shape)

    resolve.__name__ = "%s_matrix_resolver" % fmt
    return resolve


def register_builders(builders):
    for fmt in _LAYOUTS:
        for suffix in ("matrix", "array"):
            builders.register("scipy:%s_%s" % (fmt, suffix), _builder(fmt))


def register_resolvers(resolvers):
    import importlib.util

    if importlib.util.find_spec("scipy") is None:
        return
    for fmt, (stem, _) in _LAYOUTS.items():
        resolvers.register("vineyard::%s" % stem, _resolver(fmt))
