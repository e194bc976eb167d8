"""The client's names: symlinks in names/ (put_name, get_name, drop_name,
list_names) and the glob/regex matching list_objects shares.

Client (client.py) takes these methods from ClientNames.
"""

import errno
import fnmatch
import os
import re
import time

from .client_files import _counter, _id_of
from .errors import NameNotExists
from .objects import ObjectID

_HOLD_PREFIX = ".vineyardfs-"  # names the client uses internally; hidden from list_names


def _matcher(pattern, regex):
    """A predicate: the whole string matches the glob, or the regex with regex=True."""
    if regex:
        return re.compile(pattern).fullmatch
    return lambda text: fnmatch.fnmatchcase(text, pattern)


class ClientNames:
    """Names of a Client (a mixin: it uses the Client's _error and paths)."""

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
