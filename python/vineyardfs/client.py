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

A Client holds no file descriptors and may be used from several threads. Its
methods are in four files: this one (the connection, creating, reading),
client_files.py (paths, raw files, the seal), client_delete.py (persist, delete)
and client_names.py (names/); the helpers they share stay importable from here.
"""

import errno
import json
import os

from . import batch as _batch
from . import context
from . import local_blob
from .blob_builder import BlobBuilder
from .client_delete import ClientDeletes
# (_write_all and the constants re-exported: vineyardfs.client.X as before the split)
from .client_files import (_IOV_MAX, _WRITE_CHUNK, ClientFiles, _counter,  # noqa: F401
                           _id_of, _write_all)
from .client_names import _HOLD_PREFIX, ClientNames, _matcher  # noqa: F401
from .errors import ConnectionFailed, InvalidMetadata, error_from_os
from .objects import Blob, ObjectID, ObjectMeta, make_object, map_readonly


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


class Client(ClientFiles, ClientDeletes, ClientNames):
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

    # --- the connection ---

    @property
    def connected(self):
        """Whether the mount is still a running vineyardfs mount: status.json is
        there. False once the daemon is gone (ENOTCONN) or after an unmount (the
        mount point is an empty directory again)."""
        try:
            os.stat(os.path.join(self.mount, "status.json"))
            return True
        except OSError:
            return False

    def _error(self, err, what, reason=None, cls=None):
        """error_from_os, except that any failure on a mount that is no longer
        there is ConnectionFailed: after an unmount, objects/<id> is missing from
        an empty directory, which must not read as "no such object"."""
        if err.errno != errno.ENOTCONN and not self.connected:
            exc = ConnectionFailed("%s: %s is not a vineyardfs mount any more (unmounted, or "
                                   "its daemon is gone)" % (what, self.mount))
            exc.errno, exc.path = errno.ENOTCONN, err.filename
            return exc
        return error_from_os(err, what, reason, cls)

    def _check_connected(self, what):
        if not self.connected:
            raise ConnectionFailed("%s: %s is not a vineyardfs mount any more (unmounted, or "
                                   "its daemon is gone)" % (what, self.mount))

    @property
    def ipc_socket(self):
        """Vineyard's socket path; here the mount point, which is the whole interface."""
        return self.mount

    @property
    def version(self):
        from . import __version__
        return __version__

    def fork(self):
        """A new client of the same mount (Vineyard's fork of the IPC connection;
        a Client holds no descriptor, so this is only a new object)."""
        return Client(self.mount)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Nothing to release (the client holds no descriptors); for symmetry."""

    # --- creating ---

    def _put_bytes(self, data):
        """A vineyard::Blob holding exactly `data` (a contiguous buffer)."""
        view = memoryview(data)
        if not view.contiguous:
            view = memoryview(view.tobytes())
        view = view.cast("B")
        batch = _batch.current(self)
        if batch is not None and view.nbytes <= _batch.INLINE_MAX:
            return batch.add_blob(view)  # a stand-in id, made real by put()'s batch
        object_id = self._create_file(".blob", view, "put blob of %d bytes" % view.nbytes)
        if batch is not None:
            batch.uploaded.append(object_id)
        return object_id

    def create_blob(self, size):
        """A BlobBuilder of `size` bytes."""
        return BlobBuilder(self, size)

    def create_metadata(self, meta):
        """Creates the object `meta` describes; sets and returns its id on `meta`."""
        if not isinstance(meta, ObjectMeta):
            raise TypeError("create_metadata takes an ObjectMeta, not %s" % type(meta).__name__)
        if not meta.typename:
            raise InvalidMetadata("the metadata has no typename")
        batch = _batch.current(self)
        if batch is not None:  # inside put(): recorded, created with the whole value
            object_id = batch.add_fields(meta._fields)
        else:
            object_id = self._create_meta_file(meta)
        meta._fields["id"] = str(object_id)
        meta._fields["instance_id"] = self._instance_id
        meta._fields.setdefault("transient", not meta.isglobal)
        meta._client = self
        return meta

    def _create_meta_file(self, meta):
        try:
            text = json.dumps(meta._create_form(), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidMetadata("the metadata is not JSON: %s" % e) from None
        return self._create_file(".meta.json", text.encode(), "create %s" % meta.typename)

    def put(self, value, builder=None, persist=False, name=None, **meta):
        """Builds `value` into an object and returns its ObjectID. `builder`: a
        BuilderContext, a {type: fn} dict or one function; `meta`: extra fields of
        the top-level object."""
        ctx = context.as_builder_context(builder)
        if _batch.current(self) is not None:  # a put() inside a builder of ours
            object_id = ctx.run(self, value, **meta)
        else:
            with _batch.Batch(self) as batch:  # one upload for the whole value
                object_id = batch.commit(ctx.run(self, value, **meta))
        if persist:
            self.persist(object_id)
        if name is not None:
            self.put_name(object_id, name)
        return object_id

    # --- reading ---

    def get_meta(self, object_id, sync_remote=False):
        """The object's metadata. `sync_remote` is accepted for Vineyard's signature:
        metadata replicates by itself, an object another node made is listed
        here within milliseconds of its persist."""
        object_id = _id_of(object_id)
        try:
            tree = self._read_json(self._object_path(object_id, "meta.json"))
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise self._error(e, "get %s" % object_id, "no such object") from None
            raise self._error(e, "get %s" % object_id) from None
        return ObjectMeta._from_json(tree, self)

    def get_metas(self, object_ids, sync_remote=False):
        return [self.get_meta(i) for i in object_ids]

    def get_object(self, object_id, sync_remote=False, fetch=False):
        """The Object; fetch=True first copies every payload it reaches from the
        nodes that hold them (opening a payload fetches it)."""
        object_id = _id_of(object_id)
        if local_blob.is_local_blob(self, object_id):
            return local_blob.open_local_blob(self, object_id)  # one open, no meta.json
        meta = self.get_meta(object_id)
        if fetch:
            self._fetch_tree(meta)
        return make_object(self, meta)

    def get_objects(self, object_ids, sync_remote=False, fetch=False):
        return [self.get_object(i, fetch=fetch) for i in object_ids]

    def _fetch_tree(self, meta):
        seen, stack = set(), [meta]
        while stack:
            m = stack.pop()
            if m.id is None or m.id in seen:
                continue
            seen.add(m.id)
            if m.id.is_blob:
                if int(m.get("length", m.nbytes)) and not self._is_local_cached(m):
                    self._map_blob(m.id, 0, fetch_only=True)
                continue
            stack.extend(m.member(name) for name in m.member_names())

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
            raise self._error(e, "is_local %s" % object_id) from None

    def _is_local_cached(self, meta):
        """is_local for a blob's ObjectMeta, remembered on it once true (a payload
        that is here stays here while the object exists)."""
        if getattr(meta, "_local", False) or int(meta.get("length", meta.nbytes)) == 0:
            return True  # (an empty payload is everywhere: nothing to fetch)
        if meta.get("instance_id") == self._instance_id and "is_local" not in vars(self):
            # What the xattr says of an object made on this node, without asking
            # (unless a test replaced is_local to play a remote payload).
            return True
        local = self.is_local(meta.id)
        meta._local = local
        return local

    def _payload_is_here(self, obj):
        """True if `obj` (a blob) or each blob that is a direct member of `obj`
        has its payload on this node. Containers check their members as they
        resolve them, so one remote member makes only that member None."""
        meta = obj.meta
        if obj.is_blob:
            return self._is_local_cached(meta)
        for name in meta.member_names():
            value = meta[name]
            if isinstance(value, ObjectID):
                if value.is_blob and not self.is_local(value):
                    return False
                continue
            value._raise_if_gone(name, meta)  # ObjectNotExists: its owner deleted it
            if value.id.is_blob and not self._is_local_cached(value):
                return False
        return True

    def _open_blob(self, meta, size):
        """A Blob: the payload of `meta` (a local, non-empty blob) mapped."""
        try:
            fd = os.open(self._object_path(meta.id, "data"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise self._error(e, "map %s" % meta.id) from None
        try:
            return Blob(self, meta, fd, size)
        except OSError as e:
            raise self._error(e, "map %s" % meta.id) from None
        finally:
            os.close(fd)

    def _map_blob(self, object_id, size, fetch_only=False):
        path = self._object_path(object_id, "data")
        try:
            if fetch_only:  # opening the data file is what fetches a remote payload
                os.close(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
                return None
            return map_readonly(path, size, object_id, self.mount)
        except OSError as e:
            raise self._error(e, "map %s" % object_id) from None

    def exists(self, object_id):
        try:
            os.lstat(self._object_path(_id_of(object_id)))
            return True
        except FileNotFoundError:
            self._check_connected("exists %s" % object_id)
            return False
        except OSError as e:
            raise self._error(e, "exists %s" % object_id) from None

    def _listed(self, pattern, regex, limit):
        """(id, typename) of the objects whose typename matches, in id order."""
        match = _matcher(pattern, regex)
        found = []
        try:
            names = sorted(os.listdir(self._objects))
        except OSError as e:
            raise self._error(e, "list objects") from None
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
            raise self._error(e, "status") from None

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
            raise self._error(e, "instances") from None
        return dict(sorted(out.items()))


def connect(mount=None):
    """A Client of the vineyardfs mount at `mount` (default: $VINEYARDFS_MOUNT,
    then /vineyard)."""
    if mount is None:
        mount = os.environ.get("VINEYARDFS_MOUNT") or "/vineyard"
    return Client(mount)