"""The ownership rule seen from the client: a container holding another owner's
object gets a precise ObjectNotExists once that owner deleted it, and creating a
persisted container over another user's transient object is PermissionDenied.

Other users are forked children that setuid, so the mount lives in a directory
they can reach (0755)."""

import os
import shutil
import tempfile

import pytest

import vineyardfs
from conftest import Mount

USER = 1001


@pytest.fixture(scope="module")
def shared_mount():
    if os.geteuid() != 0:
        pytest.skip("needs root to play another user")
    root = tempfile.mkdtemp(prefix="vyown.")
    os.chmod(root, 0o755)
    m = Mount(root).start()
    try:
        yield m
    finally:
        m.stop()
        shutil.rmtree(root, ignore_errors=True)


def as_user(fn):
    """Runs fn() in a child as USER; returns what it returned (a short string)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(USER)
            os.setuid(USER)
            out = fn()
        except BaseException as e:  # noqa: B902 - reported to the parent
            out = "!%s: %s" % (type(e).__name__, e)
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def test_deleted_member_of_another_owner_is_object_not_exists(shared_mount):
    client = vineyardfs.connect(shared_mount.path)
    blob = client.put(b"root's bytes")

    def make_pair():
        c = vineyardfs.connect(shared_mount.path)
        return str(c.put((c.get_object(blob), 5)))

    pair = as_user(make_pair)
    assert not pair.startswith("!"), pair
    assert client.get(pair)[0].tobytes() == b"root's bytes"
    client.delete(blob)  # the user's pair does not pin root's blob
    assert not client.exists(blob)
    with pytest.raises(vineyardfs.ObjectNotExists, match="member 'first_' of .* is deleted"):
        client.get(pair)
    with pytest.raises(vineyardfs.ObjectNotExists, match="is deleted"):
        client.get_object(pair).first
    assert client.get_object(pair).second.typename == "vineyard::Scalar<int>"


def test_persisting_another_users_transient_object_is_permission_denied(shared_mount):
    client = vineyardfs.connect(shared_mount.path)
    blob = client.put(b"still transient")

    def make_persisted_pair():
        c = vineyardfs.connect(shared_mount.path)
        try:
            c.put((c.get_object(blob), 5), persist=True)
        except vineyardfs.PermissionDenied as e:
            return "denied: %s" % e
        return "created"

    out = as_user(make_persisted_pair)
    # put(persist=True) is a put, then user.vineyard.persist: setxattr has no channel
    # for the daemon's reason, so the errno is all there is.
    assert out.startswith("denied: ") and "Permission denied" in out, out
    assert not client.get_meta(blob).ispersist
