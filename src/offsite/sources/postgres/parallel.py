"""``restore --jobs N``: pg_restore's parallel restore, started while the dump arrives.

pg_restore's workers need a seekable file, so the decoded dump is staged in TMPDIR. Staged
first and restored after, that cost the staging's whole time on top of pg_restore's
(bench/RESULTS.md: 1.96x ``pg_restore -j2`` from a local file). Into a database this
restore created, the work now starts while the dump still arrives:
- once the table of contents has passed, the schema (``--section=pre-data``);
- then each table's data, by N loaders: a ``pg_restore --use-list`` each, reading the
  contents and then its block from the staged file, behind the writer. A block already
  whole goes with the whole blocks after it (up to ``BATCH`` bytes) to one loader, so a
  dump of many small tables does not start a process for each;
- a table's indexes and keys by the loader that loaded it, right after (``_Early``);
- after the stream ended and its checksum matched (``finish``), the rest (foreign keys,
  triggers, sequences' values, grants) with ``--jobs N`` from the staged file, the
  data blocks' offsets written into it first, as ``pg_dump -f`` would have.

Data is loaded before the entry's checksum is known, so only into a database the restore
created: ``discard`` drops it when anything fails. Into an existing database, and for a
dump ``archive`` cannot read (a newer pg_dump's), nothing starts before the stream ended
and checked; ``finish`` then runs the whole ``pg_restore --jobs N``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from offsite.sources.postgres.archive import ArchiveCheck
from offsite.sources.postgres.staging import Blocks, Follow, Stopped
from offsite.sources.postgres.toc import ArchiveError, TocEntry
from offsite.sources.process import ErrorFactory, Tool, feed_tool, run_tool
from offsite.stream.readers import CHUNK, Readable

EARLY = ("INDEX", "CONSTRAINT")  # post-data entries built as soon as their tables are loaded
PRE_DATA, POST_DATA = 2, 4


class _Early:
    """Indexes, primary keys and unique constraints built as soon as the data of the
    tables they are on is loaded, as ``pg_restore --jobs`` does: those whose every
    dependency is a pre-data entry (a table, a function), not another index. Foreign keys
    (which need the other table's key), refreshed views and the rest wait for the end."""

    def __init__(self, toc: list[TocEntry]) -> None:
        kinds = {entry.dump_id: entry.section for entry in toc}
        data_of: dict[int, set[int]] = {}  # a table's entry: its data's entries
        for entry in toc:
            if entry.desc == "TABLE DATA":
                for dep in entry.deps:
                    data_of.setdefault(dep, set()).add(entry.dump_id)
        self._waits: dict[int, set[int]] = {}  # an early entry: the data it waits for
        for entry in toc:
            if entry.section != POST_DATA or entry.desc not in EARLY:
                continue
            if all(kinds.get(dep) == PRE_DATA for dep in entry.deps):
                needs = set().union(*(data_of.get(dep, set()) for dep in entry.deps))
                if needs:
                    self._waits[entry.dump_id] = needs

    def ready(self, loaded: set[int]) -> list[int]:
        """The entries whose tables are all loaded now; each is handed out once."""
        ready = [dump_id for dump_id, needs in self._waits.items() if needs <= loaded]
        for dump_id in ready:
            del self._waits[dump_id]
        return ready


class StagedRestore:
    """The decoded dump staged for ``pg_restore --jobs``; with ``early``, its schema and
    data restored while it arrives. ``write``, then ``finish`` or ``discard``."""

    def __init__(
        self,
        argv: Sequence[str],  # pg_restore with its options and --dbname
        env: dict[str, str],
        secrets: Sequence[str | None],
        fail: ErrorFactory,
        jobs: int,
        early: bool,
        recorded: object = None,
    ) -> None:
        self._argv, self._env, self._secrets, self._fail = list(argv), env, secrets, fail
        self._jobs, self._early = jobs, early
        self._folder = Path(tempfile.mkdtemp(prefix="offsite-restore-"))
        self.path = self._folder / "dump.pgdump"
        self._blocks = Blocks(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.Lock()
        self._loaders: list[threading.Thread] = []
        self._tools: list[Tool] = []
        self._loaded: set[int] = set()  # the entries restored while the dump arrived
        self._indexes = _Early([])
        self._error: BaseException | None = None
        self._contents = b""  # the dump's header and contents, once they have passed
        self._schema: threading.Thread | None = None
        self._recorded = recorded  # the blocks' offsets the backup recorded, if any

    def write(self, stream: Readable) -> None:
        check: ArchiveCheck | None = ArchiveCheck()
        parsed = known = False  # known: the blocks' offsets the manifest recorded, no walk
        seen = 0
        try:
            while chunk := stream.read(CHUNK):
                self._blocks.append(chunk)
                if check is None:
                    continue
                if known:
                    seen = self._announce(check, seen)
                    self._raise_failure()
                    continue
                try:
                    check.feed(chunk)
                except ArchiveError:
                    check = None  # staged as it is: pg_restore judges it at the end
                    continue
                if check.contents_end is not None and not parsed:
                    parsed = True
                    known = check.known_starts(self._recorded)
                    if self._early:
                        self._start_schema(check.contents_end, check.toc)
                if known:
                    seen = self._announce(check, seen)
                elif self._early and check.contents_end is not None:
                    begun = check.begun(seen)
                    seen += len(begun)
                    self._blocks.begin(begun)
                self._raise_failure()
            self._blocks.close()
            if check is not None:
                self._set_offsets(check, known)
            if self._schema is not None:
                self._schema.join()
            for loader in self._loaders:
                loader.join()
            self._raise_failure()
        except BaseException:
            self._stop()
            raise

    def _announce(self, check: ArchiveCheck, seen: int) -> int:
        """With the recorded offsets: the blocks the writer has reached, from the
        ``seen``-th on, handed to the loaders (none before the schema is restored)."""
        if not self._early:
            return seen
        begun = check.begun(seen)
        written = self._blocks.written
        reached = [block for block in begun if block[1] < written]
        self._blocks.begin(reached)
        return seen + len(reached)

    def finish(self) -> None:
        """Restore what is left, from the staged file; it is removed either way."""
        try:
            path = str(self.path)
            if not self._contents:
                run_tool([*self._argv, f"--jobs={self._jobs}", path], *self._tool_args())
                return
            listing = run_tool([self._argv[0], "--list", path], *self._tool_args())
            rest = [
                line
                for line in listing.splitlines()
                if line and not line.startswith(";") and _dump_id(line) not in self._loaded
            ]
            chosen = self._folder / "rest.list"
            chosen.write_text("".join(line + "\n" for line in rest))
            sections = ["--section=data", "--section=post-data", f"--use-list={chosen}"]
            run_tool([*self._argv, *sections, f"--jobs={self._jobs}", path], *self._tool_args())
        finally:
            self.discard()

    def discard(self) -> None:
        self._stop()
        with contextlib.suppress(OSError):
            os.close(self._blocks.fd)
        shutil.rmtree(self._folder, ignore_errors=True)

    # -- the work done while the dump arrives -------------------------------------------
    def _tool_args(self) -> tuple[dict[str, str], ErrorFactory, Sequence[str | None]]:
        return self._env, self._fail, self._secrets

    def _start_schema(self, contents_end: int, toc: list[TocEntry]) -> None:
        """The schema restored on a thread of its own while the stream goes on arriving;
        the loaders start once it is in."""
        self._contents = os.pread(self._blocks.fd, contents_end, 0)
        self._indexes = _Early(toc)
        self._schema = threading.Thread(target=self._restore_schema, name="pg-schema", daemon=True)
        self._schema.start()

    def _restore_schema(self) -> None:
        try:
            self._restore("schema", [], self._write_contents, ["--section=pre-data"])
        except BaseException as exc:
            with self._lock:
                self._error = self._error or exc
            self._blocks.close(stopped=True)
            return
        for n in range(self._jobs):
            loader = threading.Thread(target=self._load, name=f"pg-load-{n}", daemon=True)
            with self._lock:
                self._loaders.append(loader)
            loader.start()

    def _load(self) -> None:
        try:
            while (batch := self._blocks.next_batch()) is not None:
                first, last = batch
                ids = self._blocks.ids[first : last + 1]
                follow = Follow(self._blocks, self._contents, first, last)
                self._restore(f"blocks-{first}", ids, follow)
                with self._lock:
                    self._loaded.update(ids)
                    ready = self._indexes.ready(self._loaded)
                if ready:
                    self._restore(f"indexes-{first}", ready, self._write_contents)
                    with self._lock:
                        self._loaded.update(ready)
        except Stopped:
            pass
        except BaseException as exc:
            with self._lock:
                self._error = self._error or exc
            self._blocks.close(stopped=True)

    def _restore(
        self,
        name: str,
        ids: list[int],
        feed: Callable[[IO[bytes]], None],
        only: Sequence[str] = (),
    ) -> None:
        """The entries ``ids`` (or, with ``only``, those pg_restore options choose), by one
        pg_restore reading what ``feed`` writes."""
        argv = [*self._argv, *only]
        if not only:
            chosen = self._folder / f"{name}.list"
            chosen.write_text("".join(f"{dump_id};\n" for dump_id in ids))
            argv.append(f"--use-list={chosen}")
        feed_tool(argv, self._env, feed, self._fail, self._secrets, self._started)

    def _write_contents(self, stdin: IO[bytes]) -> None:
        stdin.write(self._contents)

    def _started(self, tool: Tool) -> None:
        with self._lock:
            self._tools.append(tool)
            stopped = self._blocks.stopped
        if stopped:
            tool.kill()

    def _raise_failure(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            raise error

    def _stop(self) -> None:
        self._blocks.close(stopped=True)
        with self._lock:
            tools = list(self._tools)
        for tool in tools:
            tool.kill()
        if self._schema is not None:
            self._schema.join()
        with self._lock:
            loaders, self._loaders = self._loaders, []
        for loader in loaders:
            loader.join()

    def _set_offsets(self, check: ArchiveCheck, known: bool) -> None:
        """Each data block's position, stored in the staged dump's contents as pg_dump
        does writing to a file: pg_restore's workers then seek to a table's data instead
        of each reading the dump from the start. A dump this offsite cannot read is
        staged as it is."""
        try:
            if not known:
                check.finish()
            offsets = check.offsets()
        except (ArchiveError, OverflowError):
            return
        for where, stored in offsets:
            os.pwrite(self._blocks.fd, stored, where)


def _dump_id(line: str) -> int:
    head = line.split(";", 1)[0].strip()
    return int(head) if head.isdigit() else -1
