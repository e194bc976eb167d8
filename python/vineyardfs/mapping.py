"""Mappings of payloads and buffer addresses: a blob's data file mapped read-only
(Mapping, map_readonly) and the address of any buffer (buffer_address).

objects.py re-exports these names (vineyardfs.objects.X as before).
"""

import mmap
import os

_py_buffer = None


def buffer_address(buffer):
    """The address of the first byte of any buffer (read-only ones too), without
    numpy: PyObject_GetBuffer through ctypes. 0 for an empty buffer."""
    global _py_buffer
    import ctypes

    if _py_buffer is None:
        class PyBuffer(ctypes.Structure):
            _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p),
                        ("len", ctypes.c_ssize_t), ("itemsize", ctypes.c_ssize_t),
                        ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                        ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p),
                        ("strides", ctypes.c_void_p), ("suboffsets", ctypes.c_void_p),
                        ("internal", ctypes.c_void_p)]
        _py_buffer = PyBuffer
    view = _py_buffer()
    ctypes.pythonapi.PyObject_GetBuffer(ctypes.py_object(buffer), ctypes.byref(view), 0)
    try:
        return view.buf or 0 if view.len else 0
    finally:
        ctypes.pythonapi.PyBuffer_Release(ctypes.byref(view))


class Mapping(mmap.mmap):
    """A read-only mapping of a blob's payload that knows the blob (``blob_id``,
    ``mount``): how a builder recognises an array that already lives in a blob
    and reuses the blob instead of copying it."""

    def close(self):
        """Kept open while views exist (see Blob.close)."""


def map_readonly(path, size, blob_id=None, mount=None):
    """A read-only memoryview of the first `size` bytes of `path`, mapped shared."""
    if size == 0:
        return memoryview(b"")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        mapping = Mapping(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    mapping.blob_id, mapping.mount = blob_id, mount
    return memoryview(mapping)
