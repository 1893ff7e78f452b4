"""Packaging, checked in fresh virtual environments built from this repository's own files and nothing else (no
``--system-site-packages``: a test must not depend on how the outer environment was made).

* ``python -m build`` gives an sdist and a wheel, each carrying the default model (under 100 MB);
* the wheel installs into a fresh venv with the pinned CPU torch (``scripts/constraints.txt``), and ``geovec info``
  and ``geovec demo`` run from a folder outside the source tree, without ``geoclip`` (its encoder ships in geovec);
* ``pip install -e .`` works in that venv too;
* ``import geovec`` leaves the hub settings alone, and ``--version`` / ``--help`` do not import torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tests.conftest import REPO

MAX_DIST_MB = 100
CONSTRAINTS = str(REPO / "scripts" / "constraints.txt")
MODEL_FILES = ("geovec/models/weights/geovec-compact/model.safetensors",
               "geovec/models/weights/geovec-compact/config.json",
               "geovec/models/weights/geoclip-location-encoder/model.safetensors",
               "geovec/models/weights/geoclip-location-encoder/LICENSE")


def _run(cmd, **kw):
    # nothing of the outer run leaks in: no PYTHONPATH (it would put this checkout before the venv's install), no
    # geovec settings; the venv gets its own empty geovec cache
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "HF_HUB_OFFLINE", "VIRTUAL_ENV") and not k.startswith("GEOVEC_")}
    env.update(kw.pop("env", {}), OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 300), env=env, **kw)


def _this_checkout() -> dict:
    """The outer run's PYTHONPATH, for the tests that check the code under test in this interpreter."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    pytest.importorskip("build", reason="`python -m build` needs the build package (geovec[dev])")
    out = tmp_path_factory.mktemp("dist")
    r = _run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    wheels, sdists = sorted(out.glob("geovec-*.whl")), sorted(out.glob("geovec-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return wheels[0], sdists[0]


@pytest.fixture(scope="module")
def venv(tmp_path_factory, dists):
    """A fresh venv (no system site packages) with the wheel and its index extra, torch from the pin."""
    root = tmp_path_factory.mktemp("venv") / "v"
    r = _run([sys.executable, "-m", "venv", str(root)])
    assert r.returncode == 0, r.stderr
    # --no-compile: byte-compiling all of torch & co. at install time doubled the install (130 s vs 60 s on two
    # cores); the modules a command imports are compiled on first use instead
    r = _run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", "-c", CONSTRAINTS,
              f"{dists[0]}[index]"], timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    return root


@pytest.mark.slow
def test_build_gives_sdist_and_wheel_with_the_model(dists):
    wheel, sdist = dists
    for dist in dists:
        assert dist.stat().st_size < MAX_DIST_MB * 1e6, f"{dist.name}: {dist.stat().st_size / 1e6:.1f} MB"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(MODEL_FILES) <= names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0 AND MIT" in metadata
    assert not [line for line in metadata.splitlines() if line.startswith("Requires-Dist") and "geoclip" in line]
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {f"src/{f}" for f in MODEL_FILES} <= members


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_info_and_demo(venv, tmp_path):
    from tests.test_demo import _data_root

    py, exe = venv / "bin" / "python", venv / "bin" / "geovec"
    work = tmp_path / "elsewhere"  # outside the source tree: nothing can come from the checkout
    work.mkdir()
    r = _run([str(py), "-c", "import json, sys, importlib.util, geovec, torch; print(json.dumps([geovec.__file__, "
                             "torch.__version__, sys.prefix, importlib.util.find_spec('geoclip') is None]))"], cwd=work)
    assert r.returncode == 0, r.stderr
    where, torch_version, prefix, no_geoclip = json.loads(r.stdout)
    assert where.startswith(str(venv)) and prefix == str(venv)  # the wheel's copy, in the venv
    assert torch_version.startswith("2.13.0") and no_geoclip  # the pinned CPU torch; no side-door package
    r = _run([str(exe), "info", "--format", "json"], cwd=work, env={"GEOVEC_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(r.stdout)
    assert info["dimension"] == 768 and info["model"] == "geovec-compact" and info["parameters"]["location"] > 9e6
    data = _data_root(tmp_path)
    r = _run([str(exe), "demo", "--data-root", str(data), "--db", str(tmp_path / "demo.lancedb")], cwd=work,
             env={"GEOVEC_CACHE": str(tmp_path / "cache")}, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "index: 10 chips (10 embedded now" in r.stdout and "within 30 km of Venlo" in r.stdout


@pytest.mark.slow
def test_pip_install_e_then_geovec_info(venv, tmp_path):
    """``pip install -e .`` in the fresh venv (after the wheel test, which this replaces there): the editable
    install is the one imported, its dependencies resolve under the pin, and ``geovec info`` works."""
    py, exe = venv / "bin" / "python", venv / "bin" / "geovec"
    r = _run([str(py), "-m", "pip", "install", "-q", "--no-compile", "-c", CONSTRAINTS, "-e", str(REPO)],
             timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _run([str(py), "-c", "import geovec, torch, sys; print(geovec.__file__); print(torch.__version__); "
                              "print(sys.prefix)"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where, torch_version, prefix = r.stdout.split()
    assert where.startswith(str(REPO / "src")) and prefix == str(venv)  # the venv's editable install of this repo
    assert torch_version.startswith("2.13.0")  # the constraint kept the CPU pin
    r = _run([str(exe), "--backend", "torch", "info", "--format", "json"], cwd=tmp_path,
             env={"GEOVEC_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["dimension"] == 768


def test_import_geovec_leaves_hub_settings_alone():
    code = ("import os; import geovec; "
            "print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('OMP_WAIT_POLICY'), "
            "os.environ.get('TOKENIZERS_PARALLELISM'))")
    r = _run([sys.executable, "-c", code], env={"OMP_WAIT_POLICY": "ACTIVE", **_this_checkout()})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "ACTIVE", "false"]  # nothing about the hub; the user's own value wins


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["search", "--help"]])
def test_version_and_help_do_not_import_torch(args):
    code = ("import sys\nfrom geovec.cli import main\nsys.argv = ['geovec', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)")
    r = _run([sys.executable, "-c", code, *args], env=_this_checkout())
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == "no torch"
