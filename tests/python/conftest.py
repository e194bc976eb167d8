"""pytest fixtures: a real vineyardfs mount in a temp dir, and a client of it.

The daemon runs in the foreground as our child (so we only ever signal our own
pid) with its own arena and state under the test's temp dir. Teardown always
runs, also after a failure: lazy unmount (fusermount3 -u -z), wait for the
daemon (SIGKILL after 10 s), lazy unmount of the arena tmpfs the daemon mounted
as root.
"""

import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))  # the package from the source tree

import vineyardfs  # noqa: E402

DAEMON = os.environ.get("VINEYARDFS_BIN") or os.path.join(ROOT, "build", "vineyardfs")


def _mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Mount:
    """One daemon: Mount(tmp).start(opts) ... stop()."""

    def __init__(self, tmp):
        self.root = str(tmp)
        self.path = os.path.join(self.root, "mnt")
        self.arena = os.path.join(self.root, "arena")
        self.state = os.path.join(self.root, "state")
        for d in (self.path, self.arena, self.state):
            os.makedirs(d, exist_ok=True)
        self.proc = None

    def start(self, opts=""):
        all_opts = "arena=%s,state=%s" % (self.arena, self.state)
        if "size=" not in opts:
            all_opts += ",size=512M"
        if opts:
            all_opts += "," + opts
        log = open(os.path.join(self.root, "daemon.log"), "ab")
        self.proc = subprocess.Popen([DAEMON, "vineyard", self.path, "-f", "-o", all_opts],
                                     stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(self.path, "status.json")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(os.path.join(self.root, "daemon.log")) as f:
                    pytest.fail("vineyardfs did not mount: " + f.read())
            time.sleep(0.01)
        return self

    def stop(self):
        if _mounted(self.path):
            subprocess.run(["fusermount3", "-u", "-z", self.path], check=False)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        while _mounted(self.arena):
            if subprocess.run(["umount", "-l", self.arena], check=False).returncode != 0:
                break


@pytest.fixture(scope="module")
def mount(tmp_path_factory):
    m = Mount(tmp_path_factory.mktemp("vyfs")).start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def client(mount):
    return vineyardfs.connect(mount.path)


@pytest.fixture
def fresh_mount(tmp_path):
    """A mount of its own, for tests that fill the arena or count objects."""
    m = Mount(tmp_path)
    try:
        yield m
    finally:
        m.stop()
