"""The client's persist and delete: setxattr user.vineyard.persist and rmdir
objects/<id>, with Vineyard's deep and force semantics.

Client (client.py) takes these methods from ClientDeletes.
"""

import errno
import os

from .client_files import _counter, _id_of
from .client_names import _HOLD_PREFIX
from .errors import ConnectionFailed, ObjectNotExists, VineyardError
from .objects import ObjectID


class ClientDeletes:
    """Persist and delete of a Client (a mixin: it uses the Client's _error,
    exists and get_meta)."""

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
