"""Git repositories: a mirror (``git clone --mirror``, or ``git remote update --prune`` of
a cached one), checked with ``git fsck``, stored as ``git bundle create --all``, which
``git bundle verify`` reads whole before a byte is stored.

URLs: ``git+<any git URL>`` (``git+https://…``, ``git+ssh://…``, ``git+file:///…``) and
``github://owner/repo`` (``$GITHUB_SERVER_URL``, github.com by default). The self-check
reads the whole bundle: ``git bundle verify`` for its header, then the pack's checksum. A token
(``OFFSITE_GIT_TOKEN``, else ``GITHUB_TOKEN``) reaches git through an askpass helper that
reads it from the environment: never in a URL, on a command line or in a log line.

The bundle is staged in the run's work folder (as SQLite's copy is): ``git bundle
verify`` needs a file. With ``--mirror-cache DIR`` the mirror lives on between runs
(``actions/cache`` keeps it), so a run fetches only what is new.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from offsite.errors import BadInput, MalformedURL, RestoreFailed, SourceFailed, TargetNotEmpty
from offsite.names import safe_name
from offsite.pipeline import Pipeline
from offsite.sources.base import Inspection, RestoreOptions, Restorer, Source
from offsite.sources.process import ErrorFactory, run_tool
from offsite.streams import Readable, copy
from offsite.urls import redact

if TYPE_CHECKING:
    from offsite.sources.git_lfs import GitLfsSource

_GITHUB = re.compile(r"^github://([A-Za-z0-9-]+)/([A-Za-z0-9._-]+?)(?:\.git)?/?$")
TOKEN_VARIABLES = ("OFFSITE_GIT_TOKEN", "GITHUB_TOKEN")
# How remotes say a repository is not there (GitHub, a path, git daemon).
_MISSING = re.compile(
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
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    return f"{server}/{m.group(1)}/{m.group(2)}.git"


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


def _token() -> str | None:
    return next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), None)


@contextlib.contextmanager
def git_env(remote: str, workdir: Path, token: str | None = None) -> Iterator[dict[str, str]]:
    """The environment git runs in: never a prompt; for an http(s) remote and a token, an
    askpass helper that answers from ``OFFSITE_GIT_ASKPASS_TOKEN`` (inherited, not on a
    command line); no password ever in the URL."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "LC_ALL": "C"}
    parts = urlsplit(remote)
    token = token or _token()
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
    return run_tool(argv, env, fail, secrets=(_token(), os.environ.get("OFFSITE_PUSH_TOKEN")))


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
    import hashlib

    parts = urlsplit(remote)
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", (parts.path or remote).strip("/"))[-60:]
    digest = hashlib.sha256(remote.encode()).hexdigest()[:12]
    return cache / f"{tail}-{digest}.git"


def pack_problem(bundle: Path) -> str | None:
    """Read the whole bundle: its header, then the pack, whose trailer is the SHA-1 (or
    SHA-256) of every byte before it. ``git bundle verify`` reads only the header and the
    prerequisites: a corrupt or truncated pack passes it."""
    import hashlib

    with open(bundle, "rb") as fh:
        first = fh.readline()
        if first not in (b"# v2 git bundle\n", b"# v3 git bundle\n"):
            return "not a git bundle"
        algorithm = "sha1"
        while True:
            line = fh.readline()
            if not line:
                return "the bundle ends in its header"
            if line == b"\n":
                break
            if line.startswith(b"@object-format=sha256"):
                algorithm = "sha256"
        size = 32 if algorithm == "sha256" else 20
        digest = hashlib.new(algorithm)
        if fh.read(4) != b"PACK":
            return "the bundle holds no pack"
        digest.update(b"PACK")
        tail = b""
        while chunk := fh.read(1 << 20):
            data = tail + chunk
            digest.update(data[:-size])
            tail = data[-size:]
        if len(tail) < size or digest.digest() != tail:
            return "the pack's checksum does not match its content"
    return None


class GitSource(Source):
    kind = "git"
    suffix = ".bundle"
    target_schemes = ("file", "git+", "github")
    target_suffix = ".git"  # a bare repository

    def __init__(self, name: str, url: str) -> None:
        super().__init__(name, url)
        self.remote = remote_of(url)
        self.mirror_cache: Path | None = None
        self.bundle: Path | None = None  # made ahead by ``prepare`` (the parallel pool)
        self.lfs: GitLfsSource | None = None  # --include-lfs: collects from this mirror
        self.optional = False  # a wiki: a remote that is not there is skipped, not a failure

    @classmethod
    def wiki_of(cls, parent: GitSource) -> GitSource:
        """The wiki beside ``parent`` (``--include-wiki``): skipped when there is none."""
        wiki = cls(f"{parent.name}-wiki", "git+" + wiki_remote(parent.remote))
        wiki.mirror_cache = parent.mirror_cache
        wiki.optional = True
        return wiki

    @classmethod
    def default_name(cls, url: str) -> str:
        path = urlsplit(remote_of(url)).path or remote_of(url)
        stem = path.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        stem = stem[: -len(".git")] if stem.endswith(".git") else stem
        return safe_name(stem, cls.kind)

    @property
    def display(self) -> str:
        return redact(self.url)

    def missing_packages(self) -> list[str]:
        return [] if shutil.which("git") else ["git"]

    def check(self) -> None:
        git_binary()

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def prepare(self, workdir: Path) -> None:
        """Fetch, check and bundle (all of it git's work, run beside other repositories');
        what stays for ``stream`` is to read the checked bundle."""
        if self.optional:
            with git_env(self.remote, workdir) as env:
                self.absent = self._missing(env)
            if self.absent:
                return
        mirror = self.update(workdir)
        if self.lfs is not None:
            with git_env(self.remote, workdir) as env:
                self.lfs.collect(mirror, env, workdir)
        self.bundle = self._bundle(mirror, workdir)

    def release(self) -> None:
        if self.bundle is not None:
            with contextlib.suppress(OSError):
                self.bundle.unlink()
            self.bundle = None

    def _bundle(self, mirror: Path, workdir: Path) -> Path:
        bundle = workdir / f"{self.name}.bundle"
        try:
            run_git(["fsck", "--no-progress", "--no-dangling"], {}, self._fail, mirror)
            run_git(["bundle", "create", "--quiet", str(bundle), "--all"], {}, self._fail, mirror)
            run_git(["bundle", "verify", "--quiet", str(bundle)], {}, self._fail, mirror)
            problem = pack_problem(bundle)
            if problem:
                raise self._fail(f"self-check failed: {problem}")
        except BaseException:
            with contextlib.suppress(OSError):
                bundle.unlink()
            raise
        finally:
            if not self.mirror_cache:
                shutil.rmtree(mirror, ignore_errors=True)
        return bundle

    def _missing(self, env: dict[str, str]) -> str | None:
        """Why an optional remote (a wiki) has nothing to back up, or None."""
        try:
            listed = run_git(["ls-remote", "--", self.remote], env, self._fail)
        except SourceFailed as exc:
            if _MISSING.search(exc.message()):
                return "not there"
            raise
        return None if listed.strip() else "empty"

    def update(self, workdir: Path) -> Path:
        """Make the mirror current: fetch into the cached one, or clone a new one. Sets
        ``stats`` (objects, refs, objects fetched). Safe to run on a worker thread."""
        target = (
            cache_folder(self.mirror_cache, self.remote)
            if self.mirror_cache
            else workdir / f"{self.name}.git"
        )
        with git_env(self.remote, workdir) as env:
            cached = (target / "HEAD").exists() and run_git(
                ["config", "--get", "remote.origin.url"], env, self._fail, target
            ).strip() == self.remote
            if cached:
                before = object_count(target, self._fail)
                run_git(["remote", "update", "--prune"], env, self._fail, target)
            else:
                if target.exists():
                    shutil.rmtree(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                before = 0
                run_git(["clone", "--mirror", "--quiet", "--", self.remote, str(target)],
                     env, self._fail)  # fmt: skip
        listed = refs(target, self._fail)
        if not listed:
            raise self._fail("the repository has no branches or tags: nothing to bundle")
        after = object_count(target, self._fail)
        self.stats = {
            "refs": len(listed),
            "objects": after,
            "objects_fetched": after - before,
            "incremental": cached,
        }
        return target

    @contextlib.contextmanager
    def stream(self, pipeline: Pipeline, workdir: Path) -> Iterator[Readable]:
        if self.bundle is None:
            self.prepare(workdir)
        bundle = self.bundle
        if bundle is None:
            raise self._fail(f"the repository is {self.absent or 'not there'}")
        try:
            with open(bundle, "rb") as fh:
                yield fh
        finally:
            with contextlib.suppress(OSError):
                bundle.unlink()
            self.bundle = None

    # -- restoring ---------------------------------------------------------------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        if target.startswith("git+") or target.startswith("github://"):
            return _RemoteRestorer(remote_of(target), options.force)
        return _FolderRestorer(Path(target).expanduser(), options.force)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return f"> {name}.bundle && git clone --mirror {name}.bundle {name}.git"

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        def fail(reason: str) -> RestoreFailed:
            return RestoreFailed(target, reason)

        path = Path(target).expanduser()
        try:
            run_git(["fsck", "--full", "--no-progress", "--no-dangling"], {}, fail, path)
            count = len(refs(path, fail))
        except RestoreFailed as exc:
            return Inspection(problems=[exc.message()], checks=["git fsck --full"])
        problems = []
        if "refs" in stats and count != stats["refs"]:
            problems.append(f"{count} refs restored, the backup had {stats['refs']}")
        return Inspection(problems=problems, checks=["git fsck --full", "refs"])


class _StagedBundle(Restorer):
    """The bundle written to a temporary file, cloned into a bare mirror beside where it
    goes (index-pack checks every object on the way), then ``git fsck``ed."""

    def __init__(self, parent: Path, force: bool) -> None:
        self.force = force
        self._parent = parent
        self._tmp: Path | None = None
        self.mirror: Path | None = None

    def _fail(self, reason: str) -> RestoreFailed:
        return RestoreFailed(self.location, reason)

    def write(self, stream: Readable) -> None:
        self._parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=".offsite-git-", dir=self._parent))
        bundle = self._tmp / "repo.bundle"
        with open(bundle, "wb") as out:
            copy(stream, out.write)
        self.mirror = self._tmp / "repo.git"
        run_git(["clone", "--mirror", "--quiet", str(bundle), str(self.mirror)], {}, self._fail)
        run_git(["remote", "remove", "origin"], {}, self._fail, self.mirror)
        run_git(["fsck", "--no-progress", "--no-dangling"], {}, self._fail, self.mirror)
        bundle.unlink()

    def discard(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class _FolderRestorer(_StagedBundle):
    """Into a folder: a bare repository holding every ref of the bundle."""

    def __init__(self, target: Path, force: bool) -> None:
        if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
            raise TargetNotEmpty(target)
        self.target = target
        self.location = str(target)
        super().__init__(target.parent, force)

    def commit(self) -> None:
        assert self.mirror is not None
        if self.target.exists():
            shutil.rmtree(self.target) if self.target.is_dir() else self.target.unlink()
        os.replace(self.mirror, self.target)
        self.discard()


class _RemoteRestorer(_StagedBundle):
    """Into a remote (the repository was deleted; a new, empty one gets everything back):
    ``git push --mirror`` of every ref; a remote with refs needs ``--force``."""

    def __init__(self, remote: str, force: bool) -> None:
        self.remote = remote
        self.location = redact(remote)
        super().__init__(Path(tempfile.gettempdir()), force)

    def write(self, stream: Readable) -> None:
        assert self._parent is not None
        with tempfile.TemporaryDirectory(prefix="offsite-git-") as scratch:
            with git_env(self.remote, Path(scratch)) as env:
                existing = run_git(["ls-remote", "--", self.remote], env, self._fail)
            if existing.strip() and not self.force:
                raise TargetNotEmpty(self.location)
        super().write(stream)

    def commit(self) -> None:
        assert self.mirror is not None and self._tmp is not None
        with git_env(self.remote, self._tmp) as env:
            run_git(
                ["push", "--mirror", "--quiet", "--", self.remote], env, self._fail, self.mirror
            )
        self.discard()
