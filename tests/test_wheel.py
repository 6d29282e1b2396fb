"""The built wheel works on its own: installed (not editable) into a fresh virtualenv and run from an unrelated
directory, ``netbuilder arch show MNIST`` finds the archs file shipped as package data.

Offline and fast: the wheel is built without build isolation, and the fresh virtualenv reuses this interpreter's
installed dependencies (torch & co.) through a ``.pth`` file instead of installing them. Deselect with
``-m "not slow"``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What setup.cfg needs to build the wheel; copied so that the build never sees the checkout's build/ folder.
SOURCES = ("netbuilder", "setup.cfg", "pyproject.toml", "README.md")

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(tmp / "dist"), str(src)], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("netbuilder-*.whl")
    return wheel


def _venv_with_wheel(tmp: Path, wheel: Path) -> Path:
    """A virtualenv with the wheel installed and this interpreter's site-packages visible after its own."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).strip())
    # A .pth line only appends the folder to sys.path: .pth files inside it (such as an editable install of
    # netbuilder) are not processed, so the wheel's copy is the only netbuilder the venv can import.
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "_reuse_dependencies.pth").write_text("\n".join(ours) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=tmp)
    return venv


def test_installed_wheel_finds_shipped_archs(tmp_path: Path) -> None:
    pytest.importorskip("pip")
    venv = _venv_with_wheel(tmp_path, _build_wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["OMP_NUM_THREADS"] = "1"
    out = _run([str(venv / "bin" / "netbuilder"), "arch", "show", "MNIST", "-a", "1"], cwd=elsewhere, env=env)
    first = out.splitlines()[0]
    assert first.startswith(str(venv)) and first.split(": arch")[0].endswith("netbuilder/archs/mnist.json")
    assert 'arch 1 "original-c5"' in first
    assert "code: 120 (120x1x1)" in out
    assert "parameters: encoder 160,170, decoder 160,051, total 320,221" in out
