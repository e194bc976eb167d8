"""Builder and resolver contexts: default registration, MRO and longest-prefix
selection, per-call builder=/resolver=, nesting, restoring, per-thread scope."""

import threading

import numpy as np
import pytest

import vineyardfs
from vineyardfs import (ObjectMeta, builder_context, default_builder_context,
                        default_resolver_context, get_current_builders, get_current_resolvers,
                        resolver_context)


class Celsius(float):
    pass


class Kelvin(Celsius):
    pass


def celsius_builder(client, value, builder, **meta):
    m = ObjectMeta(**meta)
    m["typename"] = "demo::Temperature<celsius>"
    m["value_"] = float(value)
    return client.create_metadata(m)  # an ObjectMeta: put() returns its id


def temperature_resolver(obj):
    return Celsius(obj.meta["value_"])


def test_builders_are_chosen_by_the_values_type_mro(client):
    default_builder_context.register(Celsius, celsius_builder)
    default_resolver_context.register("demo::Temperature", temperature_resolver)
    try:
        for value in (Celsius(21.5), Kelvin(300.0)):  # Kelvin inherits Celsius's builder
            object_id = client.put(value)
            assert client.get_meta(object_id).typename == "demo::Temperature<celsius>"
            got = client.get(object_id)
            assert type(got) is Celsius and got == float(value)
        # a plain float still takes the float builder
        assert client.get_meta(client.put(21.5)).typename == "vineyard::Scalar<double>"
    finally:
        default_builder_context.unregister(Celsius)
        default_resolver_context.unregister("demo::Temperature")
    assert client.get_meta(client.put(Celsius(1.0))).typename == "vineyard::Scalar<double>"


def test_the_longest_typename_prefix_wins(client):
    object_id = client.put(np.arange(3.0))
    with resolver_context({"vineyard::Tensor<double>": lambda obj: "double tensor",
                           "vineyard::": lambda obj: "anything"}):
        assert client.get(object_id) == "double tensor"
        assert client.get(client.put(np.arange(3))) is not None  # Tensor<int64>: vineyard::Tensor
        assert isinstance(client.get(client.put(np.arange(3))), np.ndarray)
        assert client.get(client.put("s")) == "s"  # vineyard::Scalar beats vineyard::
        assert client.get(client.put(ObjectMeta_of("vineyard::Thing", client))) == "anything"
        # Without a resolver for the typename, get() gives the Object itself.
        plain = client.put(ObjectMeta_of("other::Thing", client))
        assert isinstance(client.get(plain), vineyardfs.Object)


def ObjectMeta_of(typename, client):
    m = ObjectMeta()
    m["typename"] = typename
    return client.create_metadata(m)


def test_builder_context_overrides_nests_and_restores(client):
    def upper(client, value, builder):
        assert builder is get_current_builders()  # the context is handed to the builder
        return default_builder_context.run(client, value.upper())

    def reverse(client, value):
        return client.put(value[::-1], builder=default_builder_context)

    with builder_context({str: upper}) as outer:
        assert get_current_builders() is outer
        assert client.get(client.put("abc")) == "ABC"
        with builder_context({str: reverse}):
            assert client.get(client.put("abc")) == "cba"
        assert client.get(client.put("abc")) == "ABC"
    assert get_current_builders() is default_builder_context
    assert client.get(client.put("abc")) == "abc"


def test_per_call_builder_and_resolver(client):
    object_id = client.put("abc", builder=lambda client, value, builder: client.put(value * 2))
    assert client.get(object_id) == "abcabc"
    ctx = default_builder_context.extend({str: lambda client, value, builder:
                                          client.put(len(value))})
    assert client.get(client.put(("xy", "z"), builder=ctx)) == (2, 1)
    pair = client.put((1, 2))
    assert client.get(pair, resolver=lambda obj: obj.typename) == "vineyard::Pair"
    # a dict resolver extends the current context, so members still resolve
    doubled = client.get(pair, resolver={"vineyard::Scalar": lambda obj: 2 * obj.meta["value_"]})
    assert doubled == (2, 4)
    assert get_current_resolvers() is default_resolver_context


def test_resolvers_may_take_the_context_and_keywords(client):
    seen = {}

    def resolver(obj, resolver, **kw):
        seen.update(kw)
        return resolver.run(obj.member("first_"), **kw)

    pair = client.put(("first", "second"))
    assert client.get(pair, resolver=resolver, flag=1) == "first"
    assert seen == {"fetch": False, "flag": 1}


def test_contexts_are_per_thread(client):
    object_id = client.put("text")
    inside = threading.Event()
    release = threading.Event()
    results = {}

    def other():
        with resolver_context({"vineyard::Scalar": lambda obj: "other thread"}):
            results["other"] = client.get(object_id)
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    try:
        assert inside.wait(10)
        results["main"] = client.get(object_id)  # while the other thread is in its block
    finally:
        release.set()
        t.join()
    assert results == {"other": "other thread", "main": "text"}


def test_builder_errors_are_clear(client):
    empty = vineyardfs.BuilderContext()
    with pytest.raises(TypeError, match="no builder for int"):
        client.put(1, builder=empty)
    with pytest.raises(TypeError, match="returned 'nonsense'"):
        client.put(1, builder=lambda client, value: "nonsense")
    with pytest.raises(TypeError, match="takes no metadata keywords"):
        client.put(1, builder=lambda client, value: client.put(value), note="x")
    with pytest.raises(TypeError):
        default_resolver_context.register("", lambda obj: None)
    with pytest.raises(TypeError):
        default_builder_context.register("str", lambda *a: None)
