"""Packaging: in a fresh venv, ``pip install -e .`` resolves and ``geovec info`` works, or, without GeoCLIP,
prints the one line that installs it. The venv sees this machine's packages (``--system-site-packages``: torch
is big) and the torch pin (``scripts/constraints.txt``) holds; ``import geovec`` leaves the hub settings alone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

BLOCK_GEOCLIP = textwrap.dedent('''
    import sys
    class _NoGeoclip:  # as if geoclip were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "geoclip" or name.startswith("geoclip."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _NoGeoclip())
''')


def _run(cmd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_HUB_OFFLINE")}
    env.update(kw.pop("env", {}), OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 240), env=env, **kw)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("venv") / "v"
    r = _run([sys.executable, "-m", "venv", "--system-site-packages", str(root)])
    assert r.returncode == 0, r.stderr
    # pip install -e . in it: the dependencies resolve (and are there already: the venv sees this machine's
    # packages); only the build backend (setuptools) is fetched, into pip's isolated build environment
    r = _run([str(root / "bin" / "python"), "-m", "pip", "install", "-q",
              "-c", str(REPO / "scripts" / "constraints.txt"), "-e", str(REPO)])
    assert r.returncode == 0, r.stderr[-3000:]
    return root


def test_pip_install_e_then_geovec_info(venv, tmp_path):
    py, exe = venv / "bin" / "python", venv / "bin" / "geovec"
    r = _run([str(py), "-c", "import geovec, torch, sys; print(geovec.__file__); print(torch.__version__); "
                              "print(sys.prefix)"])
    assert r.returncode == 0, r.stderr
    where, torch_version, prefix = r.stdout.split()
    assert where.startswith(str(REPO / "src")) and prefix == str(venv)  # the venv's editable install of this repo
    assert torch_version.startswith("2.13.0")  # the constraint kept the CPU pin
    r = _run([str(exe), "--backend", "torch", "info", "--format", "json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '"dimension": 768' in r.stdout
    # without GeoCLIP: one line naming the command, exit code 3 (setup)
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(BLOCK_GEOCLIP)
    r = _run([str(exe), "--backend", "torch", "info"], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "block")})
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 3 and len(lines) == 1, r.stderr[-2000:]
    assert lines[0].startswith("error: geovec needs the GeoCLIP location encoder") and \
        "`pip install --no-deps geoclip==1.3.0`" in lines[0]


def test_import_geovec_leaves_hub_settings_alone():
    code = ("import os; import geovec; "
            "print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('OMP_WAIT_POLICY'), "
            "os.environ.get('TOKENIZERS_PARALLELISM'))")
    r = _run([sys.executable, "-c", code], env={"OMP_WAIT_POLICY": "ACTIVE"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "ACTIVE", "false"]  # nothing about the hub; the user's own value wins
