"""The client: Vineyard's IPCClient API as system calls on a vineyardfs mount.

Every call maps onto the tree of DESIGN.md §3-§5 and nothing else (no socket, no
extension module), which makes this module a worked example for other languages:

    put a blob            write new/<x>.blob, close() seals it, readlink new/<x>
    create metadata       write new/<x>.meta.json (the create-form JSON), likewise
    get_meta              read objects/<id>/meta.json (members expanded in place)
    a blob's payload      mmap objects/<id>/data read-only
    is the payload here   getxattr objects/<id> user.vineyard.local
    persist               setxattr objects/<id> user.vineyard.persist = 1
    names                 symlink / readlink / rename / unlink in names/
    delete                rmdir objects/<id>
    status                read status.json

The link left in new/ by a seal is removed once its id is read, and a file whose
seal failed is removed after its reason (user.vineyard.error) is read: the value
is still in the caller's hands, so nothing is lost.

A Client holds no file descriptors and may be used from several threads.
"""

import errno
import fnmatch
import itertools
import json
import mmap
import os
import re
import time

from . import context
from .errors import (ConnectionFailed, InvalidMetadata, NameNotExists, ObjectNotExists,
                     VineyardError, error_from_os)
from .objects import Object, ObjectID, ObjectMeta, map_readonly

_WRITE_CHUNK = 1 << 30
_HOLD_PREFIX = ".vineyardfs-"  # names the client uses internally; hidden from list_names
_counter = itertools.count(1)


def _id_of(value):
    if isinstance(value, Object):
        return value.id
    if isinstance(value, ObjectMeta):
        if value.id is None:
            raise InvalidMetadata("this ObjectMeta has not been created yet: it has no id")
        return value.id
    return ObjectID(value)


def _matcher(pattern, regex):
    """A predicate: the whole string matches the glob, or the regex with regex=True."""
    if regex:
        return re.compile(pattern).fullmatch
    return lambda text: fnmatch.fnmatchcase(text, pattern)


class InstanceStatus(dict):
    """status.json as a dict, with Vineyard's attribute names for the usual figures."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def instance_id(self):
        return self["instance"]

    @property
    def memory_usage(self):
        return self["arena"]["used"]

    @property
    def memory_limit(self):
        return self["arena"]["size"]


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
            raise error_from_os(e, "create_blob(%d)" % size) from None
        try:
            os.ftruncate(self._fd, size)
            self._map = mmap.mmap(self._fd, size) if size else None
        except OSError as e:
            self._discard()
            raise error_from_os(e, "create_blob(%d)" % size) from None
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
            raise error_from_os(e, "seal blob") from None
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


class Client:
    """A connection to a vineyardfs mount: see connect()."""

    def __init__(self, mount):
        self.mount = os.path.abspath(mount)
        self._objects = os.path.join(self.mount, "objects")
        self._new = os.path.join(self.mount, "new")
        self._names = os.path.join(self.mount, "names")
        try:
            status = self._read_json(os.path.join(self.mount, "status.json"))
        except (OSError, ValueError) as e:
            raise ConnectionFailed("%s is not a vineyardfs mount (no readable status.json: %s)"
                                   % (self.mount, e)) from None
        if "instance" not in status or not os.path.isdir(self._objects):
            raise ConnectionFailed("%s is not a vineyardfs mount" % self.mount)
        self._instance_id = int(status["instance"])

    def __repr__(self):
        return "vineyardfs.Client(%r, instance %d)" % (self.mount, self._instance_id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Nothing to release (the client holds no descriptors); for symmetry."""

    # --- paths and raw files ---

    def _object_path(self, object_id, *rest):
        return os.path.join(self._objects, str(object_id), *rest)

    def _new_path(self, suffix):
        return os.path.join(self._new, "py%d-%d%s" % (os.getpid(), next(_counter), suffix))

    @staticmethod
    def _read_file(path):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
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
            raise error_from_os(e, what, reason) from None
        try:
            target = os.readlink(path)
            os.unlink(path)
        except OSError as e:
            raise error_from_os(e, what + " (reading the sealed link)") from None
        return ObjectID(target)

    def _create_file(self, suffix, data, what):
        """Writes `data` (bytes-like, 1-D byte view) to new/<x><suffix> and seals it."""
        path = self._new_path(suffix)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise error_from_os(e, what) from None
        try:
            view, done = memoryview(data), 0
            while done < len(view):
                done += os.write(fd, view[done:done + _WRITE_CHUNK])
        except OSError as e:
            try:
                os.unlink(path)  # aborts the upload, so the close() below seals nothing
            except OSError:
                pass
            os.close(fd)
            raise error_from_os(e, what) from None
        return self._seal(path, fd, what)

    # --- creating ---

    def _put_bytes(self, data):
        """A vineyard::Blob holding exactly `data` (a contiguous buffer)."""
        view = memoryview(data)
        if not view.contiguous:
            view = memoryview(view.tobytes())
        return self._create_file(".blob", view.cast("B"), "put blob of %d bytes" % view.nbytes)

    def create_blob(self, size):
        """A BlobBuilder of `size` bytes."""
        return BlobBuilder(self, size)

    def create_metadata(self, meta):
        """Creates the object `meta` describes; sets and returns its id on `meta`."""
        if not isinstance(meta, ObjectMeta):
            raise TypeError("create_metadata takes an ObjectMeta, not %s" % type(meta).__name__)
        if not meta.typename:
            raise InvalidMetadata("the metadata has no typename")
        try:
            text = json.dumps(meta._create_form(), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidMetadata("the metadata is not JSON: %s" % e) from None
        object_id = self._create_file(".meta.json", text.encode(),
                                      "create %s" % meta.typename)
        meta._fields["id"] = str(object_id)
        meta._fields["instance_id"] = self._instance_id
        meta._fields.setdefault("transient", not meta.isglobal)
        meta._client = self
        return meta

    def put(self, value, builder=None, persist=False, name=None, **meta):
        """Builds `value` into an object and returns its ObjectID. `builder`: a
        BuilderContext, a {type: fn} dict or one function; `meta`: extra fields of
        the top-level object."""
        object_id = context.as_builder_context(builder).run(self, value, **meta)
        if persist:
            self.persist(object_id)
        if name is not None:
            self.put_name(object_id, name)
        return object_id

    # --- reading ---

    def get_meta(self, object_id):
        object_id = _id_of(object_id)
        try:
            tree = self._read_json(self._object_path(object_id, "meta.json"))
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise error_from_os(e, "get %s" % object_id, "no such object") from None
            raise error_from_os(e, "get %s" % object_id) from None
        return ObjectMeta._from_json(tree, self)

    def get_metas(self, object_ids):
        return [self.get_meta(i) for i in object_ids]

    def get_object(self, object_id):
        return Object(self, self.get_meta(object_id))

    def get_objects(self, object_ids):
        return [self.get_object(i) for i in object_ids]

    def get(self, object_id=None, name=None, resolver=None, fetch=False, **kw):
        """The value of an object (by id or name), resolved by `resolver` (a
        ResolverContext, a {prefix: fn} dict or one function; default: the current
        context). Members whose payload is on another node resolve to None unless
        fetch=True (see is_local)."""
        if object_id is None:
            if name is None:
                raise ValueError("get() needs an object id or a name")
            object_id = self.get_name(name)
        obj = self.get_object(object_id)
        return context.as_resolver_context(resolver).run(obj, fetch=fetch, **kw)

    def is_local(self, object_id):
        """Whether the object's payload is on this node: the user.vineyard.local
        xattr. The one place the client decides "local"; the cluster makes the
        xattr true for payloads fetched from their owner."""
        object_id = _id_of(object_id)
        try:
            return os.getxattr(self._object_path(object_id), "user.vineyard.local") == b"1"
        except OSError as e:
            raise error_from_os(e, "is_local %s" % object_id) from None

    def _payload_is_here(self, obj):
        """True if `obj` (a blob) or each blob that is a direct member of `obj`
        has its payload on this node. Containers check their members as they
        resolve them, so one remote member makes only that member None."""
        if obj.is_blob:
            return self.is_local(obj.id)
        for name, value in obj.meta.items():
            if isinstance(value, ObjectMeta):
                value._raise_if_gone(name, obj.meta)  # ObjectNotExists: a member is gone
        return all(self.is_local(m) for m in obj.meta.member_ids() if m.is_blob)

    def _map_blob(self, object_id, size):
        try:
            return map_readonly(self._object_path(object_id, "data"), size)
        except OSError as e:
            raise error_from_os(e, "map %s" % object_id) from None

    def exists(self, object_id):
        try:
            os.lstat(self._object_path(_id_of(object_id)))
            return True
        except FileNotFoundError:
            return False
        except OSError as e:
            raise error_from_os(e, "exists %s" % object_id) from None

    def _listed(self, pattern, regex, limit):
        """(id, typename) of the objects whose typename matches, in id order."""
        match = _matcher(pattern, regex)
        found = []
        try:
            names = sorted(os.listdir(self._objects))
        except OSError as e:
            raise error_from_os(e, "list objects") from None
        for entry in names:
            try:
                typename = os.getxattr(os.path.join(self._objects, entry),
                                       "user.vineyard.typename").decode()
            except OSError:
                continue  # deleted meanwhile
            if match(typename):
                found.append(ObjectID(entry))
                if limit is not None and len(found) >= limit:
                    break
        return found

    def list_objects(self, pattern="*", regex=False, limit=5):
        """Objects whose typename matches `pattern` (glob, or a regex with
        regex=True), at most `limit` (None: all)."""
        return [self.get_object(i) for i in self._listed(pattern, regex, limit)]

    def list_metadatas(self, pattern="*", regex=False, limit=5):
        return [self.get_meta(i) for i in self._listed(pattern, regex, limit)]

    @property
    def status(self):
        """status.json of the daemon (an InstanceStatus)."""
        try:
            return InstanceStatus(self._read_json(os.path.join(self.mount, "status.json")))
        except OSError as e:
            raise error_from_os(e, "status") from None

    @property
    def instance_id(self):
        return self._instance_id

    @property
    def meta(self):
        """The cluster as this node sees it, as Vineyard's ``client.meta``: instance id ->
        ``instances/<n>.json`` (endpoint, status, last seen, replication lag)."""
        out = {}
        base = os.path.join(self.mount, "instances")
        try:
            for entry in os.listdir(base):
                if entry.endswith(".json") and entry[:-5].isdigit():
                    out[int(entry[:-5])] = InstanceStatus(self._read_json(os.path.join(base, entry)))
        except OSError as e:
            raise error_from_os(e, "instances") from None
        return dict(sorted(out.items()))

    # --- persist, delete ---

    def persist(self, object_id):
        """Makes the object (and its members) visible to every node."""
        object_id = _id_of(object_id)
        try:
            os.setxattr(self._object_path(object_id), "user.vineyard.persist", b"1")
        except OSError as e:
            raise error_from_os(e, "persist %s" % object_id) from None

    def delete(self, object_ids, deep=True):
        """Deletes objects. deep=True (Vineyard's default) also deletes members
        no other object references and no name holds; deep=False keeps every
        member. An object that is still a member of another one is ObjectInUse,
        unless that one is deleted in the same call."""
        if isinstance(object_ids, (list, tuple, set)):
            pending = [_id_of(i) for i in object_ids]
        else:
            pending = [_id_of(object_ids)]
        for object_id in pending:
            if not self.exists(object_id):
                raise ObjectNotExists("delete %s: no such object" % object_id)
        while pending:
            busy, error = [], None
            for object_id in pending:
                try:
                    self._delete_one(object_id, deep)
                except VineyardError as e:
                    if e.errno == errno.ENOENT:
                        continue  # went with an object deleted before it (deep)
                    if e.errno != errno.EBUSY:
                        raise
                    busy.append(object_id)
                    error = e
            if len(busy) == len(pending):
                raise error
            pending = busy

    def _delete_one(self, object_id, deep):
        holds = []
        try:
            if not deep:
                # The store deletes unreferenced, unnamed members with the object;
                # a name on each direct member keeps it.
                for member in self.get_meta(object_id).member_ids():
                    hold = "%shold-%d-%d" % (_HOLD_PREFIX, os.getpid(), next(_counter))
                    os.symlink(str(member), os.path.join(self._names, hold))
                    holds.append(hold)
            os.rmdir(self._object_path(object_id))
        except OSError as e:
            reason = None
            if e.errno == errno.EBUSY:
                reason = "it is a member of another object (delete that one first)"
            elif e.errno == errno.ENOENT:
                reason = "no such object"
            raise error_from_os(e, "delete %s" % object_id, reason) from None
        finally:
            for hold in holds:
                try:
                    os.unlink(os.path.join(self._names, hold))
                except OSError:
                    pass

    # --- names ---

    @staticmethod
    def _check_name(name):
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
            raise ValueError("%r is not a valid name (non-empty, no '/')" % (name,))
        if name.startswith(_HOLD_PREFIX):
            raise ValueError("names starting with %r are reserved by the client" % _HOLD_PREFIX)

    def put_name(self, object_id, name):
        """Names the object; an existing name is moved to it (as Vineyard does)."""
        self._check_name(name)
        object_id = _id_of(object_id)
        tmp = os.path.join(self._names, "%stmp-%d-%d" % (_HOLD_PREFIX, os.getpid(),
                                                         next(_counter)))
        try:
            os.symlink("../objects/%s" % object_id, tmp)
        except OSError as e:
            raise error_from_os(e, "put_name %s -> %s" % (name, object_id),
                                "no such object" if e.errno == errno.ENOENT else None) from None
        try:
            os.rename(tmp, os.path.join(self._names, name))
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise error_from_os(e, "put_name %s -> %s" % (name, object_id)) from None

    def get_name(self, name, wait=False, timeout=None):
        """The ObjectID named `name`; with wait=True, waits for the name to appear
        (at most `timeout` seconds when given)."""
        self._check_name(name)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return ObjectID(os.readlink(os.path.join(self._names, name)))
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise error_from_os(e, "get_name %s" % name) from None
                if not wait or (deadline is not None and time.monotonic() >= deadline):
                    raise error_from_os(e, "get_name %s" % name, "no such name",
                                        NameNotExists) from None
            time.sleep(0.01)

    def drop_name(self, name):
        self._check_name(name)
        try:
            os.unlink(os.path.join(self._names, name))
        except OSError as e:
            cls = NameNotExists if e.errno == errno.ENOENT else None
            raise error_from_os(e, "drop_name %s" % name,
                                "no such name" if cls else None, cls) from None

    def list_names(self, pattern="*", regex=False, limit=5):
        """{name: ObjectID} of the names matching `pattern`, at most `limit`."""
        match = _matcher(pattern, regex)
        out = {}
        try:
            entries = sorted(os.listdir(self._names))
        except OSError as e:
            raise error_from_os(e, "list names") from None
        for name in entries:
            if name.startswith(_HOLD_PREFIX) or not match(name):
                continue
            try:
                out[name] = ObjectID(os.readlink(os.path.join(self._names, name)))
            except (OSError, ValueError):
                continue
            if limit is not None and len(out) >= limit:
                break
        return out


def connect(mount=None):
    """A Client of the vineyardfs mount at `mount` (default: $VINEYARDFS_MOUNT,
    then /vineyard)."""
    if mount is None:
        mount = os.environ.get("VINEYARDFS_MOUNT") or "/vineyard"
    return Client(mount)
