"""vineyardfs: Vineyard's Python API over a vineyardfs mount.

    import vineyardfs
    client = vineyardfs.connect()            # $VINEYARDFS_MOUNT, else /vineyard
    object_id = client.put(numpy.zeros(8))
    array = client.get(object_id)            # zero-copy: mapped from objects/<id>/data

Pure Python (stdlib; numpy, pandas and scipy optional): every operation is a
file, xattr or mmap call on the mount, so this package doubles as the reference
for clients in other languages. See client.py for the mapping.
"""

from . import errors as _errors
from .builtins import register_builtin_types
from .blob_builder import BlobBuilder
from .client import Client, InstanceStatus, connect
from .context import (BuilderContext, ResolverContext, builder_context,
                      default_builder_context, default_resolver_context,
                      get_current_builders, get_current_resolvers, resolver_context)
from .errors import (BuildError, ConnectionFailed, InvalidMetadata, NameNotExists,
                     NotEnoughMemory, ObjectExists, ObjectInUse, ObjectNotExists,
                     PermissionDenied, RemoteError, VineyardError)
from .objects import Blob, Object, ObjectID, ObjectMeta

__version__ = "0.2.0"
version = __version__

globals().update({name: getattr(_errors, name) for name in _errors.VINEYARD_NAMES})

register_builtin_types(default_builder_context, default_resolver_context)

__all__ = list(_errors.VINEYARD_NAMES) + [
    "Blob", "ObjectExists", "register_builtin_types", "version",
    "BlobBuilder", "BuildError", "BuilderContext", "Client", "ConnectionFailed",
    "InstanceStatus", "InvalidMetadata", "NameNotExists", "NotEnoughMemory", "Object",
    "ObjectID", "ObjectInUse", "ObjectMeta", "ObjectNotExists", "PermissionDenied",
    "RemoteError", "ResolverContext", "VineyardError", "builder_context", "connect",
    "default_builder_context", "default_resolver_context", "get_current_builders",
    "get_current_resolvers", "resolver_context",
]
