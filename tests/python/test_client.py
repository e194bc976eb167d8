"""The client's API against a real mount: metadata, blobs, names, persist, delete,
listing, status, and each error case (precise exception, nothing else lost)."""

import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

import vineyardfs
from vineyardfs import ObjectID, ObjectMeta

from conftest import Mount


def new_dir_is_clean(mount):
    return [n for n in os.listdir(os.path.join(mount.path, "new"))] == []


# ---- connect, ids, status ----

def test_connect_uses_the_argument_then_the_environment(mount, monkeypatch, tmp_path):
    monkeypatch.setenv("VINEYARDFS_MOUNT", mount.path)
    assert vineyardfs.connect().mount == mount.path
    assert vineyardfs.connect(mount.path).instance_id == 1
    with pytest.raises(vineyardfs.ConnectionFailed, match="not a vineyardfs mount"):
        vineyardfs.connect(str(tmp_path))


def test_object_ids_print_as_o_and_16_hex_digits():
    oid = ObjectID("o8001000000000abc")
    assert str(oid) == "o8001000000000abc" and repr(oid) == 'ObjectID <"o8001000000000abc">'
    assert oid == ObjectID(int(oid)) and oid == "o8001000000000abc"
    assert oid.is_blob and oid.instance_id == 1
    assert len({oid, ObjectID(int(oid))}) == 1
    for bad in ("o123", "x8001000000000abc", "o8001000000000ABC"):
        with pytest.raises(ValueError):
            ObjectID(bad)


def test_status_reports_the_instance_and_the_arena(client):
    status = client.status
    assert status.instance_id == 1 == client.instance_id
    assert status.memory_limit == 512 << 20
    before = status.memory_usage
    client.put(b"x" * 100000)
    assert client.status.memory_usage >= before + 100000


# ---- metadata ----

def test_create_metadata_and_get_meta(client):
    blob = client.put(b"payload")
    meta = ObjectMeta(note="any JSON value")
    meta["typename"] = "my::Record"
    meta["count"] = 3
    meta["nested"] = {"a": [1, 2]}
    meta.add_member("data_", blob)
    created = client.create_metadata(meta)
    assert created is meta and meta.id is not None and not meta.id.is_blob
    got = client.get_meta(meta.id)
    assert got.typename == "my::Record" and got.id == meta.id
    assert got["note"] == "any JSON value" and got["count"] == 3
    assert got["nested"] == {"a": [1, 2]}
    assert got["data_"].id == blob and got["data_"].typename == "vineyard::Blob"
    assert got.nbytes == 7 and got.instance_id == 1
    assert got.islocal and not got.isglobal and not got.ispersist
    assert got.member_names() == ["data_"]
    obj = client.get_object(meta.id)
    assert obj.data.id == blob and obj.member("data_").id == blob  # members as attributes
    assert bytes(obj.data.buffer) == b"payload"
    with pytest.raises(AttributeError, match="no member or attribute 'missing'"):
        obj.missing
    assert repr(obj) == 'Object <"%s": my::Record>' % meta.id


def test_put_passes_extra_fields_to_the_top_level_object(client):
    object_id = client.put(np.arange(3), note="from put", partition_index=[0, 1])
    meta = client.get_meta(object_id)
    assert meta["note"] == "from put" and meta["partition_index_"] == "[0, 1]"
    with pytest.raises(vineyardfs.InvalidMetadata, match="carries no extra fields"):
        client.put(b"bytes", note="x")


def test_bad_metadata_is_refused_with_the_daemons_reason(client, mount):
    malformed = ObjectMeta(bad_={"id": "not-an-id"})
    malformed["typename"] = "x::Y"
    with pytest.raises(vineyardfs.InvalidMetadata, match="member 'bad_'"):
        client.create_metadata(malformed)
    nested = 1
    for _ in range(70):
        nested = [nested]
    deep = ObjectMeta(deep=nested)
    deep["typename"] = "x::Y"
    with pytest.raises(vineyardfs.InvalidMetadata, match="nest"):
        client.create_metadata(deep)
    missing = ObjectMeta()
    missing["typename"] = "x::Y"
    missing.add_member("m_", ObjectID("o0001ffffffffffff"))
    with pytest.raises(vineyardfs.ObjectNotExists, match="o0001ffffffffffff"):
        client.create_metadata(missing)
    nan = ObjectMeta(value=float("nan"))
    nan["typename"] = "x::Y"
    with pytest.raises(vineyardfs.InvalidMetadata, match="not JSON"):
        client.create_metadata(nan)
    with pytest.raises(vineyardfs.InvalidMetadata, match="no typename"):
        client.create_metadata(ObjectMeta())
    with pytest.raises(vineyardfs.InvalidMetadata):
        ObjectMeta()["a/b"] = 1
    with pytest.raises(vineyardfs.InvalidMetadata, match="create it first"):
        ObjectMeta().add_member("m", ObjectMeta())
    assert new_dir_is_clean(mount)  # failed seals leave nothing behind in new/


def test_unknown_ids_are_object_not_exists(client):
    missing = ObjectID("o0001fffffffffff0")
    for call in (client.get_meta, client.get_object, client.get, client.persist,
                 client.delete, client.is_local):
        with pytest.raises(vineyardfs.ObjectNotExists, match=str(missing)):
            call(missing)
    assert not client.exists(missing)


# ---- blobs ----

def test_create_blob_writes_through_a_mapping_and_seals(client, mount):
    builder = client.create_blob(4096)
    assert builder.id is None and builder.size == 4096 and builder.address != 0
    view = np.frombuffer(builder.buffer, dtype=np.uint32)
    view[:] = np.arange(1024)
    builder.copy(0, b"\xff\xff\xff\xff")
    raw = memoryview(builder.buffer)
    for holder in ("view", "raw"):
        with pytest.raises(vineyardfs.VineyardError, match="still alive"):
            builder.seal(client)  # a view still exports the buffer
        if holder == "view":
            del view
        else:
            raw.release()
    blob = builder.seal(client)
    assert blob.id == builder.id and blob.id.is_blob and blob.size == 4096
    got = np.frombuffer(blob.buffer, dtype=np.uint32)
    assert got[0] == 0xFFFFFFFF and got[1:].tolist() == list(range(1, 1024))
    assert new_dir_is_clean(mount)


def test_blob_builders_shrink_abort_and_work_as_context_managers(client, mount):
    before = set(os.listdir(os.path.join(mount.path, "objects")))
    with client.create_blob(100) as b:
        b.copy(0, b"abc")
        b.shrink(3)
    assert bytes(client.get(b.id)) == b"abc"
    aborted = client.create_blob(10)
    aborted.abort()
    with pytest.raises(RuntimeError):
        with client.create_blob(10):
            raise RuntimeError("abort me")
    after = set(os.listdir(os.path.join(mount.path, "objects")))
    assert after - before == {str(b.id)}
    assert new_dir_is_clean(mount)
    with pytest.raises(ValueError):
        client.create_blob(4).copy(2, b"abc")


# ---- persist, names ----

def test_persist_persists_the_object_and_its_members(client):
    array = client.put(np.arange(4))
    meta = client.get_meta(array)
    assert not meta.ispersist and not meta["buffer_"].ispersist
    client.persist(array)
    meta = client.get_meta(array)
    assert meta.ispersist and meta["buffer_"].ispersist
    assert os.getxattr(os.path.join(client.mount, "objects", str(array)),
                       "user.vineyard.persist") == b"1"
    named = client.put("persisted", persist=True, name="persisted-scalar")
    assert client.get_meta(named).ispersist
    assert client.get(name="persisted-scalar") == "persisted"


def test_global_metadata_is_persisted_from_the_start(client):
    meta = ObjectMeta(global_=True)
    meta["typename"] = "x::Global"
    assert meta.isglobal
    meta = client.get_meta(client.create_metadata(meta).id)
    assert meta.isglobal and meta.ispersist


def test_names_put_get_list_drop(client):
    a, b = client.put(1), client.put(2)
    client.put_name(a, "n-one")
    client.put_name(client.get_object(b), "n-two")
    assert client.get_name("n-one") == a
    assert client.get(name="n-two") == 2
    client.put_name(b, "n-one")  # an existing name moves, as in Vineyard
    assert client.get_name("n-one") == b
    assert client.list_names("n-*", limit=None) == {"n-one": b, "n-two": b}
    assert list(client.list_names("n-t.*", regex=True)) == ["n-two"]
    assert len(client.list_names("n-*", limit=1)) == 1
    client.drop_name("n-one")
    with pytest.raises(vineyardfs.NameNotExists, match="n-one"):
        client.get_name("n-one")
    with pytest.raises(vineyardfs.NameNotExists):
        client.drop_name("n-one")
    with pytest.raises(vineyardfs.ObjectNotExists):
        client.put_name(ObjectID("o0001ffffffffff00"), "n-dangling")
    for bad in ("", "a/b", "..", ".vineyardfs-x"):
        with pytest.raises(ValueError):
            client.put_name(a, bad)
    assert "n-dangling" not in client.list_names("*", limit=None)


def test_get_name_waits_for_a_name_to_appear(client):
    object_id = client.put("late")
    timer = threading.Timer(0.2, client.put_name, (object_id, "n-late"))
    timer.start()
    try:
        assert client.get_name("n-late", wait=True, timeout=10) == object_id
    finally:
        timer.cancel()
    start = time.monotonic()
    with pytest.raises(vineyardfs.NameNotExists):
        client.get_name("n-never", wait=True, timeout=0.1)
    assert time.monotonic() - start < 5


# ---- delete, exists, list ----

def test_delete_deep_and_shallow(client):
    deep = client.put(np.arange(10))
    buffer = client.get_meta(deep)["buffer_"].id
    client.delete(deep)
    assert not client.exists(deep) and not client.exists(buffer)

    shallow = client.put(np.arange(10))
    buffer = client.get_meta(shallow)["buffer_"].id
    client.delete(shallow, deep=False)
    assert not client.exists(shallow) and client.exists(buffer)
    assert client.list_names(".*", limit=None) == {}  # no hold left behind
    client.delete(buffer)


def test_delete_refuses_a_member_in_use_unless_its_owner_goes_too(client):
    pair = client.put((1, 2))
    first = client.get_meta(pair)["first_"].id
    with pytest.raises(vineyardfs.ObjectInUse, match="member of another object"):
        client.delete(first)
    assert client.exists(first)
    client.delete([first, pair])  # any order within one call
    assert not client.exists(first) and not client.exists(pair)


def test_list_objects_by_glob_or_regex_with_a_limit(client):
    ids = [client.put(np.arange(i + 1, dtype=np.int16)) for i in range(3)]
    found = client.list_objects("vineyard::Tensor<int16>", limit=None)
    assert sorted(o.id for o in found) == sorted(ids)
    assert len(client.list_objects("vineyard::Tensor<int1?>", limit=2)) == 2
    metas = client.list_metadatas(r"vineyard::Tensor<int16>|nothing", regex=True, limit=None)
    assert sorted(m.id for m in metas) == sorted(ids)
    assert client.list_objects("no::Such") == []


# ---- the arena, permissions, other processes ----

def test_a_full_arena_is_not_enough_memory_and_loses_nothing(fresh_mount):
    mount = fresh_mount.start("size=16M,durability=none")
    client = vineyardfs.connect(mount.path)
    kept = client.put(np.arange(1000.0))
    with pytest.raises(vineyardfs.NotEnoughMemory, match="put blob"):
        client.put(np.zeros(4 << 20))  # 32 MiB
    with pytest.raises(vineyardfs.NotEnoughMemory):
        client.create_blob(32 << 20).seal()
    assert new_dir_is_clean(mount)
    np.testing.assert_array_equal(client.get(kept), np.arange(1000.0))
    assert client.status["objects"]["total"] == 2  # the tensor and its buffer, nothing else
    # The aborted uploads' pages go back when the daemon handles their RELEASE, which
    # the kernel sends after close() has returned: wait for the space, then go on.
    deadline = time.monotonic() + 10
    while client.status.memory_usage > 8 << 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.status.memory_usage <= 8 << 20, client.status["arena"]
    assert client.get(client.put(b"y" * 1000)) == b"y" * 1000  # and it keeps working


def test_a_dead_daemon_is_connection_failed(fresh_mount):
    mount = fresh_mount.start()
    client = vineyardfs.connect(mount.path)
    object_id = client.put(b"before")
    mount.proc.kill()  # our own child: kill -9 leaves a dead mount behind
    mount.proc.wait()
    with pytest.raises(vineyardfs.ConnectionFailed, match="daemon is gone"):
        client.get(object_id)
    with pytest.raises(vineyardfs.ConnectionFailed):
        vineyardfs.connect(mount.path)


def run_as_nobody(fn):
    """Runs fn() in a child with uid/gid 65534; its return value (a str)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        try:
            os.setgid(65534)
            os.setuid(65534)
            out = fn()
        except BaseException as e:  # report, never fall back into pytest
            out = "%s: %s" % (type(e).__name__, e)
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_users_objects_cannot_be_deleted_or_renamed():
    root = tempfile.mkdtemp(prefix="vyfs-perm-")
    os.chmod(root, 0o755)
    mount = Mount(root)
    try:
        mount.start()
        client = vineyardfs.connect(mount.path)
        mine = client.put(np.arange(3))
        client.put_name(mine, "roots")

        def as_nobody():
            other = vineyardfs.connect(mount.path)
            out = [str(other.get(mine).tolist())]
            for call in (lambda: other.delete(mine), lambda: other.drop_name("roots")):
                try:
                    call()
                    out.append("allowed")
                except vineyardfs.PermissionDenied as e:
                    out.append("denied: " + str(e))
            theirs = other.put("nobody's")
            other.delete(theirs)
            out.append("own object deleted")
            return "\n".join(out)

        out = run_as_nobody(as_nobody).split("\n")
        assert out[0] == "[0, 1, 2]"
        assert out[1].startswith("denied: delete %s" % mine), out
        assert out[2].startswith("denied: drop_name roots"), out
        assert out[3] == "own object deleted", out
        assert client.exists(mine) and client.get_name("roots") == mine
    finally:
        mount.stop()
        if not os.path.ismount(mount.path):
            subprocess.run(["rm", "-rf", root], check=False)


def test_another_process_gets_what_this_one_put(client):
    object_id = client.put(np.arange(1 << 16, dtype=np.float32), persist=True)
    script = (
        "import sys, numpy as np, vineyardfs\n"
        "c = vineyardfs.connect(sys.argv[1])\n"
        "a = c.get(sys.argv[2])\n"
        "print(a.dtype, a.shape, float(a.sum()), a.flags.writeable)\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(vineyardfs.__path__[0]))
    out = subprocess.run([sys.executable, "-c", script, client.mount, str(object_id)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "float32 (65536,) %s False\n" % float(np.arange(1 << 16).sum())


def test_is_local_reads_the_local_xattr(client):
    blob = client.put(b"here")
    assert client.is_local(blob) is True
    assert os.getxattr(os.path.join(client.mount, "objects", str(blob)),
                       "user.vineyard.local") == b"1"
    assert client.get_object(blob).islocal
