"""get()/get_object() of a blob made on this node open its data file and nothing
else (README "Per-object cost"); its meta is read only when asked for, and every
answer is the one the meta.json path gives."""

import json
import os

import pytest

import vineyardfs
from vineyardfs.objects import Blob, EmptyBlob


def requests(client):
    with open(os.path.join(client.mount, "status.json")) as f:
        return json.load(f)["requests"]


def opens_during(client, fn):
    """OPENs that `fn` sent, net of reading status.json (one open per read)."""
    a = requests(client)["open"]
    b = requests(client)["open"]
    fn()
    c = requests(client)["open"]
    return (c - b) - (b - a)


def test_get_of_a_local_blob_is_one_open_and_its_meta_is_still_all_there(client):
    blob = client.put(b"0123456789" * 100)
    client.get(blob)  # warm: entries cached
    assert opens_during(client, lambda: client.get(blob)) == 1  # data only, no meta.json
    obj = client.get_object(blob)
    assert isinstance(obj, Blob) and bytes(obj) == b"0123456789" * 100
    assert obj.id == blob and obj.typename == "vineyard::Blob"
    assert int(obj.size) == 1000 and obj.nbytes == 1000
    full = client.get_meta(blob)
    # Fields only meta.json has are read from it when asked for.
    assert obj.meta["instance_id"] == full["instance_id"] == client.instance_id
    assert dict(obj.meta.items()) == dict(full.items())
    assert bytes(client.get(blob)) == b"0123456789" * 100


def test_an_empty_local_blob_and_a_deleted_one(client):
    empty = client.put(b"")
    obj = client.get_object(empty)
    assert isinstance(obj, EmptyBlob) and int(obj.size) == 0 and bytes(obj) == b""
    gone = client.put(b"x" * 64)
    client.delete(gone)
    with pytest.raises(vineyardfs.ObjectNotExists):
        client.get(gone)
    with pytest.raises(vineyardfs.ObjectNotExists):
        client.get_object(gone)


def test_a_blob_of_another_instance_still_goes_through_meta_json(client, monkeypatch):
    # A test that plays the payload remote (is_local replaced) gets the general path.
    blob = client.put(b"r" * 32)
    monkeypatch.setattr(client, "is_local", lambda object_id: False, raising=False)
    assert client.get(blob) is None
    monkeypatch.undo()
    assert bytes(client.get(blob)) == b"r" * 32
