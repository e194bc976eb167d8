"""The client's file layer: paths under the mount, whole-file reads, uploads to
new/ and their seal, and the ids a caller passes (DESIGN.md §3-§4).

Client (client.py) takes these methods from ClientFiles; the system calls are the
ones listed at the top of client.py.
"""

import errno
import itertools
import json
import os

from .errors import InvalidMetadata
from .objects import Object, ObjectID, ObjectMeta

_WRITE_CHUNK = 1 << 30
_IOV_MAX = 1024  # Linux's UIO_MAXIOV
_counter = itertools.count(1)


def _write_all(fd, pieces):
    """Writes the byte buffers `pieces` in order: writev of up to _IOV_MAX at a
    time (one system call for a batch's manifest and all its small blobs). Bytes,
    memoryviews and arrays (contiguous, as the client makes them) go to writev as
    they are; a 1-D byte view of each is made only for a short write or a huge
    piece."""
    for at in range(0, len(pieces), _IOV_MAX):
        group = pieces[at:at + _IOV_MAX]
        try:
            total = sum([len(p) if type(p) is bytes else p.nbytes for p in group])
        except AttributeError:  # another buffer type: its byte view says its size
            total = sum(memoryview(p).nbytes for p in group)
        done = os.writev(fd, group) if total <= _WRITE_CHUNK else 0
        if done == total:
            continue
        for view in group:  # a short write (or a huge piece): finish piece by piece
            view = memoryview(view).cast("B")
            if done >= view.nbytes:
                done -= view.nbytes
                continue
            view, done = view[done:], 0
            while view.nbytes:
                view = view[os.write(fd, view[:_WRITE_CHUNK]):]


def _id_of(value):
    if isinstance(value, Object):
        return value.id
    if isinstance(value, ObjectMeta):
        if value.id is None:
            raise InvalidMetadata("this ObjectMeta has not been created yet: it has no id")
        return value.id
    return ObjectID(value)


class ClientFiles:
    """Paths and raw files of a Client (a mixin: it uses the Client's _error)."""

    # --- paths and raw files ---

    def _object_path(self, object_id, *rest):
        # A plain join (os.path.join costs ~1 us of get_meta's ~15 us of Python): the
        # parts are an id ("o" + hex) and fixed file names, never absolute or empty.
        return "/".join((self._objects, str(object_id)) + rest)

    def _new_path(self, suffix):
        return os.path.join(self._new, "py%d-%d%s" % (os.getpid(), next(_counter), suffix))

    @staticmethod
    def _read_file(path):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # A short first read is the whole file here (meta.json and status.json
            # are served whole): it spares the read of the end. The first buffer is
            # small: a 1 MiB one, shrunk and kept while parsed, was measured to make
            # malloc move its heap top at every call (get_meta at 400 us, not 40).
            chunk = os.read(fd, 1 << 16)
            if len(chunk) < 1 << 16:
                return chunk
            chunks = [chunk]
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        finally:
            os.close(fd)

    def _read_json(self, path):
        return json.loads(self._read_file(path))

    def _seal(self, path, fd, what):
        """Closes `fd` (sealing new/<x>), removes the link and returns the id."""
        try:
            os.close(fd)
        except OSError as e:
            reason = None
            try:
                reason = os.getxattr(path, "user.vineyard.error").decode(errors="replace")
            except OSError:
                pass
            try:
                os.unlink(path)
            except OSError:
                pass
            raise self._error(e, what, reason) from None
        try:
            target = os.readlink(path)
            os.unlink(path)
        except OSError as e:
            # close() cannot know that it drops the last reference, so a seal that
            # failed after it says why in the upload's xattrs (DESIGN.md §4).
            failed = self._seal_failure(path)
            if failed is not None:
                try:
                    os.unlink(path)
                except OSError:
                    pass
                raise self._error(failed[0], what, failed[1]) from None
            raise self._error(e, what + " (reading the sealed link)") from None
        return ObjectID(target)

    @staticmethod
    def _seal_failure(path):
        """(OSError, reason) of the failed seal of the upload at `path`, or None."""
        try:
            name = os.getxattr(path, "user.vineyard.errno", follow_symlinks=False)
            reason = os.getxattr(path, "user.vineyard.error", follow_symlinks=False)
        except OSError:
            return None
        code = getattr(errno, name.decode(errors="replace"), errno.EIO)
        return OSError(code, os.strerror(code), path), reason.decode(errors="replace")

    def _create_file(self, suffix, data, what):
        """Writes `data` (bytes-like, 1-D byte view; or a list of them, written in
        order) to new/<x><suffix> and seals it."""
        path = self._new_path(suffix)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise self._error(e, what) from None
        try:
            _write_all(fd, data if isinstance(data, list) else [data])
        except OSError as e:
            try:
                os.unlink(path)  # aborts the upload, so the close() below seals nothing
            except OSError:
                pass
            os.close(fd)
            raise self._error(e, what) from None
        return self._seal(path, fd, what)
