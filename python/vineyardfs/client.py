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
import os
import re
import time

from . import batch as _batch
from . import context
from . import local_blob
from .blob_builder import BlobBuilder
from .errors import (ConnectionFailed, InvalidMetadata, NameNotExists,
                     ObjectNotExists, VineyardError, error_from_os)
from .objects import Blob, Object, ObjectID, ObjectMeta, make_object, map_readonly

_WRITE_CHUNK = 1 << 30
_IOV_MAX = 1024  # Linux's UIO_MAXIOV
_HOLD_PREFIX = ".vineyardfs-"  # names the client uses internally; hidden from list_names
_counter = itertools.count(1)


def _write_all(fd, pieces):
    """Writes the byte buffers `pieces` in order: writev of up to _IOV_MAX at a
    time (one system call for a batch's manifest and all its small blobs)."""
    for at in range(0, len(pieces), _IOV_MAX):
        group = [memoryview(p).cast("B") for p in pieces[at:at + _IOV_MAX]]
        total = sum(v.nbytes for v in group)
        done = os.writev(fd, group) if total <= _WRITE_CHUNK else 0
        if done == total:
            continue
        for view in group:  # a short write (or a huge piece): finish piece by piece
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

    # --- paths and raw files ---

    def _object_path(self, object_id, *rest):
        return os.path.join(self._objects, str(object_id), *rest)

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

    # --- persist, delete ---

    def persist(self, object_id):
        """Makes the object (and its members) visible to every node."""
        object_id = _id_of(object_id)
        try:
            os.setxattr(self._object_path(object_id), "user.vineyard.persist", b"1")
        except OSError as e:
            raise self._error(e, "persist %s" % object_id) from None

    def delete(self, object_ids, force=False, deep=True, memory_trim=False):
        """Deletes objects (Vineyard's argument order). deep=True (the default)
        also deletes members no other object references and no name holds;
        deep=False keeps every member. An object that is still a member of
        another one is ObjectInUse, unless that one is deleted in the same call,
        or force=True, which deletes the objects that hold it first (found by
        reading every object's metadata: a scan). memory_trim=True calls
        memory_trim() afterwards."""
        if isinstance(object_ids, (list, tuple, set)):
            pending = [_id_of(i) for i in object_ids]
        else:
            pending = [_id_of(object_ids)]
        for object_id in pending:
            if not self.exists(object_id):
                raise ObjectNotExists("delete %s: no such object" % object_id)
        if force:
            pending = self._with_holders(pending) + pending
        self._delete_all(pending, deep)
        if memory_trim:
            self.memory_trim()

    def _with_holders(self, ids):
        """The objects that hold any of `ids` as a member, directly or not
        (outermost first), for delete(force=True)."""
        wanted, holders = set(ids), []
        changed = True
        metas = {}
        for entry in self._list_ids():
            try:
                metas[entry] = self.get_meta(entry)
            except ObjectNotExists:
                continue
        while changed:
            changed = False
            for object_id, meta in metas.items():
                if object_id in wanted:
                    continue
                if any(m in wanted for m in meta.member_ids()):
                    wanted.add(object_id)
                    holders.append(object_id)
                    changed = True
        return list(reversed(holders))

    def _list_ids(self):
        try:
            return [ObjectID(e) for e in sorted(os.listdir(self._objects))]
        except OSError as e:
            raise self._error(e, "list objects") from None

    def clear(self):
        """Deletes every object this client may delete (Vineyard's clear): those
        this user owns; objects of other users and nodes' objects it may not
        delete stay."""
        pending = self._list_ids()
        while pending:
            busy = []
            for object_id in pending:
                try:
                    self._delete_one(object_id, True)
                except VineyardError as e:
                    if e.errno == errno.EBUSY:
                        busy.append(object_id)
                    elif isinstance(e, ConnectionFailed):
                        raise
            if len(busy) == len(pending):
                break
            pending = busy

    def memory_trim(self):
        """Vineyard gives freed memory back to the OS here; vineyardfs already does
        it on every delete (a blob is a tmpfs file, unlinked with its object), so
        there is never anything left to trim: True."""
        self._check_connected("memory_trim")
        return True

    def _delete_all(self, pending, deep):
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
            raise self._error(e, "delete %s" % object_id, reason) from None
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
            raise self._error(e, "put_name %s -> %s" % (name, object_id),
                                "no such object" if e.errno == errno.ENOENT else None) from None
        try:
            os.rename(tmp, os.path.join(self._names, name))
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise self._error(e, "put_name %s -> %s" % (name, object_id)) from None

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
                    raise self._error(e, "get_name %s" % name) from None
                if not wait or (deadline is not None and time.monotonic() >= deadline):
                    raise self._error(e, "get_name %s" % name, "no such name",
                                        NameNotExists) from None
            time.sleep(0.01)

    def drop_name(self, name):
        self._check_name(name)
        try:
            os.unlink(os.path.join(self._names, name))
        except OSError as e:
            cls = NameNotExists if e.errno == errno.ENOENT else None
            raise self._error(e, "drop_name %s" % name,
                                "no such name" if cls else None, cls) from None

    def list_names(self, pattern="*", regex=False, limit=5):
        """{name: ObjectID} of the names matching `pattern`, at most `limit`."""
        match = _matcher(pattern, regex)
        out = {}
        try:
            entries = sorted(os.listdir(self._names))
        except OSError as e:
            raise self._error(e, "list names") from None
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
