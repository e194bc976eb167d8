"""The API code written for Vineyard calls, on a real mount (issue 15): Vineyard's
exception names, Blob's buffer protocol, delete/get_meta/get_object signatures,
clear, memory_trim, register_builtin_types, fork, version, ipc_socket,
connected, ConnectionFailedException on an unmounted or dead mount for every
call; and scipy.sparse matrices as Vineyard's types made of Tensors."""

import errno
import json
import os
import signal

import numpy as np
import pytest
import scipy.sparse as sp

import vineyardfs as vineyard
from vineyardfs.objects import buffer_address



# ---- exceptions ----

def test_vineyards_exception_names_are_caught(client):
    with pytest.raises(vineyard.ObjectNotExistsException):
        client.get_meta("o0001000000fffff0")
    try:
        client.get("o0001000000fffff0")
    except vineyard.ObjectNotExistsException as e:
        assert e.errno == errno.ENOENT
    assert vineyard.ConnectionFailedException is vineyard.ConnectionFailed
    assert issubclass(vineyard.NotEnoughMemoryException, MemoryError)
    assert issubclass(vineyard.ObjectNotExistsException, vineyard.VineyardException)
    assert issubclass(vineyard.InvalidException, ValueError)
    a = client.put(b"x")
    client.put_name(a, "taken")
    pair = client.put((client.get_object(a), client.get_object(a)))
    with pytest.raises(vineyard.ObjectInUse):
        client.delete(a)
    client.delete(pair)


# ---- Blob ----

def test_a_blob_exports_its_mapping_with_the_buffer_protocol(client):
    payload = np.arange(1000, dtype=np.uint32)
    blob = client.get_object(client.put(payload.tobytes()))
    assert isinstance(blob, vineyard.Blob)
    view = memoryview(blob)
    assert view.readonly and view.nbytes == 4000
    assert buffer_address(view) == blob.address != 0
    np.testing.assert_array_equal(np.frombuffer(blob, dtype=np.uint32), payload)
    assert np.frombuffer(blob, dtype=np.uint32).__array_interface__["data"][0] == blob.address
    assert not blob.is_empty and blob.size == 4000 and blob.size() == 4000
    assert bytes(blob.buffer) == payload.tobytes()
    assert blob.signature == int(client.get_meta(blob.id)["signature"])
    assert isinstance(client.get_object(client.put(np.zeros(2))).signature, int)


def test_an_empty_blob_is_an_empty_buffer(client):
    blob = client.get_object(client.put(b""))
    assert blob.is_empty and blob.size == 0 and blob.address == 0
    assert memoryview(blob).nbytes == 0
    assert np.frombuffer(blob, dtype=np.uint8).size == 0


# ---- signatures ----

def test_delete_takes_vineyards_arguments(client):
    a, b = client.put(np.zeros(4)), client.put(np.ones(4))
    pair = client.put((client.get_object(a), client.get_object(b)))
    outer = client.put([client.get_object(pair)])
    with pytest.raises(vineyard.ObjectInUse):
        client.delete(a)
    client.delete(a, force=True)  # deletes the pair and the list that hold it
    for gone in (a, pair, outer):
        assert not client.exists(gone)
    c = client.put(np.zeros(3))
    holder = client.put([client.get_object(c)])
    client.delete(holder, False, False)  # force=False, deep=False: the member stays
    assert client.exists(c)
    assert client.delete(c, memory_trim=True) is None
    assert not client.exists(c)


def test_get_meta_and_get_object_take_vineyards_arguments(client):
    object_id = client.put(np.arange(3.0))
    assert client.get_meta(object_id, sync_remote=True).typename == "vineyard::Tensor<double>"
    obj = client.get_object(object_id, sync_remote=False, fetch=True)
    assert obj.typename == "vineyard::Tensor<double>"
    assert client.get_object(object_id, True).id == object_id
    assert [m.id for m in client.get_metas([object_id], True)] == [object_id]


def test_memory_trim_returns_true(client):
    assert client.memory_trim() is True


def test_fork_version_ipc_socket_connected(client, mount):
    other = client.fork()
    assert isinstance(other, vineyard.Client) and other is not client
    assert other.mount == client.mount and other.instance_id == client.instance_id
    assert client.ipc_socket == mount.path
    assert client.version == vineyard.__version__ == vineyard.version
    assert client.connected
    object_id = other.put(b"forked")
    assert bytes(client.get(object_id)) == b"forked"


def test_register_builtin_types_fills_fresh_contexts(client):
    builders, resolvers = vineyard.BuilderContext(), vineyard.ResolverContext()
    with pytest.raises(TypeError):
        client.put(np.zeros(2), builder=builders)
    vineyard.register_builtin_types(builders, resolvers)
    object_id = client.put(sp.eye(3, format="csr"), builder=builders)
    assert client.get_meta(object_id).typename == "vineyard::CSRMatrix<float64>"
    assert (client.get(object_id, resolver=resolvers) != sp.eye(3)).nnz == 0
    vineyard.register_builtin_types(None, None)  # either may be None


def test_clear_deletes_every_object_of_this_user(fresh_mount):
    fresh_mount.start()
    client = vineyard.connect(fresh_mount.path)
    a = client.put(np.zeros(10))
    client.put((client.get_object(a), "s"), persist=True)
    client.put(b"named", name="n")
    client.put([1, 2, [3, 4]])
    assert os.listdir(os.path.join(fresh_mount.path, "objects"))
    client.clear()
    assert os.listdir(os.path.join(fresh_mount.path, "objects")) == []
    assert client.list_names() == {}


# ---- a gone mount ----

def _every_call(client, object_id):
    return {
        "get": lambda: client.get(object_id),
        "get_object": lambda: client.get_object(object_id),
        "get_meta": lambda: client.get_meta(object_id),
        "get_metas": lambda: client.get_metas([object_id]),
        "put": lambda: client.put(np.zeros(3)),
        "put_bytes": lambda: client.put(b"x"),
        "create_blob": lambda: client.create_blob(8),
        "create_metadata": lambda: client.create_metadata(
            vineyard.ObjectMeta(typename="x", k=1)),
        "delete": lambda: client.delete(object_id),
        "exists": lambda: client.exists(object_id),
        "is_local": lambda: client.is_local(object_id),
        "persist": lambda: client.persist(object_id),
        "list_objects": lambda: client.list_objects(),
        "list_metadatas": lambda: client.list_metadatas(),
        "put_name": lambda: client.put_name(object_id, "n"),
        "get_name": lambda: client.get_name("n"),
        "drop_name": lambda: client.drop_name("n"),
        "list_names": lambda: client.list_names(),
        "status": lambda: client.status,
        "meta": lambda: client.meta,
        "clear": lambda: client.clear(),
        "memory_trim": lambda: client.memory_trim(),
        "fork": lambda: client.fork(),
        "connect": lambda: vineyard.connect(client.mount),
    }


def _all_raise_connection_failed(client, object_id):
    assert not client.connected
    for name, call in _every_call(client, object_id).items():
        with pytest.raises(vineyard.ConnectionFailedException):
            call()
            pytest.fail("%s did not raise" % name)


def test_every_call_on_an_unmounted_mount_is_connection_failed(fresh_mount):
    fresh_mount.start()
    client = vineyard.connect(fresh_mount.path)
    object_id = client.put(np.arange(4.0))
    fresh_mount.stop()  # a clean unmount: an empty directory is left
    assert os.path.isdir(fresh_mount.path) and os.listdir(fresh_mount.path) == []
    _all_raise_connection_failed(client, object_id)


def test_every_call_on_a_dead_daemons_mount_is_connection_failed(fresh_mount):
    fresh_mount.start()
    client = vineyard.connect(fresh_mount.path)
    object_id = client.put(np.arange(4.0))
    os.kill(fresh_mount.proc.pid, signal.SIGKILL)  # our own child
    fresh_mount.proc.wait()
    _all_raise_connection_failed(client, object_id)


def test_a_remount_connects_again(fresh_mount):
    fresh_mount.start()
    client = vineyard.connect(fresh_mount.path)
    object_id = client.put(b"kept", persist=True)
    fresh_mount.stop()
    fresh_mount.start()
    assert client.connected
    assert bytes(client.get(object_id)) == b"kept"


# ---- scipy.sparse ----

@pytest.mark.parametrize("fmt", ["bsr", "coo", "csc", "csr", "dia"])
def test_sparse_matrices_are_vineyard_types_of_tensors(client, mount, fmt):
    rng = np.random.default_rng(3)
    if fmt == "bsr":
        matrix = sp.bsr_matrix(sp.random(8, 6, density=0.4, random_state=1).toarray(),
                               blocksize=(2, 3))
    elif fmt == "dia":
        matrix = sp.dia_matrix((rng.random((2, 5)), [0, 2]), shape=(5, 5))
    else:
        matrix = sp.random(7, 5, density=0.4, format=fmt, random_state=2, dtype=np.float32)
    object_id = client.put(matrix)
    with open(os.path.join(mount.path, "objects", str(object_id), "meta.json")) as f:
        tree = json.load(f)
    stem = {"bsr": "BSRMatrix", "coo": "COOMatrix", "csc": "CSCMatrix", "csr": "CSRMatrix",
            "dia": "DIAMatrix"}[fmt]
    assert tree["typename"] == "vineyard::%s<%s>" % (stem, matrix.dtype.name)
    assert json.loads(tree["shape_"]) == list(matrix.shape)
    assert tree["nnz"] == matrix.nnz and tree["ndim"] == 2
    arrays = {"coo": ["data", "row", "col"], "dia": ["data", "offsets"]}.get(
        fmt, ["data", "indices", "indptr"])
    for name in arrays:
        assert tree[name]["typename"].startswith("vineyard::Tensor<")
        assert "tensor.npy" in os.listdir(os.path.join(mount.path, "objects", tree[name]["id"],
                                                       "views"))
    back = client.get(object_id)
    assert back.format == fmt and back.dtype == matrix.dtype and back.shape == matrix.shape
    np.testing.assert_array_equal(back.toarray(), matrix.toarray())
    assert not back.data.flags.writeable  # mapped, not copied


def test_sparse_arrays_come_back_as_matrices(client):
    if not hasattr(sp, "csr_array"):
        pytest.skip("scipy without sparse arrays")
    array = sp.csr_array(np.eye(3))
    back = client.get(client.put(array))
    assert isinstance(back, sp.csr_matrix)
    np.testing.assert_array_equal(back.toarray(), np.eye(3))
