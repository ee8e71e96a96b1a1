"""SFTP servers (``sftp://user@host[:port]/path``), through paramiko: ``address`` (the URL),
``session`` (keys, host keys, the connection and its retries), and here the storage
protocol over them.

``put`` writes a hidden ``.name.partial-XXXX`` beside the key and renames it over the
key at the end, like the local folder. It sends segments of 8 MiB, pipelined, each
confirmed before the next is read; a dropped connection is reconnected (backoff with
jitter) and only the segment in flight, still in memory, is sent again. Reads pick up
at their offset the same way. Partial files a crashed run left behind are what
``incomplete_uploads`` reports, so ``prune`` removes them after a day.
"""

from __future__ import annotations

import builtins
import contextlib
import posixpath
import secrets
import stat as statmode
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, BinaryIO, cast

from offsite.errors import StorageError
from offsite.storage.base import CHUNK, ObjectInfo, may_hold
from offsite.storage.guard import guarded
from offsite.storage.registry import register
from offsite.storage.settings import SftpSettings, StorageSettings
from offsite.storage.sftp.address import SftpAddress, parse_url
from offsite.storage.sftp.session import Session
from offsite.stream.readers import Readable, read_exactly

SEGMENT = 8 * CHUNK
PARTIAL = ".partial-"

__all__ = ["SftpAddress", "SftpStorage", "parse_url"]


@guarded
class SftpStorage:
    def __init__(self, url: str, settings: SftpSettings) -> None:
        self.url = url
        self.address = parse_url(url)
        self.session = Session(url, self.address, settings)

    # --- paths --------------------------------------------------------------------

    def _path(self, key: str) -> str:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise StorageError(self.url, f"refusing key {key!r}")
        return posixpath.join(self.address.root, *parts)

    def _key_of(self, path: str) -> str:
        return path[len(self.address.root) :].lstrip("/")

    def _makedirs(self, sftp: Any, folder: str) -> None:
        missing: list[str] = []
        while folder not in ("", ".", "/"):
            try:
                if statmode.S_ISDIR(sftp.stat(folder).st_mode or 0):
                    break
                raise StorageError(self.url, f"{folder} exists and is not a folder")
            except FileNotFoundError:
                missing.append(folder)
                folder = posixpath.dirname(folder)
        for path in reversed(missing):
            try:
                sftp.mkdir(path)
            except OSError:
                if not statmode.S_ISDIR(sftp.stat(path).st_mode or 0):
                    raise

    # --- the protocol -------------------------------------------------------------

    def put(self, key: str, stream: Readable) -> int:
        path = self._path(key)
        folder, name = posixpath.split(path)
        tmp = posixpath.join(folder, f".{name}{PARTIAL}{secrets.token_hex(4)}")
        self.session.retrying(f"creating {folder}", lambda s: self._makedirs(s, folder))
        written = 0
        try:
            while True:
                data = read_exactly(stream, SEGMENT)
                if not data and written:
                    break

                def write(sftp: Any, data: bytes = data, at: int = written) -> None:
                    self._write(sftp, tmp, at, data)

                self.session.retrying(f"writing {key}", write)
                written += len(data)
                if not data:
                    break
            self.session.retrying(
                f"committing {key}", lambda s: self._commit(s, tmp, path, written)
            )
        except BaseException:
            if self.session.alive():
                with contextlib.suppress(Exception):
                    self.session.sftp.remove(tmp)
            raise
        return written

    def _write(self, sftp: Any, tmp: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of ``tmp``, confirmed; after a reconnect, the
        first ``offset`` bytes (confirmed before) stay and anything after them goes."""
        if offset == 0:
            fh = sftp.open(tmp, "wb")
        else:
            sftp.truncate(tmp, offset)
            fh = sftp.open(tmp, "r+b")
            fh.seek(offset)
        try:
            fh.set_pipelined(True)
            fh.write(data)
        finally:
            fh.close()  # waits for every pipelined write to be acknowledged
        size = sftp.stat(tmp).st_size
        if size != offset + len(data):
            raise StorageError(self.url, f"{tmp} has {size} bytes, {offset + len(data)} were sent")

    def _commit(self, sftp: Any, tmp: str, path: str, size: int) -> None:
        try:
            sftp.posix_rename(tmp, path)  # OpenSSH's atomic rename over an existing file
        except FileNotFoundError:
            # A retry after a lost answer: the rename happened when the file is in place.
            st = sftp.stat(path)
            if st.st_size != size:
                raise
        except OSError as exc:  # a server without the extension: not atomic, but works
            if not self.session.alive() or "unsupported" not in str(exc).lower():
                raise
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(path)
            sftp.rename(tmp, path)

    def create(self, key: str, data: bytes) -> bool:
        """Written to a partial file, then renamed with SFTP's plain rename, which refuses
        to replace an existing file (unlike ``posix-rename``): the server arbitrates."""
        path = self._path(key)
        folder, name = posixpath.split(path)
        tmp = posixpath.join(folder, f".{name}{PARTIAL}{secrets.token_hex(4)}")
        self.session.retrying(f"creating {folder}", lambda s: self._makedirs(s, folder))

        def attempt(sftp: Any) -> bool:
            with sftp.open(tmp, "wb") as out:
                out.write(data)
            try:
                sftp.rename(tmp, path)
            except OSError:
                with contextlib.suppress(OSError):
                    sftp.remove(tmp)
                try:
                    sftp.stat(path)
                except FileNotFoundError:
                    raise StorageError(self.url, f"creating {key} failed") from None
                return False
            return True

        return self.session.retrying(f"creating {key}", attempt)

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, _ResumingFile(self, key, self._path(key)))

    def _walk(
        self, sftp: Any, folder: str, out: builtins.list[tuple[str, Any]], prefix: str = ""
    ) -> None:
        try:
            entries = sftp.listdir_attr(folder)
        except FileNotFoundError:
            return
        for attr in sorted(entries, key=lambda a: a.filename):
            path = posixpath.join(folder, attr.filename)
            if statmode.S_ISDIR(attr.st_mode or 0):
                if may_hold(self._key_of(path), prefix):
                    self._walk(sftp, path, out, prefix)
            elif statmode.S_ISREG(attr.st_mode or 0):
                out.append((path, attr))

    def _files(self, prefix: str = "") -> builtins.list[tuple[str, Any]]:
        """(path, attributes) of every regular file in the folder ``prefix`` names."""
        start = self.address.root
        if "/" in prefix:
            start = posixpath.join(start, *[p for p in prefix.split("/")[:-1] if p])

        def walk(sftp: Any) -> builtins.list[tuple[str, Any]]:
            out: builtins.list[tuple[str, Any]] = []
            self._walk(sftp, start, out, prefix)
            return out

        return self.session.retrying(f"listing {start}", walk)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path, attr in self._files(prefix):
            key = self._key_of(path)
            if PARTIAL not in attr.filename and key.startswith(prefix):
                yield ObjectInfo(key, attr.st_size or 0, _when(attr))

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            attr = self.session.retrying(f"reading {key}", lambda s: s.stat(path))
        except FileNotFoundError:
            return None
        if not statmode.S_ISREG(attr.st_mode or 0):
            return None
        return ObjectInfo(key, attr.st_size or 0, _when(attr))

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            self.session.retrying(f"deleting {key}", lambda s: s.remove(path))
        self.session.retrying(
            f"deleting {key}", lambda s: self._prune_empty(s, posixpath.dirname(path))
        )

    def _prune_empty(self, sftp: Any, folder: str) -> None:
        """Remove folders left empty, up to (not including) the root."""
        root = self.address.root
        while folder != root and folder.startswith(root.rstrip("/") + "/"):
            try:
                sftp.rmdir(folder)  # refused while the folder holds anything
            except OSError:
                return
            folder = posixpath.dirname(folder)

    # --- what a crashed run left behind (HasUploads) ------------------------------

    def incomplete_uploads(self) -> builtins.list[tuple[str, str, datetime]]:
        found = []
        for path, attr in self._files():
            if PARTIAL in attr.filename:
                folder, name = posixpath.split(path)
                final = posixpath.join(folder, name[1 : name.index(PARTIAL)])
                found.append((self._key_of(final), self._key_of(path), _when(attr)))
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        path = self._path(upload_id)
        if PARTIAL not in posixpath.basename(path):
            raise StorageError(self.url, f"{upload_id!r} is not an interrupted upload")
        with contextlib.suppress(FileNotFoundError):
            self.session.retrying(f"removing {upload_id}", lambda s: s.remove(path))
        self.session.retrying(
            f"removing {upload_id}", lambda s: self._prune_empty(s, posixpath.dirname(path))
        )


class _ResumingFile:
    """An object's bytes, fetched 8 MiB ahead with pipelined reads; after a dropped
    connection the fetch picks up at its offset on a new one."""

    def __init__(self, storage: SftpStorage, key: str, path: str) -> None:
        self._storage = storage
        self._key = key
        self._path = path
        self._offset = 0  # of the next byte to fetch
        self._buffer = memoryview(b"")
        self._fh: Any = None
        self._size = storage.session.retrying(f"reading {key}", self._reopen)

    def _reopen(self, sftp: Any) -> int:
        if self._fh is not None:
            with contextlib.suppress(Exception):
                self._fh.close()
        self._fh = sftp.open(self._path, "rb")
        size = int(self._fh.stat().st_size)
        if self._offset and size != self._size:
            raise StorageError(self._storage.url, f"{self._key} changed while it was read")
        return size

    def _fetch(self, sftp: Any) -> bytes:
        if self._fh is None or self._fh.sftp is not sftp:
            self._reopen(sftp)
        end = min(self._size, self._offset + SEGMENT)
        step = self._fh.MAX_REQUEST_SIZE
        chunks = [(at, min(step, end - at)) for at in range(self._offset, end, step)]
        data = b"".join(self._fh.readv(chunks))
        if len(data) != end - self._offset:
            raise StorageError(self._storage.url, f"{self._key} ended early")
        return data

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(SEGMENT), b""))
        if not self._buffer:
            if self._offset >= self._size:
                return b""
            data = self._storage.session.retrying(f"reading {self._key}", self._fetch)
            self._offset += len(data)
            self._buffer = memoryview(data)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(out)

    def close(self) -> None:
        self._buffer = memoryview(b"")
        if self._fh is not None:
            with contextlib.suppress(Exception):
                self._fh.close()
            self._fh = None

    def __enter__(self) -> _ResumingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _when(attr: Any) -> datetime:
    return datetime.fromtimestamp(attr.st_mtime or 0, timezone.utc)


@register("sftp")
def _open(url: str, settings: StorageSettings) -> SftpStorage:
    return SftpStorage(url, settings.sftp)
