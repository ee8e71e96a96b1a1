"""Pushing and fetching ahead of PostgreSQL (``--async``, SPEC §8), as pgBackRest's
asynchronous archiving does: one long-lived process does the work of many calls, each
call only confirms (push) or moves a file already there (fetch). See :mod:`spool` for
what a call answers on its own.

A push call still exits 0 only once its file is durable at every destination: the
process ahead writes a file's record after every destination has stored it, the call
checks the record against the file's own SHA-256, and whatever the process ahead cannot
do (it failed, it stopped, the file is not one PostgreSQL marked ready) the call does
itself, with the same errors and exit codes as without ``--async``. A fetch call moves a
segment the process ahead fetched and checked as a plain fetch does; any other file it
fetches itself, so "not there" (1) and "corrupt" (3) are told apart as always.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from offsite.errors import OffsiteError, WalMissing
from offsite.wal.archiving import Fetcher, Pusher
from offsite.wal.spool import (
    FAILED,
    LOCK,
    WANT,
    Spool,
    confirmed,
    is_segment,
    is_wal_file,
    take,
)

JOBS = 2  # files pushed or fetched at once
IDLE_PUSH = 60.0  # seconds without a ready file: the push process exits (a busy server
# makes a file every few seconds: staying spares each one a process start)
IDLE_FETCH = 30.0  # seconds without a request: the fetch process exits
QUEUE_BYTES = 128 << 20  # fetched ahead at most (8 segments of 16 MiB)
RETRY_MISSING = 1.0  # seconds before asking the archive again for a file it lacked


@contextlib.contextmanager
def _locked(spool: Spool) -> Iterator[bool]:
    """The spool's lock, held for the process ahead's life; False when another has it (a
    call testing whether one runs holds it an instant: asked again for a second)."""
    fd = os.open(spool.path(LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        for _ in range(20):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.05)
        else:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class _Here:
    """The data directory the process ahead started in: it stops once that is gone or
    replaced (a new cluster restored at the same path has a spool of its own)."""

    def __init__(self) -> None:
        self.first = os.stat(".")

    def same(self) -> bool:
        try:
            now = os.stat(os.getcwd())
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (self.first.st_dev, self.first.st_ino)


@contextlib.contextmanager
def _alone(spool: Spool) -> Iterator[_Here | None]:
    """A process ahead's start: the spool usable, the data directory it serves noted, the
    lock held for its life; None when it may not run (another one does)."""
    if not spool.usable(create=True):
        yield None
        return
    here = _Here()
    with _locked(spool) as mine:
        yield here if mine else None


def _per_thread(make: Callable[[], Pusher | Fetcher]) -> Callable[[], Pusher | Fetcher]:
    """One pusher or fetcher per thread: not every backend's client may be shared."""
    local = threading.local()

    def get() -> Pusher | Fetcher:
        if not hasattr(local, "it"):
            local.it = make()
        return local.it  # type: ignore[no-any-return]

    return get


# -- push ----------------------------------------------------------------------------------
def push_call(pusher: Pusher, spool: Spool, path: Path) -> None:
    """A ``wal push --async`` call the spool could not answer at once: the process ahead
    started and waited for (``spool.confirmed``, unless the quick answer did that already);
    the file pushed here if it could not be."""
    if not confirmed(spool, str(path)):
        pusher.push(path)  # the process ahead could not: this call does, and says why not


def ready_files(wal_dir: Path) -> list[str]:
    """What PostgreSQL has marked ready to archive, in its own order: timeline history
    files first, then the oldest."""
    try:
        entries = os.listdir(wal_dir / "archive_status")
    except OSError:
        return []
    names = [e[: -len(".ready")] for e in entries if e.endswith(".ready")]
    names = [n for n in names if is_wal_file(n)]
    return sorted(names, key=lambda n: (not n.endswith(".history"), n))


def push_ahead(make: Callable[[], Pusher], spool: Spool, path: Path) -> None:
    """The process ahead of ``wal push --async``: push every ready file of ``path``'s
    ``pg_wal`` and record each once stored everywhere; exit when none has come for a
    while, or at the first failure (recorded for the call waiting on that file)."""
    wal_dir = path.absolute().parent
    with _alone(spool) as here:
        if here is None:
            return
        pusher = _per_thread(make)

        def one(name: str) -> None:
            try:
                it = pusher()
                assert isinstance(it, Pusher)
                sha256, size = it.push(wal_dir / name)
            except OffsiteError:
                spool.write_error(name)
                raise
            spool.write_record(name, sha256, size)

        idle = time.monotonic()
        with ThreadPoolExecutor(JOBS) as pool:
            while os.path.isdir(spool.folder) and here.same():
                ready = ready_files(wal_dir)
                _tidy(spool, set(ready))
                todo = [n for n in ready if spool.record(n) is None]
                if not todo:
                    if time.monotonic() - idle > IDLE_PUSH or not wal_dir.is_dir():
                        return
                    time.sleep(0.05)
                    continue
                try:
                    one(todo[0])  # the oldest first: PostgreSQL waits on it
                    list(pool.map(one, todo[1 : 1 + 4 * JOBS]))
                except OffsiteError:
                    return
                idle = time.monotonic()


def _tidy(spool: Spool, ready: set[str]) -> None:
    """Records of files PostgreSQL no longer has ready (it has their ``.done``)."""
    with contextlib.suppress(OSError):
        for entry in os.listdir(spool.folder):
            name, _, kind = entry.rpartition(".")
            if kind in ("ok", "error") and is_wal_file(name) and name not in ready:
                with contextlib.suppress(OSError):
                    os.unlink(spool.path(entry))


# -- fetch ---------------------------------------------------------------------------------
def fetch_call(fetcher: Callable[[], Fetcher], spool: Spool, name: str, target: Path) -> None:
    """A ``wal fetch --async`` call the spool could not answer at once: fetch the file
    here, then have the process ahead fetch the segments after it."""
    usable = spool.usable(create=True)
    size = take(spool, name, str(target)) if usable and is_segment(name) else None
    if size is None:
        size = fetcher().fetch(name, target)
    if usable and is_segment(name):
        # the file is in place: nothing here may turn that into a failure
        with contextlib.suppress(OSError):
            spool.want(name, size)
            if not spool.running():
                spool.start()


def following(name: str, size: int, count: int) -> list[str]:
    """The ``count`` segments after ``name`` on its timeline, for segments of ``size``."""
    if size < (1 << 20) or size > (1 << 30) or size & (size - 1):
        return []
    per_log = 0x100000000 // size
    timeline, log, seg = name[:8], int(name[8:16], 16), int(name[16:24], 16)
    names = []
    for _ in range(count):
        seg += 1
        if seg >= per_log:
            log, seg = log + 1, 0
        names.append(f"{timeline}{log:08X}{seg:08X}")
    return names


def fetch_ahead(make: Callable[[], Fetcher], spool: Spool) -> None:
    """The process ahead of ``wal fetch --async``: keep the segments after the one the
    server asked for last in the spool, fetched and checked; exit (and empty the spool)
    when the server has asked nothing for a while."""
    with _alone(spool) as here:
        if here is None:
            return
        fetcher = _per_thread(make)
        missing: dict[str, float] = {}
        failed: set[str] = set()

        def one(name: str) -> None:
            try:
                it = fetcher()
                assert isinstance(it, Fetcher)
                it.fetch(name, Path(spool.path(name)))
            except WalMissing:
                missing[name] = time.monotonic()
            except OffsiteError:
                failed.add(name)  # the call fetches it itself, and says what is wrong
                with contextlib.suppress(OSError):
                    spool.mark_failed(name)

        with ThreadPoolExecutor(JOBS) as pool:
            while True:
                wanted = spool.wanted()  # None too when the spool is gone
                if wanted is None or time.time() - wanted[2] > IDLE_FETCH or not here.same():
                    _empty(spool)
                    return
                name, size, _ = wanted
                window = following(name, size, max(1, QUEUE_BYTES // max(size, 1)))
                _drop_others(spool, set(window))
                now = time.monotonic()
                todo = [
                    n for n in window
                    if n not in failed and not os.path.exists(spool.path(n))
                    and now - missing.get(n, -RETRY_MISSING) >= RETRY_MISSING
                ]  # fmt: skip
                if todo:
                    list(pool.map(one, todo[:JOBS]))
                else:
                    time.sleep(0.05)


def _drop_others(spool: Spool, keep: set[str]) -> None:
    """Segments fetched ahead that the server will not ask for now (it moved past them,
    or to another timeline)."""
    with contextlib.suppress(OSError):
        for entry in os.listdir(spool.folder):
            if _spooled(entry) and entry.split(".")[0] not in keep:
                with contextlib.suppress(OSError):
                    os.unlink(spool.path(entry))


def _spooled(entry: str) -> bool:
    """A segment fetched ahead, or the mark of one found corrupt."""
    return is_segment(entry) or (entry.endswith(FAILED) and is_segment(entry[: -len(FAILED)]))


def _empty(spool: Spool) -> None:
    with contextlib.suppress(OSError):
        for entry in os.listdir(spool.folder):
            if _spooled(entry) or entry == WANT or entry.startswith("."):
                with contextlib.suppress(OSError):
                    os.unlink(spool.path(entry))
