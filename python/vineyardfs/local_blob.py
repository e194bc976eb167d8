"""get() of a blob made on this node in one open (README "Per-object cost").

A blob's id says it is a blob (bit 63) and which instance made it (bits 62..48); a
blob made here has its payload here (the client's is_local rule), its typename is
vineyard::Blob and its length is its data file's size. So ``get``/``get_object`` of
such a blob open and map ``objects/<id>/data`` and nothing else: ``meta.json`` is
read only if a field other than id, typename, length or nbytes is asked for.
"""

import errno
import os

from .objects import Blob, EmptyBlob, ObjectMeta

BLOB_TYPENAME = "vineyard::Blob"


class LocalBlobMeta(ObjectMeta):
    """The meta of a blob made on this node, read from meta.json on first need."""

    def __init__(self, client, object_id):  # pylint: disable=super-init-not-called
        # No ObjectMeta.__init__: _fields is the property below.
        self._client = client
        self._id = object_id
        self._length = None
        self._loaded = None
        self._local = True  # Client._is_local_cached: no xattr to ask

    @property
    def _fields(self):
        if self._loaded is None:
            path = self._client._object_path(self._id, "meta.json")
            tree = self._client._read_json(path)
            self._loaded = ObjectMeta._from_json(tree, self._client)._fields
        return self._loaded

    @property
    def id(self):
        return self._id

    @property
    def typename(self):
        return BLOB_TYPENAME

    @typename.setter
    def typename(self, value):
        self._fields["typename"] = value

    @property
    def nbytes(self):
        return self._length if self._length is not None else int(self._fields.get("nbytes", 0))

    def get(self, key, default=None):
        if key == "length" and self._length is not None:
            return self._length
        return self._fields.get(key, default)


def is_local_blob(client, object_id):
    """Whether `object_id` is a blob this node made (and no test plays it remote)."""
    return (object_id.is_blob and object_id.instance_id == client._instance_id
            and "is_local" not in vars(client))


def open_local_blob(client, object_id):
    """The Blob (or EmptyBlob) of a blob this node made: one open of its data."""
    path = client._object_path(object_id, "data")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise client._error(e, "get %s" % object_id, "no such object") from None
        raise client._error(e, "get %s" % object_id) from None
    meta = LocalBlobMeta(client, object_id)
    try:
        try:
            blob = Blob(client, meta, fd, 0)  # 0: the whole file (mmap's own fstat)
        except ValueError:  # "cannot mmap an empty file"
            if os.fstat(fd).st_size != 0:
                raise
            meta._length = 0
            return EmptyBlob(client, meta)
        meta._length = len(blob)
        return blob
    except OSError as e:
        raise client._error(e, "map %s" % object_id) from None
    finally:
        os.close(fd)
