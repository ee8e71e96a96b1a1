"""A local folder (plain path or ``file://``): temporary name, fsync, rename."""

from __future__ import annotations

import builtins
import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from offsite.errors import DestinationIsFile, NotAnObject, StorageError
from offsite.storage.base import CHUNK, ObjectInfo, may_hold
from offsite.storage.guard import guarded
from offsite.storage.registry import register
from offsite.storage.settings import StorageSettings
from offsite.stream.readers import Readable
from offsite.urls import local_path

PARTIAL = ".partial-"


def _sync_folder(folder: Path) -> None:
    """A rename or link is durable once its folder is synced."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@guarded
class LocalStorage:
    def __init__(self, url: str) -> None:
        self.url = url
        self.root = Path(local_path(url)).expanduser()
        # a destination under a file is a mistyped path (bad input, exit 2), not a failed
        # write: the nearest part of it that exists must be a folder
        there = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
        if there is not None and not there.is_dir():
            raise DestinationIsFile(url, there)

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise StorageError(self.url, f"refusing key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, stream: Readable) -> int:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(self.url, exc.strerror or exc) from exc
        tmp = path.with_name(f".{path.name}{PARTIAL}{secrets.token_hex(4)}")
        written = flushed = 0
        try:
            with open(tmp, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    if written - flushed >= WRITE_BEHIND:
                        flushed = _write_behind(out, flushed, written)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            _sync_folder(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._prune_empty(path.parent)
            raise
        return written

    def create(self, key: str, data: bytes) -> bool:
        """Written whole to a partial file first, then linked to its name: ``link`` fails
        when the name exists, so the object appears complete or not at all, even if this
        process dies half way (a WAL push retried after a crash finds no half file)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}{PARTIAL}{secrets.token_hex(4)}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise StorageError(self.url, exc.strerror or exc) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(self.url, exc.strerror or exc) from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        _sync_folder(path.parent)
        return True

    def open(self, key: str) -> BinaryIO:
        """A regular file only: a FIFO planted under a key would block the reader for
        ever, a folder or a device is no object (StorageError, one line)."""
        fd = os.open(self._path(key), os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotAnObject(self.url, key)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the folder the prefix names, not the whole destination.
        start = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            here = Path(dirpath).relative_to(self.root).as_posix()
            dirnames[:] = sorted(
                d for d in dirnames if may_hold(d if here == "." else f"{here}/{d}", prefix)
            )
            for name in sorted(filenames):
                if PARTIAL in name:
                    continue
                full = Path(dirpath, name)
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    info = self._info(full, key)
                    if info is not None:
                        yield info

    def incomplete_uploads(self) -> builtins.list[tuple[str, str, datetime]]:
        """Partial files a killed run left (``.NAME.partial-XXXX``): (key, partial's key,
        its time), so that ``prune`` removes them once they are a day old."""
        found: builtins.list[tuple[str, str, datetime]] = []
        if not self.root.is_dir():
            return found
        for dirpath, _dirs, filenames in os.walk(self.root):
            for name in filenames:
                if PARTIAL in name and name.startswith("."):
                    path = Path(dirpath, name)
                    info = self._info(path, path.relative_to(self.root).as_posix())
                    if info is not None:
                        final = Path(dirpath, name[1 : name.index(PARTIAL)])
                        found.append(
                            (final.relative_to(self.root).as_posix(), info.key, info.modified)
                        )
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        path = self._path(upload_id)
        if PARTIAL not in path.name:
            raise StorageError(self.url, f"{upload_id!r} is not an interrupted upload")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._prune_empty(path.parent)

    def _info(self, path: Path, key: str) -> ObjectInfo | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return self._info(path, key) if path.is_file() else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._prune_empty(path.parent)

    def _prune_empty(self, folder: Path) -> None:
        """Remove folders left empty, up to (not including) the root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


@register("file")
def _open(url: str, settings: StorageSettings) -> LocalStorage:
    return LocalStorage(url)


WRITE_BEHIND = 16 << 20  # bytes written before the kernel is asked to start writing them out


def _write_behind(out: BinaryIO, start: int, end: int) -> int:
    """Start writing out what ``out`` holds from ``start`` to ``end`` now, not at the
    ``fsync`` that ends the object (which then waits for little), and leave the page cache
    to data that is read again: ``POSIX_FADV_DONTNEED`` starts writeback without waiting
    for it. Returns ``end``."""
    out.flush()
    with contextlib.suppress(AttributeError, OSError):
        os.posix_fadvise(out.fileno(), start, end - start, os.POSIX_FADV_DONTNEED)
    return end
