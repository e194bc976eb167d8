"""vineyardfs: Vineyard's Python API over a vineyardfs mount.

    import vineyardfs
    client = vineyardfs.connect()            # $VINEYARDFS_MOUNT, else /vineyard
    object_id = client.put(numpy.zeros(8))
    array = client.get(object_id)            # zero-copy: mapped from objects/<id>/data

Pure Python (stdlib; numpy optional): every operation is a file, xattr or mmap
call on the mount, so this package doubles as the reference for clients in other
languages. See client.py for the mapping.
"""

from .arrow import register_arrow_types as _register_arrow_types
from .builtins import register_builtins as _register_builtins
from .client import BlobBuilder, Client, InstanceStatus, connect
from .context import (BuilderContext, ResolverContext, builder_context,
                      default_builder_context, default_resolver_context,
                      get_current_builders, get_current_resolvers, resolver_context)
from .errors import (BuildError, ConnectionFailed, InvalidMetadata, NameNotExists,
                     NotEnoughMemory, ObjectInUse, ObjectNotExists, PermissionDenied,
                     RemoteError, VineyardError)
from .objects import Object, ObjectID, ObjectMeta

__version__ = "0.1.0"

_register_builtins()
_register_arrow_types()

__all__ = [
    "BlobBuilder", "BuildError", "BuilderContext", "Client", "ConnectionFailed",
    "InstanceStatus", "InvalidMetadata", "NameNotExists", "NotEnoughMemory", "Object",
    "ObjectID", "ObjectInUse", "ObjectMeta", "ObjectNotExists", "PermissionDenied",
    "RemoteError", "ResolverContext", "VineyardError", "builder_context", "connect",
    "default_builder_context", "default_resolver_context", "get_current_builders",
    "get_current_resolvers", "resolver_context",
]
