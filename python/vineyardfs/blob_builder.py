"""BlobBuilder: a blob written in place through a shared mapping of new/<x>.blob
(Vineyard's ``client.create_blob(size)``); ``close()`` of the upload seals it."""

import mmap
import os

from .errors import VineyardError


class BlobBuilder:
    """A blob being written through a shared mapping of new/<x>.blob (Vineyard's
    ``client.create_blob(size)``). Write through ``buffer`` (a writable
    memoryview, e.g. ``numpy.frombuffer(b.buffer, dtype)``) or ``copy()``, then
    ``seal()``: the id exists from then on (the store numbers objects at the seal).
    Release every view of ``buffer`` before sealing. ``abort()`` drops it."""

    def __init__(self, client, size):
        if size < 0:
            raise ValueError("a blob's size cannot be negative")
        self._client = client
        self._size = size
        self._final = size
        self._path = client._new_path(".blob")
        self._id = None
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                               0o644)
        except OSError as e:
            raise client._error(e, "create_blob(%d)" % size) from None
        try:
            os.ftruncate(self._fd, size)
            self._map = mmap.mmap(self._fd, size) if size else None
        except OSError as e:
            self._discard()
            raise client._error(e, "create_blob(%d)" % size) from None
        self._view = memoryview(self._map) if self._map is not None else memoryview(bytearray())

    @property
    def id(self):
        """The blob's id once sealed, else None."""
        return self._id

    @property
    def size(self):
        return self._final

    @property
    def buffer(self):
        return self._view

    @property
    def address(self):
        import ctypes

        if self._map is None:
            return 0
        return ctypes.addressof(ctypes.c_char.from_buffer(self._map))

    def copy(self, offset, data):
        """Copies `data` (any buffer) to `offset`."""
        src = memoryview(data).cast("B")
        if offset < 0 or offset + len(src) > self._size:
            raise ValueError("copy of %d bytes at %d overflows a blob of %d bytes"
                             % (len(src), offset, self._size))
        self._view[offset:offset + len(src)] = src

    def shrink(self, size):
        """Seals only the first `size` bytes."""
        if not 0 <= size <= self._size:
            raise ValueError("shrink(%d) of a blob of %d bytes" % (size, self._size))
        self._final = size

    def _unmap(self):
        try:
            self._view.release()
            if self._map is not None:
                self._map.close()
                self._map = None
        except BufferError:
            raise VineyardError("seal(): views of the blob's buffer are still alive; "
                                "release them (del the arrays/memoryviews) first") from None

    def seal(self, client=None):
        """Seals the blob and returns it as an Object."""
        if self._id is not None:
            return self._client.get_object(self._id)
        if self._fd < 0:
            raise VineyardError("the blob was aborted")
        self._unmap()
        try:
            if self._final != self._size:
                os.ftruncate(self._fd, self._final)
        except OSError as e:
            self._discard()
            raise self._client._error(e, "seal blob") from None
        fd, self._fd = self._fd, -1
        self._id = self._client._seal(self._path, fd, "seal blob of %d bytes" % self._final)
        return self._client.get_object(self._id)

    def abort(self, client=None):
        """Drops the unsealed blob."""
        if self._fd >= 0:
            self._unmap()
            self._discard()

    def _discard(self):
        try:
            os.unlink(self._path)  # removing an unsealed upload aborts it
        except OSError:
            pass
        os.close(self._fd)
        self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.seal()
        else:
            self.abort()

    def __del__(self):
        if getattr(self, "_fd", -1) >= 0 and self._id is None:
            try:
                self.abort()
            except Exception:
                pass
