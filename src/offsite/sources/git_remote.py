"""Talking to git and to remotes: the ``git`` binary, the URL a source names
(``git+<any git URL>``, ``github://owner/repo``), the environment git runs in (no prompt,
the token through an askpass helper, never in a URL or on a command line), and the small
read-only questions (refs, object counts) the repository source, LFS and mirror ask.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from offsite.errors import BadInput, MalformedURL
from offsite.github import env as github_env
from offsite.sources.process import ErrorFactory, run_tool
from offsite.urls import redact

_GITHUB = re.compile(r"^github://([A-Za-z0-9-]+)/([A-Za-z0-9._-]+?)(?:\.git)?/?$")
# How remotes say a repository is not there (GitHub, a path, git daemon).
MISSING = re.compile(
    r"not found|does not appear to be a git repository|not exported|does not exist", re.I
)


def git_binary() -> str:
    found = shutil.which("git")
    if not found:
        raise BadInput("git not found on PATH: install git")
    return found


def remote_of(url: str) -> str:
    """The URL git fetches from: ``git+`` removed, ``github://owner/repo`` resolved."""
    if url.startswith("git+"):
        remote = url[len("git+") :]
        if not remote:
            raise MalformedURL("git", url, "use git+https://host/owner/repo.git")
        return remote
    m = _GITHUB.match(url)
    if not m:
        raise MalformedURL("github", url, "use github://OWNER/REPO")
    return f"{github_env.server_url()}/{m.group(1)}/{m.group(2)}.git"


def github_name(url: str) -> str | None:
    """``github://owner/repo`` → ``owner/repo``; anything else → None."""
    m = _GITHUB.match(url)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def wiki_remote(remote: str) -> str:
    """Where a repository's wiki lives, the way GitHub, GitLab and Gitea keep it:
    ``…/repo.git`` → ``…/repo.wiki.git``."""
    stem = remote.rstrip("/")
    stem = stem[: -len(".git")] if stem.endswith(".git") else stem
    return f"{stem}.wiki.git"


@contextlib.contextmanager
def git_env(remote: str, workdir: Path, token: str | None = None) -> Iterator[dict[str, str]]:
    """The environment git runs in: never a prompt; for an http(s) remote and a token, an
    askpass helper that answers from ``OFFSITE_GIT_ASKPASS_TOKEN`` (inherited, not on a
    command line); no password ever in the URL."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "LC_ALL": "C"}
    parts = urlsplit(remote)
    token = token or github_env.git_token()
    if parts.password:
        raise BadInput(
            f"{redact(remote)}: put the token in OFFSITE_GIT_TOKEN (or GITHUB_TOKEN), "
            "not in the URL, where it shows in logs and in ps"
        )
    if parts.scheme not in ("http", "https") or not token:
        yield env
        return
    fd, helper = tempfile.mkstemp(prefix="offsite-askpass-", dir=workdir)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            '#!/bin/sh\ncase "$1" in\n  Username*) echo "${OFFSITE_GIT_ASKPASS_USER}" ;;\n'
            '  *) echo "${OFFSITE_GIT_ASKPASS_TOKEN}" ;;\nesac\n'
        )
    os.chmod(helper, stat.S_IRWXU)
    env.update(
        GIT_ASKPASS=helper,
        OFFSITE_GIT_ASKPASS_USER=parts.username or "x-access-token",
        OFFSITE_GIT_ASKPASS_TOKEN=token,
    )
    try:
        yield env
    finally:
        with contextlib.suppress(OSError):
            os.unlink(helper)


def run_git(
    args: list[str], env: dict[str, str], fail: ErrorFactory, cwd: Path | None = None
) -> str:
    argv = [git_binary(), *(["-C", str(cwd)] if cwd else []), *args]
    return run_tool(
        argv, env, fail, secrets=(github_env.git_token(), os.environ.get("OFFSITE_PUSH_TOKEN"))
    )


def object_count(mirror: Path, fail: ErrorFactory) -> int:
    """Objects in the repository, loose and packed."""
    out = run_git(["count-objects", "-v"], {"LC_ALL": "C"}, fail, mirror)
    values = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return int(values.get("count", 0)) + int(values.get("in-pack", 0))


def refs(repo: Path, fail: ErrorFactory) -> list[str]:
    """``git for-each-ref`` lines: object, type and name of every ref."""
    return run_git(["for-each-ref", "--format=%(objectname) %(objecttype) %(refname)"],
                {"LC_ALL": "C"}, fail, repo).splitlines()  # fmt: skip


def cache_folder(cache: Path, remote: str) -> Path:
    """One mirror per remote in the cache, named so a person can tell which."""
    parts = urlsplit(remote)
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", (parts.path or remote).strip("/"))[-60:]
    digest = hashlib.sha256(remote.encode()).hexdigest()[:12]
    return cache / f"{tail}-{digest}.git"
