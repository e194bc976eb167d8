"""Helpers for writing builders and resolvers (Vineyard's ``vineyard.data.utils``).

The dtype tables mirror the daemon's numpy plugin (plugins/tensor_util.h): the
typename argument of ``vineyard::Tensor<T>`` is Vineyard's C++-ish name (``int``
for int32, ``float`` for float32, ``double`` for float64), ``value_type_`` is
numpy's dtype name and ``value_type_meta_`` its little-endian ``dtype.str``.
"""

# NumPy dtype name -> Vineyard's typename argument, where they differ.
_VINEYARD_NAMES = {"int32": "int", "float32": "float", "float64": "double"}
# Other spellings accepted in typenames (C++ and Vineyard's normalize_dtype).
_ALIASES = {
    "int": "int32", "int32_t": "int32", "i32": "int32",
    "uint": "uint32", "uint32_t": "uint32", "u32": "uint32",
    "int64_t": "int64", "long long": "int64", "i64": "int64",
    "uint64_t": "uint64", "u64": "uint64",
    "float": "float32", "double": "float64", "half": "float16",
    "int8_t": "int8", "uint8_t": "uint8", "int16_t": "int16", "uint16_t": "uint16",
    "std::complex<float>": "complex64", "std::complex<double>": "complex128",
    "std::string": "str", "string": "str",
}

_numpy = None


def numpy(required=True):
    """The numpy module (imported on first use: numpy is optional)."""
    global _numpy
    if _numpy is None:
        try:
            import numpy as np
        except ImportError:
            if required:
                raise ImportError("this operation needs numpy, which is not installed") from None
            return None
        _numpy = np
    return _numpy


def template_arg(typename):
    """``vineyard::Tensor<double>`` -> ``double``; '' when there is none."""
    lt = typename.find("<")
    if lt < 0 or not typename.endswith(">"):
        return ""
    return typename[lt + 1:-1]


def normalize_dtype(name):
    """The numpy dtype for a typename argument or dtype name (``double``,
    ``int64_t``, ``float32``...)."""
    np = numpy()
    try:
        return np.dtype(_ALIASES.get(name, name))
    except TypeError:
        raise ValueError("%r is not a known element type" % (name,)) from None


def vineyard_type_name(dtype):
    """Vineyard's typename argument for `dtype` (``double`` for float64)."""
    return _VINEYARD_NAMES.get(dtype.name, dtype.name)


def descr(dtype):
    """The .npy descr the daemon's numpy plugin uses (``<f8``, ``|b1``, ``<U5``)."""
    text = dtype.newbyteorder("<").str if dtype.byteorder == ">" else dtype.str
    if text[0] == "=":
        text = "<" + text[1:]
    return text


def buffer_builder(client, buffer, builder=None):
    """A blob holding `buffer`'s bytes (an empty blob for None); its ObjectID."""
    return client._put_bytes(b"" if buffer is None else buffer)


def as_memoryview(obj):
    """A blob Object's payload as a read-only memoryview (zero-copy)."""
    return obj.buffer
