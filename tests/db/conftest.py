"""Throwaway PostgreSQL, MariaDB and Redis servers (one of each per session), fake tools,
and a watcher of ``ps`` (offsite's process tree) for secrets."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import MariaDB, Redis


def _server(cls):  # type: ignore[no-untyped-def]
    try:
        server = cls()
    except FileNotFoundError as exc:
        pytest.skip(f"{exc} is not installed")
    return server


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    server = _server(MariaDB)
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    server = _server(Redis)
    yield server
    server.close()


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Put a shell script named ``name`` first on PATH."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def make(name: str, script: str) -> Path:
        path = folder / name
        path.write_text("#!/bin/sh\n" + script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    return make


def real_tool(name: str) -> str:
    path = shutil.which(name)
    assert path, name
    return path


@dataclass
class Watched:
    code: int
    out: str
    err: str
    ps_samples: int
    tools_seen: set[str] = field(default_factory=set)
    leaks: list[str] = field(default_factory=list)


def _tree(root: int, parents: dict[int, int]) -> set[int]:
    """``root`` and its descendants, from each process's parent."""
    mine = {root}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in mine} - mine
        mine |= more
        grew = bool(more)
    return mine


def _command_lines(root: int) -> list[str]:
    """The command lines of ``root``'s process tree: what another test running beside
    this one (an xdist worker's own servers) starts is not offsite's doing."""
    parents: dict[int, int] = {}
    lines: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                raw = Path(f"/proc/{entry}/cmdline").read_bytes()
                lines[int(entry)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return [lines[pid] for pid in _tree(root, parents) if pid in lines]


def _ps(root: int) -> list[str]:
    """``ps``'s own view of the same tree."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True,
                         text=True).stdout  # fmt: skip
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    parents = {int(r[0]): int(r[1]) for r in rows if len(r) >= 2}
    mine = _tree(root, parents)
    return [r[2] for r in rows if len(r) == 3 and int(r[0]) in mine]


def run_watching_ps(
    source: str, args: list[str], secret: str, tools: tuple[str, ...], env: dict[str, str]
) -> Watched:
    """Run ``offsite backup ARGS`` as a real process, SOURCE given the way the databases guide says
    a URL with a password should be (``OFFSITE_SOURCE``); sample ``ps`` until it ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "offsite", "backup", *args],
        env={**os.environ, **env, "OFFSITE_SOURCE": source},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: set[str] = set()
    leaks: list[str] = []
    samples = 0
    stop = threading.Event()

    def look(lines: list[str]) -> None:
        for line in lines:
            seen.update(t for t in tools if t in line)
            if secret in line:
                leaks.append(line)

    def sample() -> None:
        # ``ps`` itself, and between two of its runs (each takes tens of milliseconds)
        # the command lines it reads from /proc, so a short-lived tool is seen too;
        # offsite's own process tree only.
        nonlocal samples
        while not stop.is_set():
            look(_ps(proc.pid))
            for _ in range(20):
                look(_command_lines(proc.pid))
            samples += 1

    watcher = threading.Thread(target=sample)
    watcher.start()
    out, err = proc.communicate(timeout=300)
    stop.set()
    watcher.join()
    return Watched(proc.returncode, out, err, samples, seen, leaks)


def manifest_of(dest: Path) -> dict:  # type: ignore[type-arg]
    sets = [p for p in dest.iterdir() if p.is_dir()]
    assert len(sets) == 1, sets
    return json.loads((sets[0] / "manifest.json").read_text())
