"""The actions' install (issue 21): ``actions/lib/install.sh`` in a fake job puts offsite,
and nothing else, on the job's PATH, and installs exactly what the lock pins, checked
against its hashes."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.actions.harness import ROOT, clean_path

LOCK = ROOT / "actions" / "lib" / "requirements.txt"


def _install(root: Path, runner: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    runner.mkdir(parents=True, exist_ok=True)
    env = {"PATH": clean_path(), "HOME": os.environ.get("HOME", str(runner)),
           "RUNNER_TEMP": str(runner), "GITHUB_PATH": str(runner / "github_path"),
           "OFFSITE_VENV": str(venv), "LANG": "C.UTF-8"}  # fmt: skip
    return subprocess.run(["bash", str(root / "actions" / "lib" / "install.sh")], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _pins(lock: Path) -> dict[str, set[str]]:
    """The lock's pins that apply here (its markers evaluated for this Python and OS)."""
    from packaging.markers import Marker

    found: dict[str, set[str]] = {}
    for m in re.finditer(
        r"^([A-Za-z0-9_.-]+)==([^\s;]+)(?: ; ([^\\\n]+))?", lock.read_text(), re.M
    ):
        name, version, marker = m.groups()
        if marker is None or Marker(marker.strip()).evaluate():
            found.setdefault(name.lower().replace("_", "-"), set()).add(version)
    return found


def test_only_offsite_goes_on_the_path_and_what_is_installed_is_the_lock(
    action_venv: Path, tmp_path: Path
) -> None:
    done = _install(ROOT, tmp_path / "runner", action_venv)
    assert done.returncode == 0, done.stdout + done.stderr
    (added,) = (tmp_path / "runner" / "github_path").read_text().split()
    assert [p.name for p in Path(added).iterdir()] == ["offsite"]  # no python, pip, jp.py
    version = subprocess.run([str(Path(added) / "offsite"), "--version"], capture_output=True,
                             text=True, env={"PATH": clean_path()})  # fmt: skip
    assert version.returncode == 0 and "offsite" in version.stdout
    frozen = subprocess.run([str(action_venv / "bin" / "python"), "-m", "pip", "freeze",
                             "--all"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    pins = _pins(LOCK)
    installed = {
        name.lower().replace("_", "-"): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", frozen, re.M)
    }
    tools = {"pip", "setuptools", "wheel", "offsite"}  # offsite: the checkout's source
    assert set(installed) - tools == set(pins), "installed exactly the lock's packages"
    for name, got in installed.items():
        if name not in tools:
            assert got in pins[name], f"{name} {got} is not the lock's {pins[name]}"


@pytest.mark.slow
def test_a_lock_whose_hash_does_not_match_installs_nothing(tmp_path: Path) -> None:
    """A package that is not what the lock recorded (a mirror, a compromised release)."""
    root = tmp_path / "checkout"
    shutil.copytree(ROOT / "actions", root / "actions")
    (root / "src").symlink_to(ROOT / "src")
    lock = root / "actions" / "lib" / "requirements.txt"
    text = lock.read_text()
    # every file of the first package (pip needs one of them to match)
    block = re.search(r"^[A-Za-z0-9_.-]+==.*?(?=^[A-Za-z0-9_.-]+==)", text, re.M | re.S)
    assert block is not None and "--hash=sha256:" in block.group(0)
    forged = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, block.group(0))
    lock.write_text(text.replace(block.group(0), forged))
    done = _install(root, tmp_path / "runner", tmp_path / "venv")
    assert done.returncode != 0
    assert "HASH" in (done.stdout + done.stderr).upper()
    assert not (tmp_path / "runner" / "offsite-bin").exists()


@pytest.mark.slow
def test_a_cached_environment_whose_python_moved_is_built_afresh(tmp_path: Path) -> None:
    """The actions' cache restores the environment of an earlier run; its python links
    to the interpreter of then, which a runner image's (or setup-python's) new patch
    release has moved away: it is rebuilt, never a failed backup from then on."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to("/opt/hostedtoolcache/Python/3.12.7/x64/bin/python3")
    lock_hash = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    (venv / ".offsite-stamp").write_text(f"{lock_hash} /opt/gone/python3 3.12.7\n")
    done = _install(ROOT, tmp_path / "runner", venv)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Installing offsite's dependencies" in done.stdout
    assert (venv / "bin" / "python").resolve().exists()
