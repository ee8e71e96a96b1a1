"""Readable wrappers: count, hash, and run a check at end of stream.

A stream that ends cleanly is a promise that everything upstream succeeded, so
``CheckedReader`` runs its check at EOF and raises instead of returning ``b""``: a
consumer (a storage ``put``) then aborts rather than commit a truncated object.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Callable, Protocol

CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class _Wrapper:
    def __init__(self, inner: Readable) -> None:
        self.inner = inner

    def read(self, size: int = -1, /) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _Wrapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CountingReader(_Wrapper):
    """Counts the bytes read; ``on_read`` sees each chunk's length (progress)."""

    def __init__(self, inner: Readable, on_read: Callable[[int], None] | None = None) -> None:
        super().__init__(inner)
        self.count = 0
        self._on_read = on_read

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        if self._on_read is not None and data:
            self._on_read(len(data))
        return data


class HashingReader(CountingReader):
    """SHA-256 and size of everything read; thread-safe, so ``drain`` may race a reader."""

    def __init__(self, inner: Readable, on_read: Callable[[int], None] | None = None) -> None:
        super().__init__(inner, on_read)
        self._sha = hashlib.sha256()
        self._lock = threading.Lock()

    def read(self, size: int = -1, /) -> bytes:
        with self._lock:
            try:
                data = super().read(size)
            except ValueError:  # read after close: nothing more to hash
                return b""
            self._sha.update(data)
            return data

    def drain(self) -> None:
        """Read (and hash) whatever is left, so the digest covers every stored byte."""
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class CheckedReader(_Wrapper):
    """Calls ``check`` once at EOF; its exception replaces the clean end of stream."""

    def __init__(self, inner: Readable, check: Callable[[], None]) -> None:
        super().__init__(inner)
        self._check: Callable[[], None] | None = check

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        if not data and size != 0 and self._check is not None:
            check, self._check = self._check, None
            check()
        return data


def copy(src: Readable, dst_write: Callable[[bytes], object]) -> int:
    total = 0
    while chunk := src.read(CHUNK):
        dst_write(chunk)
        total += len(chunk)
    return total


def read_exactly(stream: Readable, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end of the stream (a part of an upload)."""
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
