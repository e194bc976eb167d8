"""Exceptions of the vineyardfs client, and the one place that maps errnos to them.

Every operation of the client is a system call on the mount; when one fails, the
errno (and, for a failed seal, the one-line reason the daemon leaves in the
``user.vineyard.error`` xattr of the file in ``new/``) becomes one of the
exceptions below. Each carries ``errno`` and ``path`` for programs that want them.
"""

import errno as _errno
import os


class VineyardError(Exception):
    """Base of every error the client raises. ``errno`` and ``path`` say which
    system call on which file failed (None when no system call was involved)."""

    errno = None
    path = None


class ConnectionFailed(VineyardError, ConnectionError):
    """The mount point is not a running vineyardfs mount (or its daemon died)."""


class ObjectNotExists(VineyardError, LookupError):
    """No object with this id is visible on this node."""


class NameNotExists(ObjectNotExists):
    """No object has this name."""


class InvalidMetadata(VineyardError, ValueError):
    """The metadata was refused: not valid JSON, a reserved field, a member that
    does not exist, a non-global object with members on other nodes, ..."""


class ObjectInUse(VineyardError):
    """The object is still a member of another object (delete that one first)."""


class NotEnoughMemory(VineyardError, MemoryError):
    """The arena is full and nothing can be evicted (the daemon's ENOSPC)."""


class PermissionDenied(VineyardError, PermissionError):
    """Not the owner of the object or name, or the object is immutable."""


class BuildError(VineyardError):
    """A builder plugin of the daemon refused the file (the daemon's EIO on seal)."""


class RemoteError(VineyardError):
    """The payload lives on another node and cannot be read here: ``remote=error``
    (EREMOTE), or its owner is down (EHOSTDOWN)."""


class ObjectExists(VineyardError, FileExistsError):
    """The name or file exists already (EEXIST)."""


# Vineyard's names for the same exceptions, for code written against Vineyard's
# client (``except vineyard.ObjectNotExistsException``).
VineyardException = VineyardError
ConnectionFailedException = ConnectionFailed
ConnectionErrorException = ConnectionFailed
ObjectNotExistsException = ObjectNotExists
ObjectExistsException = ObjectExists
InvalidException = InvalidMetadata
MetaTreeInvalidException = InvalidMetadata
UserInputErrorException = InvalidMetadata
NotEnoughMemoryException = NotEnoughMemory
IOErrorException = BuildError
AssertionFailedException = VineyardError

VINEYARD_NAMES = (
    "VineyardException", "ConnectionFailedException", "ConnectionErrorException",
    "ObjectNotExistsException", "ObjectExistsException", "InvalidException",
    "MetaTreeInvalidException", "UserInputErrorException", "NotEnoughMemoryException",
    "IOErrorException", "AssertionFailedException",
)


_BY_ERRNO = {
    _errno.ENOENT: ObjectNotExists,
    _errno.EINVAL: InvalidMetadata,
    _errno.EFBIG: InvalidMetadata,
    _errno.EBUSY: ObjectInUse,
    _errno.ENOSPC: NotEnoughMemory,
    _errno.EACCES: PermissionDenied,
    _errno.EPERM: PermissionDenied,
    _errno.EIO: BuildError,
    _errno.EREMOTE: RemoteError,
    _errno.EHOSTDOWN: RemoteError,
    _errno.ENOTCONN: ConnectionFailed,
    _errno.EEXIST: ObjectExists,
}


def error_from_os(err, what, reason=None, cls=None):
    """The exception for OSError `err` raised while doing `what` (a phrase such
    as "get o8001000000000001"); `reason` (the daemon's user.vineyard.error)
    replaces the generic strerror text when there is one."""
    code = err.errno
    if cls is None:
        cls = _BY_ERRNO.get(code, VineyardError)
    if code == _errno.ENOTCONN:
        reason = reason or "the vineyardfs daemon is gone (transport endpoint not connected)"
    text = "%s: %s" % (what, reason or os.strerror(code or 0))
    exc = cls(text)
    exc.errno = code
    exc.path = err.filename
    return exc
