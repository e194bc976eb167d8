"""Two real vineyardfs daemons forming a cluster (README "A cluster"), through the
Python client: the reference page's two-instance Pair session
(../shared/reference/, "Define Data Types in Python") without the is_local seam
test_reference_page.py uses on one node, replicated metadata, cluster-wide names,
and remote=error.

Each node listens on a port P (PUB) and P+1 (ROUTER) of 127.0.0.1; tests run in
parallel, so the ports are random and probed free by binding, and a daemon that
still loses the race (EADDRINUSE, it exits) is started again on other ports.
Replication is asynchronous (milliseconds): every cross-node check polls, with a
5 s deadline. Teardown always stops both daemons (lazy unmount, wait).
"""

import errno
import os
import random
import socket
import time

import numpy as np
import pytest

import vineyardfs as vineyard
from vineyardfs.errors import NameNotExists, ObjectNotExists, RemoteError, VineyardError

from conftest import Mount

DEADLINE = 5.0  # seconds for anything to replicate


# ---- helpers ----

def _free_ports(count):
    """`count` port numbers P, each with P and P+1 free on 127.0.0.1, and no
    two pairs overlapping (the probe sockets are held until all are chosen)."""
    held, bases = [], []
    try:
        while len(bases) < count:
            base = random.randrange(20000, 60000)
            probes = []
            try:
                for port in (base, base + 1):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    probes.append(s)
                    s.bind(("127.0.0.1", port))
            except OSError:
                for s in probes:
                    s.close()
                continue
            held.extend(probes)
            bases.append(base)
        return bases
    finally:
        for s in held:
            s.close()


def _stop_all(mounts):
    """Stops every mount, even when stopping one of them raises."""
    error = None
    for m in mounts:
        try:
            m.stop()
        except BaseException as e:  # noqa: B902 - keep stopping the others
            error = error or e
    if error is not None:
        raise error


def start_cluster(root, extra=("", "")):
    """Two Mounts under `root` (a path) forming a cluster: node i gets
    instance=i and `extra[i-1]` appended to its options. Returns [m1, m2]; on
    failure every daemon started is stopped."""
    last = None
    for attempt in range(3):
        p1, p2 = _free_ports(2)
        mounts = [Mount(os.path.join(str(root), "n1-%d" % attempt)),
                  Mount(os.path.join(str(root), "n2-%d" % attempt))]
        opts = ["instance=1,listen=%d,peer=%d,heartbeat_ms=50" % (p1, p2),
                "instance=2,listen=%d,peer=%d,heartbeat_ms=50" % (p2, p1)]
        try:
            for m, o, e in zip(mounts, opts, extra):
                m.start(o + ("," + e if e else ""))
            _wait_peers_up(mounts)
            return mounts
        except pytest.fail.Exception as e:  # a port taken meanwhile: other ports
            _stop_all(mounts)
            last = e
        except BaseException:
            _stop_all(mounts)
            raise
    raise last


def _read_json(path):
    import json

    with open(path) as f:
        return json.load(f)


def _wait_peers_up(mounts):
    """Each node lists the other one in instances/<n>.json as "up"."""
    pairs = [(mounts[0], 2), (mounts[1], 1)]

    def up():
        for m, other in pairs:
            try:
                if _read_json(os.path.join(m.path, "instances", "%d.json" % other)).get(
                        "status") != "up":
                    return False
            except (OSError, ValueError):
                return False
        return True

    wait_for(up, "the two nodes to see each other up")


def wait_for(predicate, what, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.005)


def wait_exists(client, object_id):
    wait_for(lambda: client.exists(object_id),
             "%s to appear on instance %d" % (object_id, client.instance_id))


def name_gone(client, name):
    try:
        client.get_name(name)
        return False
    except NameNotExists:
        return True


def tree(meta):
    """An ObjectMeta as plain JSON values (members expanded), for comparison."""
    import json

    return json.loads(meta.to_json())


# ---- the module's cluster ----

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    mounts = start_cluster(tmp_path_factory.mktemp("vyfs-cluster"))
    try:
        yield mounts
    finally:
        _stop_all(mounts)


@pytest.fixture
def client1(cluster):
    return vineyard.connect(cluster[0].path)


@pytest.fixture
def client2(cluster):
    return vineyard.connect(cluster[1].path)


def test_the_two_clients_are_two_instances(client1, client2):
    assert (client1.instance_id, client2.instance_id) == (1, 2)
    assert client1.status.instance_id == 1 and client2.status.instance_id == 2
    peers = client1.status["cluster"]["peers"]
    assert [(p["instance"], p["status"]) for p in peers] == [(2, "up")]
    # client.meta: every instance this node knows, from instances/<n>.json.
    meta = client2.meta
    assert sorted(meta) == [1, 2]
    assert meta[2]["self"] and not meta[1]["self"]
    assert meta[1]["status"] == "up" and meta[1]["replication_lag"] == 0
    assert meta[1]["endpoint"].startswith("tcp://127.0.0.1:")


# ---- the reference page's two-instance session ----

def test_pair_of_arrays_session_on_two_instances(client1, client2, capsys):
    # build the first array in the first vineyard instance
    id1 = client1.put(np.zeros(8))
    # persist the object to make it visible to form the global object
    client1.persist(id1)

    # build the second array in the second vineyard instance
    id2 = client2.put(np.ones(4))
    # persist the object to make it visible to form the global object
    client2.persist(id2)

    assert id1.instance_id == 1 and id2.instance_id == 2
    # (Replication is asynchronous: node 1 must list id2 before a Pair can name it.)
    wait_exists(client1, id2)

    # build the pair from client1
    obj1 = client1.get_object(id1)
    obj2 = client2.get_object(id2)
    id_pair = client1.put((obj1, obj2))
    meta = client1.get_meta(id_pair)
    assert meta.typename == "vineyard::Pair"
    # A member made on another node: the builder made the Pair global, hence persisted.
    assert meta.isglobal and meta.ispersist
    assert meta.member("first_").id == id1 and meta.member("second_").id == id2

    # get the pair object from client2
    wait_exists(client2, id_pair)
    obj_pair = client2.get_object(id_pair)
    print(obj_pair.first.typename, obj_pair.first.size(), obj_pair.second.size())
    # The page prints `vineyard::Array 8 4`: np.ndarray is built as a Tensor here.
    assert capsys.readouterr().out == "vineyard::Tensor<double> 8 4\n"

    first_blob = obj_pair.first.member("buffer_").id
    second_blob = obj_pair.second.member("buffer_").id
    assert first_blob.instance_id == 1 and second_blob.instance_id == 2
    assert not client2.is_local(first_blob)
    assert client2.is_local(second_blob)

    # get the pair value from client2
    value_pair = client2.get(id_pair)
    print(value_pair)
    # The page shows `(None, [1, 1, 1, 1])`: the first payload is on instance 1.
    assert capsys.readouterr().out == "(None, array([1., 1., 1., 1.]))\n"
    assert isinstance(value_pair, tuple) and len(value_pair) == 2
    assert value_pair[0] is None
    assert isinstance(value_pair[1], np.ndarray)
    np.testing.assert_array_equal(value_pair[1], np.ones(4))
    assert not client2.is_local(first_blob)  # get() without fetch fetched nothing

    # The mirror image on instance 1: the second payload is the remote one.
    value_pair = client1.get(id_pair)
    assert value_pair[1] is None
    np.testing.assert_array_equal(value_pair[0], np.zeros(8))
    assert not client1.is_local(second_blob)

    # fetch=True asks for the payload wherever it is.
    value_pair = client2.get(id_pair, fetch=True)
    print(value_pair)
    assert capsys.readouterr().out == (
        "(array([0., 0., 0., 0., 0., 0., 0., 0.]), array([1., 1., 1., 1.]))\n")
    np.testing.assert_array_equal(value_pair[0], np.zeros(8))
    np.testing.assert_array_equal(value_pair[1], np.ones(4))
    assert value_pair[0].dtype == np.float64 and value_pair[0].shape == (8,)

    # The fetched payload is cached on instance 2: local from now on, so a plain get
    # returns both values.
    assert client2.is_local(first_blob)
    assert client2.get_object(first_blob).islocal
    value_pair = client2.get(id_pair)
    np.testing.assert_array_equal(value_pair[0], np.zeros(8))
    np.testing.assert_array_equal(value_pair[1], np.ones(4))
    assert bytes(client2.get_object(first_blob).buffer) == np.zeros(8).tobytes()
    # Instance 1 is unaffected by instance 2's fetch.
    assert not client1.is_local(second_blob)
    assert client1.get(id_pair)[1] is None


# ---- replicated metadata ----

def test_persisted_metadata_is_the_same_on_both_nodes(client1, client2, cluster):
    object_id = client1.put(np.arange(12, dtype=np.int32).reshape(3, 4), persist=True,
                            note="replicated")
    wait_exists(client2, object_id)
    meta1, meta2 = client1.get_meta(object_id), client2.get_meta(object_id)
    assert tree(meta1) == tree(meta2)
    assert meta2.id == object_id and meta2.instance_id == 1
    assert meta2.typename == "vineyard::Tensor<int>" and meta2["note"] == "replicated"
    assert meta2.ispersist and not meta2.isglobal
    # The file itself, byte for byte.
    files = [open(os.path.join(m.path, "objects", str(object_id), "meta.json"), "rb").read()
             for m in cluster]
    assert files[0] == files[1]
    # And the other way round.
    other = client2.put("from two", persist=True)
    wait_exists(client1, other)
    assert tree(client1.get_meta(other)) == tree(client2.get_meta(other))
    assert client1.get(other) == "from two"  # a scalar has no payload to fetch


def test_a_transient_object_stays_on_its_node_until_persisted(client1, client2):
    transient = client1.put(np.arange(5.0))
    assert not client1.get_meta(transient).ispersist
    # A barrier: updates from a node arrive in order, so once a later persisted
    # object is on node 2, anything published before it would be there too.
    barrier = client1.put(b"barrier", persist=True)
    wait_exists(client2, barrier)
    assert client1.exists(transient)
    assert not client2.exists(transient)
    with pytest.raises(ObjectNotExists):
        client2.get_meta(transient)
    with pytest.raises(ObjectNotExists):
        client2.get(transient)
    assert str(transient) not in os.listdir(os.path.join(client2.mount, "objects"))

    client1.persist(transient)
    wait_exists(client2, transient)
    assert tree(client1.get_meta(transient)) == tree(client2.get_meta(transient))
    assert client2.get_meta(transient).ispersist
    np.testing.assert_array_equal(client2.get(transient, fetch=True), np.arange(5.0))


# ---- cluster-wide names ----

def test_names_are_cluster_wide(client1, client2):
    value_id = client1.put("named value", persist=True, name="cluster-name")
    assert client1.get_name("cluster-name") == value_id
    assert client2.get_name("cluster-name", wait=True, timeout=DEADLINE) == value_id
    assert client2.get(name="cluster-name") == "named value"
    assert client2.list_names("cluster-*") == {"cluster-name": value_id}

    # Moving the name on node 2 (to node 2's object) is seen on node 1.
    other_id = client2.put("other value", persist=True)
    client2.put_name(other_id, "cluster-name")
    wait_for(lambda: client1.get_name("cluster-name") == other_id,
             "the moved name on instance 1")
    assert client1.get(name="cluster-name") == "other value"

    # drop_name on node 1 propagates.
    client1.drop_name("cluster-name")
    with pytest.raises(NameNotExists):
        client1.get_name("cluster-name")
    wait_for(lambda: name_gone(client2, "cluster-name"), "the drop on instance 2")
    assert "cluster-name" not in client2.list_names(limit=None)
    # The objects stay.
    assert client2.exists(value_id) and client1.exists(other_id)


def test_a_name_on_a_transient_object_stays_on_its_node(client1, client2):
    transient = client1.put("local only")
    client1.put_name(transient, "transient-name")
    client1.put(b"barrier", persist=True, name="barrier-name")
    client2.get_name("barrier-name", wait=True, timeout=DEADLINE)
    with pytest.raises(NameNotExists):
        client2.get_name("transient-name")
    assert client1.get_name("transient-name") == transient


# ---- remote=error ----

def test_remote_error_refuses_to_fetch_and_nothing_else_breaks(tmp_path):
    mounts = start_cluster(tmp_path, extra=("", "remote=error"))
    try:
        client1 = vineyard.connect(mounts[0].path)
        client2 = vineyard.connect(mounts[1].path)
        assert client2.status["options"]["remote"] == "error"

        remote_id = client1.put(np.arange(6.0), persist=True)
        wait_exists(client2, remote_id)
        blob = client2.get_meta(remote_id).member("buffer_").id
        assert not client2.is_local(blob)

        # Without fetch: None, as on a fetching node.
        assert client2.get(remote_id) is None
        # With fetch: the daemon refuses with EREMOTE, the client raises RemoteError.
        with pytest.raises(RemoteError) as info:
            client2.get(remote_id, fetch=True)
        assert isinstance(info.value, VineyardError)
        assert info.value.errno == errno.EREMOTE
        assert info.value.path.endswith("/objects/%s/data" % blob)
        # The same through the file: EREMOTE, not a partial or empty read.
        with pytest.raises(OSError) as raw:
            with open(os.path.join(client2.mount, "objects", str(blob), "data"), "rb") as f:
                f.read()
        assert raw.value.errno == errno.EREMOTE
        # Asking again changes nothing, and nothing was cached.
        with pytest.raises(RemoteError):
            client2.get(remote_id, fetch=True)
        assert not client2.is_local(blob)

        # Nothing else broke: metadata and names still replicate and read on node 2,
        # node 2's own objects work, and node 1 (remote=fetch) still fetches from node 2.
        meta = client2.get_meta(remote_id)
        assert tree(meta) == tree(client1.get_meta(remote_id))
        client1.put_name(remote_id, "remote-array")
        assert client2.get_name("remote-array", wait=True, timeout=DEADLINE) == remote_id
        assert client2.get(name="remote-array") is None

        local_id = client2.put(np.arange(4.0) * 2, persist=True)
        np.testing.assert_array_equal(client2.get(local_id), np.arange(4.0) * 2)
        wait_exists(client1, local_id)
        assert client1.get(local_id) is None
        np.testing.assert_array_equal(client1.get(local_id, fetch=True), np.arange(4.0) * 2)
        assert client1.is_local(client1.get_meta(local_id).member("buffer_").id)

        np.testing.assert_array_equal(client1.get(remote_id), np.arange(6.0))
        assert client2.status.instance_id == 2
        assert [p["status"] for p in client2.status["cluster"]["peers"]] == ["up"]
    finally:
        _stop_all(mounts)
