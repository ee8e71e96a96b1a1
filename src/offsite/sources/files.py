"""Files and folders: a POSIX (pax) tar, streamed; restored with traversal-safe extraction.

An incremental source (SPEC §10) keeps an index beside its full tar (``tree``), and a
diff run stores a tar of what changed and the list of what is gone; a diff restores over
its base entry (``FolderRestorer.overlay``)."""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from offsite.errors import SourceNotFound, TargetNotEmpty
from offsite.github import gha
from offsite.sources import tree
from offsite.sources.base import (
    Dump,
    FullNeeded,
    Inspection,
    RestoreOptions,
    RunContext,
    Source,
    tar_dump,
)
from offsite.sources.restorer import FolderStagingRestorer, Restorer, make_parents
from offsite.stream import safetar
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CHUNK, HashingReader, Readable


class FilesSource(Source):
    kind = "files"
    suffix = ".tar"
    diffs = True
    target_suffix = ""  # a folder

    @property
    def path(self) -> Path:
        return Path(self.local_target(self.url)).expanduser()

    def check(self) -> None:
        path = self.path
        if not os.path.lexists(path) or not os.access(path, os.R_OK):
            raise SourceNotFound(self.display)

    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        path = self.path
        excludes, skip = self.options.excludes, context.skip
        counts = {"files": 0, "bytes": 0}

        def keep(root: Path, info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            rel = info.name[2:] if info.name.startswith("./") else info.name
            if rel not in ("", "."):
                base = rel.rsplit("/", 1)[-1]
                if any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(base, p) for p in excludes):
                    return None
                if skip and info.isdir() and (root / rel).resolve() in skip:
                    return None  # (a destination is a folder: only folders are resolved)
            if info.isreg():
                counts["files"] += 1
                counts["bytes"] += info.size
            return info

        def write_tar(dst: BinaryIO) -> None:
            with _tar(dst) as tar:
                if path.is_dir() and not path.is_symlink():
                    tar.add(path, arcname=".", filter=lambda i: keep(path, i))
                else:
                    tar.add(path, arcname=path.name, filter=lambda i: keep(path.parent, i))

        if self.options.incremental:
            yield self._incremental(context)
            return
        with tar_dump(pipeline, self.name, write_tar, lambda: dict(counts)) as dump:
            yield dump

    # -- incremental (SPEC §10) ------------------------------------------------------------
    def _keep(self, context: RunContext) -> tree.Keep:
        root, excludes, skip = self.path, self.options.excludes, context.skip

        def keep(rel: str, folder: bool) -> bool:
            base = rel.rsplit("/", 1)[-1]
            if any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(base, p) for p in excludes):
                return False  # a destination is a folder: only folders are resolved
            return not (skip and folder and (root / rel).resolve() in skip)

        return keep

    def _where(self, rel: str) -> tuple[Path, str]:
        """A relative path's file and its member name (as a full tar names it)."""
        top = self.path
        if rel in (tree.ROOT, top.name) and not (top.is_dir() and not top.is_symlink()):
            return top, top.name
        return (top, ".") if rel == tree.ROOT else (top / rel, "./" + rel)

    def _incremental(self, context: RunContext) -> Dump:
        keep, baseline = self._keep(context), context.baseline
        base = baseline.load(self.name, tree.loads) if baseline is not None else None
        if baseline is None or base is None:
            return self._indexed(keep)
        found = tree.plan(self.path, keep, base, baseline.started_ns, tree.hash_file)
        stats = {"files": found.files, "bytes": found.bytes,
                 "changed_files": len(found.members), "deleted": len(found.deleted)}  # fmt: skip
        if found.empty:
            return Dump(stats=lambda: stats, delta="unchanged")
        limit = baseline.full_when_over * baseline.raw_sizes[self.name]
        if found.changed_bytes > limit:
            raise FullNeeded(f"the diff of {self.name} would hold {found.changed_bytes} bytes, "
                             f"over {baseline.full_when_over:.0%} of its base entry's "
                             f"{baseline.raw_sizes[self.name]} (--full-when-over)")  # fmt: skip

        def write_diff(dst: BinaryIO) -> None:
            with _tar(dst) as tar:
                for rel in found.members:
                    path, arcname = self._where(rel)
                    info: tarfile.TarInfo | None = tar.gettarinfo(str(path), arcname)
                    if info is None:  # a socket: tar keeps none
                        continue
                    if info.isreg():
                        with open(path, "rb") as fh:
                            tar.addfile(info, fh)
                    else:
                        tar.addfile(info)

        deleted = "\0".join(found.deleted).encode("utf-8", "surrogateescape")
        if len(deleted) > tree.MAX_DELETED:  # more than a restore reads back
            raise FullNeeded(f"the deleted list of {self.name} is over 256 MiB")
        return Dump(writer=write_diff, stats=lambda: stats, delta="diff",
                    companions=lambda: {"deleted": deleted} if deleted else {})  # fmt: skip

    def _indexed(self, keep: tree.Keep) -> Dump:
        """A full tar of the tree and its index, each file hashed as it is archived."""
        items: list[tree.Item] = []
        counts = {"files": 0, "bytes": 0}

        def write_tar(dst: BinaryIO) -> None:
            hashes: dict[tuple[int, int], str] = {}  # an inode's content, for its hardlinks
            with _tar(dst) as tar:
                for rel, path, st in tree.walk(self.path, keep):
                    info: tarfile.TarInfo | None = tar.gettarinfo(str(path), self._where(rel)[1])
                    if info is None:  # a socket: tar keeps none
                        continue
                    found = tree.item(rel, path, st)
                    digest = ""
                    if info.isreg():
                        with open(path, "rb") as fh:
                            hashing = HashingReader(fh)  # the index's SHA-256, on the way
                            tar.addfile(info, hashing)
                        digest = hashes[(st.st_dev, st.st_ino)] = hashing.hexdigest()
                        counts["files"] += 1
                        counts["bytes"] += info.size
                    else:
                        tar.addfile(info)
                        digest = hashes.get((st.st_dev, st.st_ino), "") if info.islnk() else ""
                    if found is not None:
                        size = info.size if info.isreg() else found.size
                        items.append(replace(found, size=size, sha256=digest))

        return Dump(writer=write_tar, stats=lambda: dict(counts), delta="full",
                    companions=lambda: {"index": tree.dumps(items)})  # fmt: skip

    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return FolderRestorer(Path(cls.local_target(target)).expanduser(), options.force)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return f"| (mkdir -p {name} && tar -xpf - -C {name})"

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        files = size = 0
        for dirpath, _dirs, names in os.walk(Path(cls.local_target(target)).expanduser()):
            for name in names:
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    files += 1
                    size += st.st_size
        found = {"files": files, "bytes": size}
        problems = [
            f"{key}: manifest says {stats[key]}, the restored folder holds {found[key]}"
            for key in ("files", "bytes")
            if key in stats and stats[key] != found[key]
        ]
        return Inspection(problems=problems, checks=["files and bytes"])


def _tar(dst: BinaryIO) -> tarfile.TarFile:
    tar = tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK)  # noqa: SIM115
    tar.copybufsize = CHUNK  # type: ignore[attr-defined]  # file data in 1 MiB reads
    return tar


class FolderRestorer(FolderStagingRestorer):
    """Extracts into a staging folder beside the target, then moves it into place.

    Extraction follows ``offsite.stream.safetar``'s rules: no absolute or climbing paths, nothing
    written through a symlink, hardlinks only to members of the same archive, no device
    nodes, no setuid bits; a refused member fails the entry and the staging folder goes.
    """

    def __init__(self, target: Path, force: bool) -> None:
        super().__init__(target)
        self.force = force
        if target.is_dir() and any(target.iterdir()) and not force:
            raise TargetNotEmpty(target)

    def write(self, stream: Readable) -> None:
        self._created = make_parents(self.target)
        self._staged = Path(
            tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent)
        )
        safetar.extract(stream, self._staged, self.target.name, gha.warn)

    def overlay(self, stream: Readable | None, companions: dict[str, bytes]) -> None:
        assert self._staged is not None
        listed = companions.get("deleted", b"").decode("utf-8", "surrogateescape")
        deleted = [p for p in listed.split("\0") if p]
        stream = stream if stream is not None else io.BytesIO(bytes(1024))  # an empty tar
        folders = safetar.open_folders(self._staged)  # a read-only folder of the base too
        safetar.remove(self._staged, deleted, self.target.name, folders)
        safetar.extract(stream, self._staged, self.target.name, gha.warn, over=folders)

    def commit(self) -> None:
        staged = self._staged
        assert staged is not None
        if not self.target.exists() or not any(self.target.iterdir()):
            if self.target.exists():
                self.target.rmdir()
            os.replace(staged, self.target)
        else:  # --force over a non-empty folder: what the backup holds replaces what is there
            os.chmod(staged, stat.S_IMODE(os.lstat(staged).st_mode) | 0o700)  # (read-only?)
            for child in staged.iterdir():
                dest = self.target / child.name
                mode = os.lstat(child).st_mode
                if dest.is_dir() and not dest.is_symlink():
                    shutil.rmtree(dest)
                elif stat.S_ISDIR(mode) and os.path.lexists(dest):
                    dest.unlink()  # a file where a folder goes (a file replaces one in place)
                if stat.S_ISDIR(mode) and mode & 0o700 != 0o700:  # moved: its ".." changes
                    os.chmod(child, stat.S_IMODE(mode) | 0o700)
                    os.replace(child, dest)
                    os.chmod(dest, stat.S_IMODE(mode))
                else:
                    os.replace(child, dest)
            staged.rmdir()
        self._staged = None
