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
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from offsite.errors import RestoreFailed, SourceFailed, TargetNotEmpty
from offsite.names import safe_name
from offsite.sources import git_delta, git_lfs
from offsite.sources.base import (
    Dump,
    FullNeeded,
    Inspection,
    Part,
    Prepared,
    RestoreOptions,
    RunContext,
    Source,
    SourceOptions,
    stage_folder,
)
from offsite.sources.git_delta import pack_problem
from offsite.sources.git_lfs import GitLfsKind, check_available, collect, lfs_available
from offsite.sources.git_lfs import dump as lfs_dump
from offsite.sources.git_remote import (
    MISSING,
    cache_folder,
    git_binary,
    git_env,
    object_count,
    refs,
    remote_of,
    run_git,
    wiki_remote,
)
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import Readable, copy
from offsite.urls import redact


class GitSource(Source):
    kind = "git"
    suffix = ".bundle"
    diffs = True
    target_schemes = ("file", "git+", "github")
    target_suffix = ".git"  # a bare repository

    def __init__(self, name: str, url: str, options: SourceOptions | None = None) -> None:
        super().__init__(name, url, options)
        self.remote = remote_of(url)

    def wiki(self) -> GitSource:
        """The wiki beside this repository (``--include-wiki``): skipped when there is none."""
        options = SourceOptions(mirror_cache=self.options.mirror_cache, optional=True,
                                incremental=self.options.incremental)  # fmt: skip
        return GitSource(f"{self.name}-wiki", "git+" + wiki_remote(self.remote), options)

    @classmethod
    def default_name(cls, url: str) -> str:
        path = urlsplit(remote_of(url)).path or remote_of(url)
        stem = path.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        stem = stem[: -len(".git")] if stem.endswith(".git") else stem
        return safe_name(stem, cls.kind)

    @property
    def display(self) -> str:
        return redact(self.url)

    @property
    def lfs_name(self) -> str:
        return f"{self.name}-lfs"

    def entry_names(self) -> tuple[str, ...]:
        return (self.name, self.lfs_name) if self.options.lfs else (self.name,)

    def missing_packages(self) -> list[str]:
        missing = [] if shutil.which("git") else ["git"]
        if self.options.lfs and not lfs_available():
            missing.append("git-lfs")
        return missing

    def check(self) -> None:
        git_binary()
        if self.options.lfs:
            check_available()

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def prepare(self, context: RunContext) -> Prepared:
        """Fetch, check and bundle (all of it git's work, run beside other repositories'),
        with ``lfs`` the LFS objects too; what stays for the dump is to read the files."""
        workdir = context.workdir
        if self.options.optional:
            with git_env(self.remote, workdir) as env:
                absent = self._missing(env)
            if absent:
                return Prepared(absent=absent)
        mirror, stats = self.update(workdir)
        made: list[Path] = []
        try:
            parts = []
            if self.options.lfs:
                folder = stage_folder(workdir, self.lfs_name)
                made.append(folder)
                lfs_fail = lambda why: SourceFailed(self.lfs_name, why)  # noqa: E731
                base = context.baseline if self.options.incremental else None
                have = git_lfs.base_objects(base, self.lfs_name)
                with git_env(self.remote, workdir) as env:
                    lfs_stats, oids = collect(mirror, env, folder, lfs_fail, have)
                lfs_delta, lfs_extra = git_lfs.delta(
                    self.options.incremental, base, self.lfs_name, have, lfs_stats, oids
                )
                parts.append(
                    Part(self.lfs_name, GitLfsKind,
                         lambda p: lfs_dump(p, self.lfs_name, folder, lfs_stats, lfs_fail,
                                            lfs_delta, lfs_extra))
                )  # fmt: skip
            if self.options.incremental:
                bundle, extra = self._delta(mirror, workdir, context)
            else:
                bundle, extra = self._bundle(mirror, workdir), {}
            if bundle is not None:
                made.append(bundle)
        except BaseException:
            Prepared(made=tuple(made)).release()
            raise
        finally:
            if not self.options.mirror_cache:
                shutil.rmtree(mirror, ignore_errors=True)
        part = Part(self.name, GitSource, lambda p: _read_bundle(bundle, stats, **extra))
        parts.insert(0, part)
        return Prepared(parts=tuple(parts), made=tuple(made))

    def _delta(self, mirror: Path, workdir: Path, context: RunContext) -> tuple[Path | None, Any]:
        """An incremental repository (SPEC §10): its ref list beside a full bundle, or,
        against the base's list, a bundle of the new objects, the list alone, or nothing.
        The mirror is fsck'ed whole for a diff too: objects a diff holds came in with
        earlier fetches as well, and sat in the mirror cache since."""
        listed = git_delta.ref_list(mirror, self._fail)
        base = context.baseline
        if base is None or self.name not in base.raw_sizes:
            return self._bundle(mirror, workdir), {"delta": "full", "refs": listed}
        before = base.read(self.name, "refs")
        if before == listed:
            return None, {"delta": "unchanged"}
        try:
            old, _, old_head = git_delta.parse(before)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FullNeeded(f"the ref list of {self.name} in set {base.set_id} is not "
                             f"readable ({exc})") from None  # fmt: skip
        now, _, head = git_delta.parse(listed)
        names = list(now) + (["HEAD"] if head else [])  # a detached HEAD's commit too
        shas = set(old.values()) | ({old_head} if old_head else set())
        have = git_delta.known(mirror, shas, self._fail)
        if not git_delta.new_objects(mirror, names, have, self._fail):
            return None, {"delta": "diff", "refs": listed}  # refs moved or gone: the list
        bundle = self._bundle(mirror, workdir, (names, have))
        if bundle.stat().st_size > base.full_when_over * base.raw_sizes[self.name]:
            bundle.unlink()
            share = f"{base.full_when_over:.0%}"
            raise FullNeeded(f"the diff of {self.name} would be over {share} of its base "
                             "(--full-when-over)")  # fmt: skip
        return bundle, {"delta": "diff", "refs": listed}

    def _bundle(
        self, mirror: Path, workdir: Path, against: tuple[list[str], list[str]] | None = None
    ) -> Path:
        """``--all``, or (a diff) the refs ``against`` names without what its commits reach."""
        bundle = workdir / f"{self.name}.bundle"
        try:
            run_git(["fsck", "--no-progress", "--no-dangling"], {}, self._fail, mirror)
            if against is None:
                run_git(["bundle", "create", "--quiet", str(bundle), "--all"], {}, self._fail,
                        mirror)  # fmt: skip
            else:
                git_delta.bundle(mirror, bundle, *against, self._fail)
            run_git(["bundle", "verify", "--quiet", str(bundle)], {}, self._fail, mirror)
            problem = pack_problem(bundle)
            if problem:
                raise self._fail(f"self-check failed: {problem}")
        except BaseException:
            with contextlib.suppress(OSError):
                bundle.unlink()
            raise
        return bundle

    def _missing(self, env: dict[str, str]) -> str | None:
        """Why an optional remote (a wiki) has nothing to back up, or None."""
        try:
            listed = run_git(["ls-remote", "--", self.remote], env, self._fail)
        except SourceFailed as exc:
            if MISSING.search(exc.message()):
                return "not there"
            raise
        return None if listed.strip() else "empty"

    def update(self, workdir: Path) -> tuple[Path, dict[str, Any]]:
        """Make the mirror current: fetch into the cached one, or clone a new one. Returns
        it with its stats (objects, refs, objects fetched). Safe on a worker thread."""
        cache = self.options.mirror_cache
        target = cache_folder(cache, self.remote) if cache else workdir / f"{self.name}.git"
        with git_env(self.remote, workdir) as env:
            cached = (target / "HEAD").exists() and run_git(
                ["config", "--get", "remote.origin.url"], env, self._fail, target
            ).strip() == self.remote
            if cached:
                before = object_count(target, self._fail)
                run_git(["remote", "update", "--prune"], env, self._fail, target)
                # a fetch never moves a mirror's HEAD: follow the remote's default branch
                symref = run_git(["ls-remote", "--symref", "--", self.remote, "HEAD"], env,
                                 self._fail, target)  # fmt: skip
                head = next((line[5:].split("\t")[0] for line in symref.splitlines()
                             if line.startswith("ref: refs/")), None)  # fmt: skip
                if head:
                    run_git(["symbolic-ref", "HEAD", head], env, self._fail, target)
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
        stats = {
            "refs": len(listed),
            "objects": after,
            "objects_fetched": after - before,
            "incremental": cached,
        }
        return target, stats

    def dump(self, pipeline: Pipeline, context: RunContext) -> AbstractContextManager[Dump]:
        """The bundle, fetched now (``prepare`` does it ahead, in the backup's pool)."""
        return self.dump_prepared(pipeline, context)

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


@contextlib.contextmanager
def _read_bundle(
    bundle: Path | None, stats: dict[str, Any], delta: str = "", refs: bytes | None = None
) -> Iterator[Dump]:
    """The bundle as the entry's bytes (none: a diff that is a ref list, or unchanged), the
    ref list an incremental repository keeps beside it."""
    extra: dict[str, bytes] = {"refs": refs} if refs is not None else {}
    if bundle is None:
        yield Dump(stats=lambda: dict(stats), delta=delta, companions=lambda: extra)
        return
    try:
        with open(bundle, "rb") as fh:
            yield Dump(fh, lambda: dict(stats), delta=delta, companions=lambda: extra)
    finally:
        with contextlib.suppress(OSError):
            bundle.unlink()


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

    def overlay(self, stream: Readable | None, companions: dict[str, bytes]) -> None:
        """A diff over the base's repository: its bundle fetched, every ref set to its list."""
        assert self.mirror is not None and self._tmp is not None
        if "refs" not in companions:
            raise self._fail("the diff holds no ref list")
        fetched = None
        if stream is not None:
            fetched = self._tmp / "diff.bundle"
            with open(fetched, "wb") as out:
                copy(stream, out.write)
        git_delta.apply(self.mirror, fetched, companions["refs"], self._fail)
        run_git(["fsck", "--no-progress", "--no-dangling"], {}, self._fail, self.mirror)
        if fetched is not None:
            fetched.unlink()

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
