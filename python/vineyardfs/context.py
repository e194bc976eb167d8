"""Builder and resolver contexts, as in Vineyard's ``vineyard.core``.

A builder turns a Python value into an object: ``builder(client, value, builder,
**meta)`` returns an ObjectID, an ObjectMeta or an Object; `builder` is the
context, for building members (``builder.run(client, item)``). A resolver turns an
Object back into a value: ``resolver(obj, resolver=ctx, **kw)`` (it may take just
``obj``). Builders are chosen by the value's type MRO, resolvers by the longest
typename prefix (``vineyard::Tensor`` serves ``vineyard::Tensor<double>``).

``default_builder_context`` / ``default_resolver_context`` are module-level.
``with builder_context({...})`` / ``with resolver_context({...})`` make a context
that starts as a copy of the current one plus the given entries, make it current
for the block (per thread), and restore the previous one on exit; they nest.
"""

import contextlib
import functools
import inspect
import threading

from . import batch
from .objects import Object, ObjectID, ObjectMeta


@functools.lru_cache(maxsize=1024)
def _signature(fn):
    """(positional count or None for *args, accepts **kw, keyword names)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None, True, frozenset()
    npos, varargs, varkw, names = 0, False, False, set()
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            varargs = True
        elif p.kind == p.VAR_KEYWORD:
            varkw = True
        else:
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                npos += 1
            if p.kind != p.POSITIONAL_ONLY:
                names.add(p.name)
    return (None if varargs else npos), varkw, frozenset(names)


def call_flexibly(fn, args, kw):
    """Calls `fn` with as many of `args` as it takes positionally and the
    entries of `kw` it accepts, so that Vineyard-style callbacks with shorter
    signatures (``resolver(obj)``) work. Returns (result, unused keyword names)."""
    npos, varkw, names = _signature(fn)
    if npos is not None:
        args = args[:npos]
    if varkw:
        return fn(*args, **kw), set()
    given = {k: v for k, v in kw.items() if k in names}
    return fn(*args, **given), set(kw) - set(given)


class _Registry:
    """Callbacks by key, copied from a parent context on creation."""

    def __init__(self, entries=None, parent=None):
        self._callbacks = dict(parent._callbacks) if parent is not None else {}
        if entries:
            for key, fn in _entries(entries):
                self.register(key, fn)

    def register(self, key, fn):
        self._check_key(key)
        if not callable(fn):
            raise TypeError("the callback for %r is not callable" % (key,))
        self._callbacks[key] = fn

    def unregister(self, key):
        self._callbacks.pop(key, None)

    def __contains__(self, key):
        return key in self._callbacks

    def __getitem__(self, key):
        return self._callbacks[key]

    def extend(self, entries=None):
        return type(self)(entries, parent=self)


def type_key(cls):
    """The name a builder can be registered under instead of the type itself:
    ``"<top-level package>:<class name>"`` (``"pandas:DataFrame"``), so that
    builders for optional libraries need not import them."""
    return "%s:%s" % (cls.__module__.partition(".")[0], cls.__name__)


class BuilderContext(_Registry):
    """Builders by Python type, or by type_key(type); see the module comment."""

    @staticmethod
    def _check_key(type_):
        if not isinstance(type_, type) and not (isinstance(type_, str) and ":" in type_):
            raise TypeError("builders are registered for a type or a 'package:Class' key, "
                            "not %r" % (type_,))

    def builder_for(self, value):
        for cls in type(value).__mro__:
            builder = self._callbacks.get(cls) or self._callbacks.get(type_key(cls))
            if builder is not None:
                return builder
        return None

    def run(self, client, value, **meta):
        """Builds `value` and returns the new object's ObjectID."""
        builder = self.builder_for(value)
        if builder is None:
            raise TypeError("no builder for %s" % type(value).__name__)
        return build(builder, client, value, self, meta)


class ResolverContext(_Registry):
    """Resolvers by typename prefix; see the module comment."""

    @staticmethod
    def _check_key(prefix):
        if not isinstance(prefix, str) or not prefix:
            raise TypeError("resolvers are registered for a typename prefix, not %r" % (prefix,))

    def resolver_for(self, typename):
        """The resolver of the longest registered prefix of `typename`."""
        best, best_len = None, -1
        for prefix, resolver in self._callbacks.items():
            if len(prefix) > best_len and typename.startswith(prefix):
                best, best_len = resolver, len(prefix)
        return best

    def run(self, obj, **kw):
        """Resolves `obj` (an Object): its value, None when its payload is on
        another node and fetch=True was not given, or the Object itself when no
        resolver knows its typename."""
        return resolve(self.resolver_for(obj.typename or ""), obj, self, kw)


def build(builder, client, value, members, meta):
    """Runs `builder` on `value`; `members` is the context it builds members with.
    Inside put(), a builder not of this package runs per object (batch.py)."""
    if batch.current(client) is not None and not batch.is_ours(builder):
        with batch.suspended():
            return build(builder, client, value, members, meta)
    result, unused = call_flexibly(builder, (client, value, members), meta)
    if unused:
        raise TypeError("builder %s for %s takes no metadata keywords %s"
                        % (getattr(builder, "__name__", builder), type(value).__name__,
                           sorted(unused)))
    return as_object_id(result, client)


def resolve(resolver, obj, members, kw):
    """Runs `resolver` (None: none known) on `obj`; `members` is the context it
    resolves members with."""
    if not kw.get("fetch", False) and not obj._client._payload_is_here(obj):
        return None
    if resolver is None:
        return obj
    result, _ = call_flexibly(resolver, (obj,), dict(kw, resolver=members))
    return result


def _entries(mapping):
    """(key, callable) pairs of a dict, or of the two-element set the reference
    page writes: ``resolver_context({'vineyard::Tensor', xgboost_resolver})``."""
    if isinstance(mapping, dict):
        return list(mapping.items())
    items = list(mapping)
    if len(items) == 2:
        keys = [x for x in items if not callable(x) or isinstance(x, type)]
        fns = [x for x in items if callable(x) and not isinstance(x, type)]
        if len(keys) == 1 and len(fns) == 1:
            return [(keys[0], fns[0])]
    if all(isinstance(x, tuple) and len(x) == 2 for x in items):
        return items
    raise TypeError("expected a dict of {key: callable}, not %r" % (mapping,))


def as_object_id(result, client):
    """The id a builder's result stands for (an ObjectMeta without an id is
    created first)."""
    if isinstance(result, ObjectID):
        return result
    if isinstance(result, Object):
        return result.id
    if isinstance(result, ObjectMeta):
        if result.id is None:
            return client.create_metadata(result).id
        return result.id
    raise TypeError("a builder returned %r: expected an ObjectID, ObjectMeta or Object"
                    % (result,))


default_builder_context = BuilderContext()
default_resolver_context = ResolverContext()

_current = threading.local()


def get_current_builders():
    stack = getattr(_current, "builders", None)
    return stack[-1] if stack else default_builder_context


def get_current_resolvers():
    stack = getattr(_current, "resolvers", None)
    return stack[-1] if stack else default_resolver_context


@contextlib.contextmanager
def builder_context(builders=None, base=None):
    """``with builder_context({MyType: my_builder}) as ctx:`` ..."""
    ctx = (base or get_current_builders()).extend(builders)
    stack = _current.__dict__.setdefault("builders", [])
    stack.append(ctx)
    try:
        yield ctx
    finally:
        stack.pop()


@contextlib.contextmanager
def resolver_context(resolvers=None, base=None):
    """``with resolver_context({'vineyard::Tensor': my_resolver}) as ctx:`` ..."""
    ctx = (base or get_current_resolvers()).extend(resolvers)
    stack = _current.__dict__.setdefault("resolvers", [])
    stack.append(ctx)
    try:
        yield ctx
    finally:
        stack.pop()


def as_builder_context(builder):
    """A per-call ``builder=``: a context, a {type: fn} dict, or one function (for
    the top-level value; its members are built with the current context)."""
    if builder is None:
        return get_current_builders()
    if isinstance(builder, BuilderContext):
        return builder
    if callable(builder):
        return _OneFunction(lambda client, value, **meta: build(
            builder, client, value, get_current_builders(), meta))
    return get_current_builders().extend(builder)


def as_resolver_context(resolver):
    """A per-call ``resolver=``: a context, a {prefix: fn} dict, or one function
    (for the top-level object; its members are resolved with the current context)."""
    if resolver is None:
        return get_current_resolvers()
    if isinstance(resolver, ResolverContext):
        return resolver
    if callable(resolver):
        return _OneFunction(lambda obj, **kw: resolve(resolver, obj, get_current_resolvers(), kw))
    return get_current_resolvers().extend(resolver)


class _OneFunction:
    """What put()/get() need of a context (``run``), for a single function."""

    def __init__(self, run):
        self.run = run
