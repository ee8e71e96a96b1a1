"""The staged dump of ``restore --jobs`` (``parallel``): a file in TMPDIR that grows as
the stream arrives, its data blocks handed to loaders in order, each loader's input
copied by the kernel behind the writer (``sendfile``), and the bytes every loader has
sent given back as they go (a hole punched), so the staging holds what the loaders have
not reached rather than the whole dump."""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from typing import IO

BATCH = 64 << 20  # whole blocks loaded by one pg_restore, up to about this many bytes


class Stopped(Exception):
    """The restore failed elsewhere: a loader stops feeding its pg_restore."""


class Blocks:
    """The staged file as it grows, and its data blocks, handed to the loaders in order.
    A block ends where the next begins, or where the stream ended."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.cond = threading.Condition()
        self.written = 0
        self.ids: list[int] = []
        self.starts: list[int] = []
        self.taken = 0  # blocks handed to loaders
        self.closed = False  # the stream ended
        self.stopped = False  # the restore failed

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            done = os.pwrite(self.fd, view, self.written)
            view = view[done:]
            with self.cond:
                self.written += done
                self.cond.notify_all()

    def begin(self, blocks: list[tuple[int, int]]) -> None:
        if blocks:
            with self.cond:
                for dump_id, start in blocks:
                    self.ids.append(dump_id)
                    self.starts.append(start)
                self.cond.notify_all()

    def close(self, *, stopped: bool = False) -> None:
        with self.cond:
            self.closed = True
            self.stopped = self.stopped or stopped
            self.cond.notify_all()

    def _end(self, index: int) -> int | None:
        if index + 1 < len(self.starts):
            return self.starts[index + 1]
        return self.written if self.closed else None

    def next_batch(self) -> tuple[int, int] | None:
        """The first and last block for a loader: the next block, with the whole blocks
        after it when it is whole itself; None once none are left or the restore stopped."""
        with self.cond:
            while not self.stopped and self.taken == len(self.starts) and not self.closed:
                self.cond.wait()
            if self.stopped or self.taken == len(self.starts):
                return None
            first = last = self.taken
            if self._end(first) is not None:
                while last + 1 < len(self.starts):
                    end = self._end(last + 1)
                    if end is None or end - self.starts[first] > BATCH:
                        break
                    last += 1
            self.taken = last + 1
            return first, last

    def readable(self, pos: int, last: int) -> int:
        """How far a loader whose last block is ``last`` may read from ``pos``."""
        with self.cond:
            while True:
                if self.stopped:
                    raise Stopped
                end = self._end(last)
                if end is not None:
                    return end
                if self.written > pos:
                    return self.written
                self.cond.wait()


class Follow:
    """One loader's input: the dump's contents, then its blocks from the staged file as
    far as the writer has come, copied by the kernel (``sendfile``), not through Python."""

    def __init__(self, blocks: Blocks, contents: bytes, first: int, last: int) -> None:
        self._blocks, self._contents, self._last = blocks, contents, last
        self._pos = blocks.starts[first]

    def __call__(self, stdin: IO[bytes]) -> None:
        stdin.write(self._contents)
        stdin.flush()
        out, blocks = stdin.fileno(), self._blocks
        freed = self._pos
        while (end := blocks.readable(self._pos, self._last)) > self._pos:
            sent = os.sendfile(out, blocks.fd, self._pos, end - self._pos)
            if sent == 0:
                raise OSError(f"the staged dump ends at byte {self._pos}")
            self._pos += sent
            if self._pos - freed >= 2 * BEHIND:
                freed = release(blocks.fd, freed, self._pos - BEHIND)


BEHIND = 16 << 20  # a loader's staged bytes kept this far behind what it has sent
_FALLOC_PUNCH_HOLE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


def release(fd: int, start: int, end: int) -> int:
    """The staged bytes from ``start`` to ``end`` given back (a hole punched in the file):
    a loader has sent them, and its pg_restore has read them (a pipe holds far less than
    ``BEHIND``). The staging then holds what the loaders have not reached, not the whole
    dump, and its pages are used again while they are warm (a new page costs this
    machine three times a reused one: bench/RESULTS.md). Nothing happens where the call
    does not exist. Returns ``end``."""
    fallocate = _fallocate()
    if fallocate is not None and end > start:
        fallocate(fd, _FALLOC_PUNCH_HOLE, start, end - start)
    return end


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return call
