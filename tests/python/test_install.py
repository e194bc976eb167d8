"""`pip install ./python` works offline, and the installed package is the one
imported outside the source tree."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pip_installs_the_package_into_a_venv_without_network(tmp_path, mount):
    venv = tmp_path / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "ensurepip" in r.stderr:
        pytest.fail("python3-venv is missing (tools/setup.sh installs it): " + r.stderr)
    assert r.returncode == 0, r.stderr
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    r = subprocess.run(pip + ["install", os.path.join(ROOT, "python")], capture_output=True,
                       text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    script = ("import vineyardfs, numpy\n"
              "c = vineyardfs.connect()\n"
              "print(vineyardfs.__file__)\n"
              "print(c.get(c.put(numpy.arange(5))).tolist())\n")
    env = dict(os.environ, VINEYARDFS_MOUNT=mount.path)
    env.pop("PYTHONPATH", None)
    r = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True,
                       text=True, timeout=60, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    installed, values = r.stdout.splitlines()
    assert installed.startswith(str(venv)) and "site-packages" in installed
    assert values == "[0, 1, 2, 3, 4]"
