"""The action harness's fixtures: one real install of offsite per session (the actions'
own install script into a fresh virtual environment), then a runner job per test."""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.actions.harness import ROOT, Job, clean_path

BIN = Path(__file__).parent / "bin"


@pytest.fixture(scope="session")
def action_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``actions/lib/install.sh`` run once, as the first offsite action of a job does."""
    venv = tmp_path_factory.mktemp("runner") / "offsite-venv"
    env = {**os.environ, "PATH": clean_path(), "OFFSITE_VENV": str(venv)}
    env.pop("GITHUB_PATH", None)
    # pip builds the checkout's wheel in its build/ folder: xdist workers take turns
    lock = tmp_path_factory.getbasetemp().parent / "offsite-action-install.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = subprocess.run(
            ["bash", str(ROOT / "actions" / "lib" / "install.sh")],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (venv / "bin" / "offsite").exists()
    yield venv


@pytest.fixture
def job(tmp_path: Path, action_venv: Path) -> Callable[..., Job]:
    """A runner job: this machine's PATH without the project's virtual environment, a
    `gh` stand-in, and the session's install of offsite, which the actions find and skip."""

    def make(**kwargs: object) -> Job:
        env = {
            "PATH": os.pathsep.join([str(BIN), clean_path()]),
            "HOME": os.environ.get("HOME", str(tmp_path)),
            "LANG": "C.UTF-8",
            "TMPDIR": str(tmp_path),
            "OFFSITE_VENV": str(action_venv),
        }
        root = tmp_path / f"job-{len(list(tmp_path.glob('job-*')))}"
        return Job(root=root, env=env, **kwargs)  # type: ignore[arg-type]

    return make
