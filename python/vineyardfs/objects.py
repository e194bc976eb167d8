"""ObjectID, ObjectMeta and Object: Vineyard's Python object model over meta.json.

An ObjectMeta is the JSON tree of ``objects/<id>/meta.json`` (members expanded in
place) or, before creation, the create form being assembled by a builder. An
Object is a sealed object seen through a client: its metadata, its members as
Objects and, for a blob, its payload mapped read-only from ``objects/<id>/data``.

Objects and metas are plain values: they hold no file descriptor, and a blob's
mapping lives as long as the memoryviews (or arrays) made from it.
"""

import json
import mmap
import re

import errno

from .errors import InvalidMetadata, ObjectNotExists
# Payload mappings live in mapping.py; re-exported: vineyardfs.objects.X as before.
from .mapping import Mapping, buffer_address, map_readonly  # noqa: F401

_ID_RE = re.compile(r"^o[0-9a-f]{16}$")
_BLOB_BIT = 1 << 63


class ObjectID:
    """An object id: ``o`` + 16 lowercase hex digits when printed. Bit 63 marks a
    blob; bits 62..48 are the instance that created it."""

    __slots__ = ("_value",)

    def __init__(self, value):
        if isinstance(value, ObjectID):
            value = value._value
        elif isinstance(value, str):
            text = value.rsplit("/", 1)[-1]
            if not _ID_RE.match(text):
                raise ValueError("%r is not an object id (o + 16 lowercase hex digits)" % value)
            value = int(text[1:], 16)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < 1 << 64:
                raise ValueError("object id %d is out of range" % value)
        else:
            raise TypeError("an object id is an ObjectID, an int or 'o...', not %s"
                            % type(value).__name__)
        self._value = value

    def __int__(self):
        return self._value

    def __str__(self):
        return "o%016x" % self._value

    def __repr__(self):
        return 'ObjectID <"%s">' % self

    def __eq__(self, other):
        if isinstance(other, ObjectID):
            return self._value == other._value
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self):
        return hash(self._value)

    def __lt__(self, other):
        return self._value < ObjectID(other)._value

    @property
    def is_blob(self):
        return bool(self._value & _BLOB_BIT)

    @property
    def instance_id(self):
        """The instance that created the object."""
        return (self._value >> 48) & 0x7FFF


# Fields the store sets; refused in the create form, so never sent back.
_STORE_FIELDS = ("id", "instance_id", "signature", "__timestamp", "length")


def _is_member(value):
    return isinstance(value, dict) and "id" in value


class ObjectMeta:
    """Metadata of an object: a JSON object whose fields are plain values or
    members (other objects). Item access reads and writes fields; ``add_member``
    adds a member by ObjectID, Object or ObjectMeta.

    ``ObjectMeta(global_=False, **fields)`` starts a create form, as in Vineyard.
    """

    def __init__(self, global_=False, **fields):
        self._fields = {}
        self._client = None
        if global_:
            self._fields["global"] = True
        for key, value in fields.items():
            self[key] = value

    @classmethod
    def _from_json(cls, tree, client):
        """The meta of a stored object from its meta.json tree."""
        meta = cls()
        meta._client = client
        for key, value in tree.items():
            meta._fields[key] = cls._from_json(value, client) if _is_member(value) else value
        return meta

    # --- well-known fields ---

    @property
    def id(self):
        value = self._fields.get("id")
        return ObjectID(value) if value is not None else None

    @property
    def typename(self):
        return self._fields.get("typename")

    @typename.setter
    def typename(self, value):
        self._fields["typename"] = value

    @property
    def nbytes(self):
        return int(self._fields.get("nbytes", 0))

    @property
    def instance_id(self):
        value = self._fields.get("instance_id")
        if value is None and self.id is not None:
            return self.id.instance_id
        return value

    @property
    def isglobal(self):
        return bool(self._fields.get("global", False))

    def set_global(self, value=True):
        self._fields["global"] = bool(value)

    @property
    def ispersist(self):
        return "transient" in self._fields and not self._fields["transient"]

    @property
    def islocal(self):
        """Whether the payload is on this node (user.vineyard.local). A meta not
        created yet is local."""
        if self.id is None or self._client is None:
            return True
        return self._client.is_local(self.id)

    @property
    def memory_usage(self):
        return self.nbytes

    # --- fields and members ---

    def __getitem__(self, key):
        return self._fields[key]

    def __setitem__(self, key, value):
        if not isinstance(key, str) or not key or "/" in key:
            raise InvalidMetadata("field name %r must be a non-empty string without '/'" % (key,))
        if isinstance(value, (ObjectID, ObjectMeta)) or _is_object(value):
            self.add_member(key, value)
        else:
            self._fields[key] = value

    def __delitem__(self, key):
        del self._fields[key]

    def __contains__(self, key):
        return key in self._fields

    def __iter__(self):
        return iter(self._fields)

    def __len__(self):
        return len(self._fields)

    def keys(self):
        return self._fields.keys()

    def items(self):
        return self._fields.items()

    def get(self, key, default=None):
        return self._fields.get(key, default)

    def add_member(self, name, member):
        """Adds `member` (ObjectID, Object, or ObjectMeta of a created object)."""
        if _is_object(member):
            member = member.meta
        if isinstance(member, ObjectMeta):
            if member.id is None:
                raise InvalidMetadata("member %r has no id: create it first "
                                      "(client.create_metadata)" % name)
        elif not isinstance(member, ObjectID):
            member = ObjectID(member)
        if not isinstance(name, str) or not name or "/" in name:
            raise InvalidMetadata("member name %r must be a non-empty string without '/'" % (name,))
        self._fields[name] = member

    def member(self, name):
        """The member `name` as an ObjectMeta (read from the mount if this meta
        only knows its id)."""
        value = self._fields[name]
        if isinstance(value, ObjectMeta):
            value._raise_if_gone(name, self)
            return value
        if isinstance(value, ObjectID):
            if self._client is None:
                raise InvalidMetadata("member %r is only an id here: get its meta from a client"
                                      % name)
            return self._client.get_meta(value)
        raise KeyError("%r is a plain field, not a member" % name)

    get_member = member

    def _raise_if_gone(self, name, holder):
        """meta.json shows a member that is no longer there as {"id", "error"}
        ("deleted": its owner deleted it; a reference to another owner's object does
        not keep it): ObjectNotExists saying so."""
        if "error" in self._fields and "typename" not in self._fields:
            exc = ObjectNotExists("member %r of %s (%s) is %s" % (
                name, holder.id, self.id, self._fields["error"]))
            exc.errno = errno.ENOENT
            raise exc

    def member_names(self):
        return [k for k, v in self._fields.items() if isinstance(v, (ObjectMeta, ObjectID))]

    def member_ids(self):
        return [v if isinstance(v, ObjectID) else v.id
                for v in self._fields.values() if isinstance(v, (ObjectID, ObjectMeta))]

    # --- JSON ---

    def _create_form(self):
        """The JSON object written to new/<x>.meta.json."""
        out = {}
        for key, value in self._fields.items():
            if key in _STORE_FIELDS:
                continue
            if isinstance(value, ObjectMeta):
                out[key] = {"id": str(value.id)}
            elif isinstance(value, ObjectID):
                out[key] = {"id": str(value)}
            else:
                out[key] = value
        return out

    def _tree(self):
        out = {}
        for key, value in self._fields.items():
            if isinstance(value, ObjectMeta):
                out[key] = value._tree()
            elif isinstance(value, ObjectID):
                out[key] = {"id": str(value)}
            else:
                out[key] = value
        return out

    def to_json(self):
        return json.dumps(self._tree())

    def __repr__(self):
        return "ObjectMeta " + json.dumps(self._tree(), indent=2, default=str)

    __str__ = __repr__


def _is_object(value):
    return isinstance(value, Object)


class _Size(int):
    """An int that can also be called, so that both Vineyard spellings work:
    ``blob.size`` and ``tensor.size()``."""

    def __call__(self):
        return int(self)


class Object:
    """A sealed object: ``id``, ``typename``, ``nbytes``, ``meta``, ``signature``;
    members as Objects through ``member(name)`` or as attributes (``pair.first``
    is the member ``first`` or ``first_``). A blob has ``size``, ``buffer`` (a
    read-only memoryview of its payload mapped from ``objects/<id>/data``),
    ``address`` and ``is_empty``; a blob whose payload is on this node is a
    ``Blob``, which also exports the buffer protocol itself (``memoryview(blob)``,
    ``numpy.frombuffer(blob)``). Make Objects with ``make_object``."""

    def __init__(self, client, meta):
        self._client = client
        self._meta = meta
        self._buffer = None

    @property
    def id(self):
        return self._meta.id

    @property
    def typename(self):
        return self._meta.typename

    @property
    def nbytes(self):
        return self._meta.nbytes

    @property
    def signature(self):
        value = self._meta.get("signature")
        return int(value) if value is not None else None

    @property
    def meta(self):
        return self._meta

    @property
    def islocal(self):
        return self._meta.islocal

    @property
    def isglobal(self):
        return self._meta.isglobal

    @property
    def ispersist(self):
        return self._meta.ispersist

    @property
    def is_blob(self):
        return self.id.is_blob

    @property
    def is_empty(self):
        return self.is_blob and int(self.size) == 0

    def member(self, name):
        return make_object(self._client, self._meta.member(name))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        meta = self.__dict__.get("_meta")
        if meta is not None:
            for key in (name, name + "_"):
                if key in meta and isinstance(meta[key], (ObjectMeta, ObjectID)):
                    return self.member(key)
        raise AttributeError("%s has no member or attribute %r" % (self.typename, name))

    @property
    def size(self):
        """A blob's length in bytes; a tensor's or array's number of elements; a
        sequence's number of elements (callable too: ``obj.size()``)."""
        meta = self._meta
        if self.is_blob:
            return _Size(meta.get("length", meta.nbytes))
        if "shape_" in meta:
            n = 1
            for d in _json_field(meta["shape_"]):
                n *= int(d)
            return _Size(n)
        for key in ("length_", "size_", "__elements_-size"):
            if key in meta:
                return _Size(int(meta[key]))
        raise AttributeError("%s has no size" % self.typename)

    @property
    def buffer(self):
        """A blob's payload: a read-only memoryview of the mapped data file (mapping
        a payload held by another node fetches it)."""
        if not self.is_blob:
            raise AttributeError("%s is not a blob: it has no buffer" % self.typename)
        if self._buffer is None:
            size = int(self.size)
            if size == 0:
                self._buffer = memoryview(b"")
            else:  # a Blob (the mapping) behind the view, as for a local blob
                self._buffer = memoryview(self._client._open_blob(self._meta, size))
        return self._buffer

    @property
    def address(self):
        """The address of a blob's mapped payload in this process (0 when empty)."""
        return buffer_address(self.buffer)

    def __bytes__(self):
        return bytes(self.buffer)

    def __repr__(self):
        return 'Object <"%s": %s>' % (self.id, self.typename)

    __str__ = __repr__


class Blob(Object, mmap.mmap):
    """A blob whose payload is on this node: the Object and, at once, the read-only
    shared mapping of its ``data`` file, so it exports the buffer protocol as
    Vineyard's Blob does (``memoryview(blob)``, ``numpy.frombuffer(blob)``,
    zero-copy). The mapping lives as long as the Blob or any view of it."""

    def __new__(cls, client, meta, fd, size):
        return mmap.mmap.__new__(cls, fd, size, prot=mmap.PROT_READ)

    def __init__(self, client, meta, fd, size):
        Object.__init__(self, client, meta)

    size = Object.size  # not mmap.size()

    @property
    def buffer(self):
        if self._buffer is None:
            self._buffer = memoryview(self)
        return self._buffer

    def close(self):
        """Kept open: views of the payload may outlive any one user of the Blob."""

    __repr__ = Object.__repr__
    __str__ = Object.__str__


class EmptyBlob(Object, bytes):
    """A blob of 0 bytes (nothing to map): an empty buffer."""

    def __new__(cls, client, meta):
        return bytes.__new__(cls, b"")

    def __init__(self, client, meta):
        Object.__init__(self, client, meta)

    size = Object.size

    @property
    def buffer(self):
        return memoryview(self)

    __repr__ = Object.__repr__
    __str__ = Object.__str__


def make_object(client, meta):
    """The Object for `meta`: a Blob (mapped) or EmptyBlob for a blob whose
    payload is here, else an Object (a remote blob maps, and so fetches, only
    when its ``buffer`` is used)."""
    object_id = meta.id
    if object_id is None or not object_id.is_blob:
        return Object(client, meta)
    size = int(meta.get("length", meta.nbytes))
    if size == 0:
        return EmptyBlob(client, meta)
    if not client._is_local_cached(meta):
        return Object(client, meta)
    return client._open_blob(meta, size)


def _json_field(value):
    """Vineyard stores lists (shape_) and strings (order_) as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
