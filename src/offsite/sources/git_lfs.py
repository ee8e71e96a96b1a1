"""A repository's Git LFS objects (``--include-lfs``), the second entry beside its bundle:
``git lfs fetch --all`` into the mirror, then every object that any ref points at, as a POSIX
tar laid out as a repository keeps them (``lfs/objects/ab/cd/<oid>``), so that
``tar -x -C app.git`` puts them back into a restored repository.

An object's name is the SHA-256 of its content: each one is checked on the way into the
archive and again on the way back out. A pointer whose object the server lacks fails the
backup (an archive missing it would restore a repository that cannot check that file out).

An incremental repository's LFS entry keeps the ids of its objects as its index (SPEC
§10); a diff holds only the objects its base lacks, and a restore extracts both into one
folder (objects no ref points at any more stay there: git ignores them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from offsite.errors import ArchiveUnreadable, BadInput, RestoreFailed, UnsafeMember
from offsite.sources.base import (
    Baseline,
    Dump,
    FullNeeded,
    Inspection,
    Kind,
    RestoreOptions,
    tar_dump,
)
from offsite.sources.git_remote import run_git
from offsite.sources.process import ErrorFactory
from offsite.sources.restorer import FolderStagingRestorer, Restorer, make_parents
from offsite.stream.digest import file_sha256
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CHUNK, HashingReader, Readable
from offsite.stream.safetar import member_path, shown

OID = re.compile(r"^[0-9a-f]{64}$")


def lfs_available() -> bool:
    return shutil.which("git-lfs") is not None


def object_path(root: Path, oid: str) -> Path:
    return root / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def check_available() -> None:
    if not lfs_available():
        raise BadInput("--include-lfs needs git-lfs: install it (Debian: apt install git-lfs)")


def collect(
    mirror: Path, env: dict[str, str], folder: Path, fail: ErrorFactory,
    have: frozenset[str] | None = None,
) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """Fetch every LFS object any ref of ``mirror`` points at and stage in ``folder`` those
    not in ``have`` (a base's, SPEC §10; hard links where the file system allows); return
    the entry's stats and every object's id."""
    run_git(["lfs", "fetch", "--all", "origin"], env, fail, mirror)
    listed = run_git(["lfs", "ls-files", "--all", "--long"], env, fail, mirror)
    oids = sorted({line.split()[0] for line in listed.splitlines() if line.strip()})
    size = staged = 0
    for oid in oids:
        if not OID.match(oid):
            raise fail(f"git lfs listed {oid!r}, which is not an object id")
        source = object_path(mirror, oid)
        if not source.is_file():
            raise fail(f"the server holds no LFS object {oid}")
        size += source.stat().st_size
        if have is not None and oid in have:
            continue
        target = object_path(folder, oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        staged += target.stat().st_size
    stats = {"objects": len(oids), "bytes": size}
    if have is not None:
        stats.update(new_objects=len(set(oids) - have), new_bytes=staged)
    return stats, oids


def base_objects(base: Baseline | None, name: str) -> frozenset[str] | None:
    """The LFS objects of entry ``name`` in an incremental run's base; None: no base."""
    return base.load(name, read_index) if base is not None else None


def delta(
    incremental: bool, base: Baseline | None, name: str, have: frozenset[str] | None,
    stats: dict[str, Any], oids: list[str],
) -> tuple[str, dict[str, bytes]]:  # fmt: skip
    """An incremental LFS entry: full with its index, a diff of the objects its base
    lacks, or unchanged (none); an entry of another source: neither."""
    if not incremental:
        return "", {}
    if base is None or have is None:
        return "full", {"index": "".join(f"{o}\n" for o in oids).encode()}
    if not stats["new_objects"]:
        return "unchanged", {}
    if stats["new_bytes"] > base.full_when_over * base.raw_sizes[name]:
        share = f"{base.full_when_over:.0%}"
        raise FullNeeded(f"the diff of {name} would be over {share} of its base "
                         "(--full-when-over)")  # fmt: skip
    return "diff", {}


def read_index(data: bytes) -> frozenset[str]:
    """A base's LFS index (one object id a line); ValueError where a line is not one."""
    oids = data.decode("ascii").split()
    if not all(OID.match(o) for o in oids):
        raise ValueError("a line that is not an LFS object id")
    return frozenset(oids)


def dump(
    pipeline: Pipeline, name: str, folder: Path, stats: dict[str, Any], fail: ErrorFactory,
    delta: str = "", companions: dict[str, bytes] | None = None,
) -> AbstractContextManager[Dump]:  # fmt: skip
    """The staged objects as a tar, each checked against its id on the way in (none at
    all: an incremental entry with no object its base lacks, ``unchanged``)."""

    def write_tar(dst: BinaryIO) -> None:
        with tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted((folder / "lfs" / "objects").rglob("*")):
                if not path.is_file():
                    continue
                info = tar.gettarinfo(str(path), path.relative_to(folder).as_posix())
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, "", ""
                with open(path, "rb") as fh:
                    digest = HashingReader(fh)
                    tar.addfile(info, digest)
                if digest.hexdigest() != path.name:
                    raise fail(f"LFS object {path.name} does not match its id")

    if delta == "unchanged":
        return contextlib.nullcontext(Dump(stats=lambda: dict(stats), delta=delta))
    extra = dict(companions or {})
    return tar_dump(pipeline, name, write_tar, lambda: dict(stats), delta, lambda: extra)


class GitLfsKind(Kind):
    """An entry of a repository's LFS objects. Made by the repository's source (one fetch
    serves both entries); restored into a repository folder."""

    kind = "git-lfs"
    suffix = ".tar"

    # -- restoring ---------------------------------------------------------------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        if "://" in target and not target.startswith("file://"):
            raise BadInput(
                "LFS objects restore into a repository folder (restore the bundle there "
                "first); then `git lfs push --all URL` from it"
            )
        return LfsRestorer(Path(cls.local_target(target)).expanduser())

    @classmethod
    def hint_tail(cls, name: str) -> str:
        repo = name[: -len("-lfs")] if name.endswith("-lfs") else name
        return f"| tar -xf - -C {repo}.git"

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        root = _objects_root(Path(cls.local_target(target)).expanduser())
        found = bad = 0
        for path in (root / "lfs" / "objects").rglob("*"):
            if path.is_file() and OID.match(path.name):
                found += 1
                bad += file_sha256(str(path))[0] != path.name
        problems = [f"{bad} LFS objects do not match their ids"] if bad else []
        if "objects" in stats and found < stats["objects"]:
            problems.append(f"{found} LFS objects restored, the backup had {stats['objects']}")
        return Inspection(problems=problems, checks=["LFS objects' SHA-256"])


def _objects_root(target: Path) -> Path:
    """Where ``lfs/objects`` goes: a bare repository itself, a work tree's ``.git``, or a
    plain folder."""
    return target / ".git" if (target / ".git").is_dir() else target


class LfsRestorer(FolderStagingRestorer):
    """Adds the archive's objects to ``lfs/objects`` of a repository (or a folder): each
    one checked against its id while staged, then moved in. Objects are named by their
    content, so one already there is the same object: nothing a user has is replaced."""

    def _fail(self, reason: str) -> RestoreFailed:
        return RestoreFailed(self.location, reason)

    def _no_links(self, *paths: Path) -> None:
        """Refuse to write through a symlink where objects go (one a restored folder of the
        same set could have put there)."""
        for path in paths:
            if path.is_symlink():
                raise RestoreFailed(self.location, f"{path} is a symlink: not writing through it")

    def write(self, stream: Readable) -> None:
        self._no_links(self.target / ".git")
        root = _objects_root(self.target)
        self._no_links(root / "lfs", root / "lfs" / "objects")
        self._created = make_parents(root / "lfs" / "objects" / "x")
        self._staged = Path(tempfile.mkdtemp(prefix=".offsite-lfs-", dir=root / "lfs"))
        self._stage(stream)

    def overlay(self, stream: Readable | None, companions: dict[str, bytes]) -> None:
        """A diff's objects (those its base lacked) staged beside the base's."""
        if stream is not None:
            self._stage(stream)

    def _stage(self, stream: Readable) -> None:
        assert self._staged is not None
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    try:
                        parts = member_path(member.name)
                    except ValueError as exc:
                        raise UnsafeMember(self.location, shown(member), exc) from None
                    if member.isdir():
                        continue
                    oid = parts[-1] if parts else ""
                    if not member.isreg() or not OID.match(oid):
                        raise UnsafeMember(self.location, shown(member), "not an LFS object")
                    data = tar.extractfile(member)
                    assert data is not None
                    staged = self._staged / oid
                    digest = hashlib.sha256()
                    with open(staged, "wb") as out:
                        while chunk := data.read(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                    if digest.hexdigest() != oid:
                        raise self._fail(f"LFS object {oid} does not match its id")
        except tarfile.TarError as exc:
            raise ArchiveUnreadable(self.location, exc) from None

    def commit(self) -> None:
        staged = self._staged
        assert staged is not None
        root = _objects_root(self.target)
        for path in staged.iterdir():
            final = object_path(root, path.name)
            self._no_links(final.parent.parent, final.parent)
            final.parent.mkdir(parents=True, exist_ok=True)
            self._no_links(final.parent.parent, final.parent, final)
            os.replace(path, final)
        staged.rmdir()
        self._staged = None
