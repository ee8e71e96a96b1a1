"""Real repositories for the git source: several branches, annotated and lightweight tags,
notes and a merge, served from bare repositories by path (file://) and by `git daemon` on
a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakegithub import TOKEN, FakeGitHub, FakeMetadata
from tests.servers import free_port

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def commit(work: Path, name: str, text: str) -> None:
    (work / name).write_text(text)
    git("add", name, cwd=work)
    git("commit", "-q", "-m", f"{name}: {text[:20]}", cwd=work)


def make_repo(root: Path, name: str, commits: int = 3, lfs: dict[str, bytes] | None = None) -> Path:
    """A bare repository with main, feature and release branches, a merge, an annotated
    and a lightweight tag, and a note; with ``lfs``, those files (name → content) tracked
    by Git LFS on main, their objects pushed into the bare repository. Returns its path."""
    work = root / f"{name}-work"
    git("init", "-q", "-b", "main", str(work))
    if lfs:
        git("lfs", "install", "--local", cwd=work)
        git("lfs", "track", "*.bin", cwd=work)
        for file, data in lfs.items():
            (work / file).write_bytes(data)
        git("add", ".gitattributes", *lfs, cwd=work)
        git("commit", "-q", "-m", "large files", cwd=work)
    for i in range(commits):
        commit(work, f"file{i}.txt", f"{name} line {i}\n" * (i + 1))
    git("tag", "light-1", cwd=work)
    git("tag", "-a", "v1.0", "-m", "release 1.0", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    commit(work, "feature.txt", "a feature\n")
    git("checkout", "-q", "-b", "release/2", "main", cwd=work)
    commit(work, "release.txt", "release two\n")
    git("checkout", "-q", "main", cwd=work)
    commit(work, "main.txt", "more on main\n")
    git("merge", "-q", "--no-edit", "feature", cwd=work)
    git("notes", "add", "-m", "reviewed by Grace", "HEAD", cwd=work)
    bare = root / f"{name}.git"
    if lfs:  # a push, so that the LFS hook hands over the objects too
        git("init", "-q", "--bare", "-b", "main", str(bare))
        git("push", "-q", "--mirror", f"file://{bare}", cwd=work)
    else:
        git("clone", "-q", "--mirror", str(work), str(bare))
    shutil.rmtree(work)
    return bare


needs_lfs = pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed")


def checkout_with_lfs(bare: Path, work: Path) -> None:
    """A work tree cloned from ``bare`` with LFS's smudge filter: each large file's content
    comes from the LFS objects ``bare`` holds, or the clone fails."""
    lfs = ["-c", "filter.lfs.process=git-lfs filter-process", "-c", "filter.lfs.required=true",
           "-c", "filter.lfs.smudge=git-lfs smudge -- %f", "-c", "filter.lfs.clean=git-lfs clean -- %f"]  # fmt: skip
    done = subprocess.run(["git", *lfs, "clone", "-q", f"file://{bare}", str(work)],
                          env={**os.environ, **GIT_ENV}, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


def refs(repo: Path) -> str:
    return git("for-each-ref", "--format=%(objectname) %(objecttype) %(refname)", cwd=repo)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "remotes", "app")


class GitDaemon:
    def __init__(self, base: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
             f"--port={self.port}", f"--base-path={base}", str(base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    base = tmp_path / "remotes"
    base.mkdir(exist_ok=True)
    server = GitDaemon(base)
    yield server
    server.close()


# -- a fake GitHub with a repository's metadata ------------------------------------------
OWNER = "octo-org"


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A fake GitHub with octo-org/app (git served from a folder by GITHUB_SERVER_URL)."""
    fake = FakeGitHub()
    make_repo(tmp_path / "server" / OWNER, "app", commits=1)
    fake.org_repos[OWNER] = ["app"]
    fake.repo_attrs[f"{OWNER}/app"] = {"clone_url": f"file://{tmp_path}/server/{OWNER}/app.git"}
    fake.metadata[f"{OWNER}/app"] = FakeMetadata(
        issues=5, pulls=3, reviews_per_pull=2, issue_comments=4, review_comments=3,
        releases={"v1.0": {"app-linux.tar.gz": os.urandom(5000)},
                  "v1.1": {"app-linux.tar.gz": os.urandom(6000), "notes.txt": b"fixed\n"}},
        labels=3, milestones=2,
    )  # fmt: skip
    fake.metadata_page = 2  # every list takes several pages
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_SERVER_URL", f"file://{tmp_path}/server")
    yield fake
    fake.close()
