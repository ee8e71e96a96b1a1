"""Files and folders: a POSIX (pax) tar, streamed; restored with traversal-safe extraction."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from offsite.errors import SourceNotFound, TargetNotEmpty
from offsite.github import gha
from offsite.sources.base import Dump, Inspection, RestoreOptions, RunContext, Source, tar_dump
from offsite.sources.restorer import FolderStagingRestorer, Restorer, make_parents
from offsite.stream import safetar
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CHUNK, Readable


class FilesSource(Source):
    kind = "files"
    suffix = ".tar"
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
                if skip and (root / rel).resolve() in skip:
                    return None
            if info.isreg():
                counts["files"] += 1
                counts["bytes"] += info.size
            return info

        def write_tar(dst: BinaryIO) -> None:
            with tarfile.open(
                fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK
            ) as tar:
                tar.copybufsize = CHUNK  # type: ignore[attr-defined]  # file data in 1 MiB reads, not 16 KiB
                if path.is_dir() and not path.is_symlink():
                    tar.add(path, arcname=".", filter=lambda i: keep(path, i))
                else:
                    tar.add(path, arcname=path.name, filter=lambda i: keep(path.parent, i))

        with tar_dump(pipeline, self.name, write_tar, lambda: dict(counts)) as dump:
            yield dump

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

    def commit(self) -> None:
        staged = self._staged
        assert staged is not None
        if not self.target.exists() or not any(self.target.iterdir()):
            if self.target.exists():
                self.target.rmdir()
            os.replace(staged, self.target)
        else:  # --force over a non-empty folder: what the backup holds replaces what is there
            for child in staged.iterdir():
                dest = self.target / child.name
                if dest.is_dir() and not dest.is_symlink():
                    shutil.rmtree(dest)
                elif os.path.lexists(dest):
                    dest.unlink()
                os.replace(child, dest)
            staged.rmdir()
        self._staged = None
