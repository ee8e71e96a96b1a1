"""A database: ``pg_dump --format=custom``, checked and counted as it streams, and restored
with ``pg_restore`` into a new or empty database.

The dump is checked as it streams by (``archive.py``): every byte of pg_dump's custom
format is read and framed (a truncated dump fails, where ``pg_restore --list`` would
pass), and the COPY rows of each table are counted, in the dump's own snapshot. A pg_dump
newer than the archive versions offsite knows is checked by ``pg_restore --file=-`` as
before. The password reaches the tools as ``PGPASSWORD`` only; the connection string on
argv has none.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from offsite.errors import BadInput, RestoreFailed, SourceFailed, TargetNotEmpty
from offsite.github import gha
from offsite.names import safe_name
from offsite.sources.base import Dump, Inspection, RestoreOptions, RunContext, Source, SourceOptions
from offsite.sources.dburl import DbURL
from offsite.sources.postgres.archive import ArchiveCheck, SelfChecked
from offsite.sources.postgres.conn import (
    Conn,
    candidates,
    client_major,
    missing_client,
    server_major,
    tool,
)
from offsite.sources.postgres.parallel import StagedRestore
from offsite.sources.postgres.rows import USER_OBJECTS, CopyCounter, count_rows
from offsite.sources.postgres.toc import ArchiveError
from offsite.sources.process import ErrorFactory, SideCheck, Tool, pipe_into, run_tool
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader, Readable
from offsite.table import human_size

MAX_OFFSETS = 50_000  # data blocks whose offsets a manifest records (restore --jobs)
NEWEST_CLIENT = 17  # the newest pg_dump whose archive ``archive`` reads; past it, pg_restore


class ServerSource(Source):
    """What a PostgreSQL source has whatever it takes: the connection, its failures, and
    the client package its tool (``client``) comes in."""

    client: str

    def __init__(self, name: str, url: str, options: SourceOptions | None = None) -> None:
        super().__init__(name, url, options)
        self.conn = Conn.parse(url)

    @property
    def display(self) -> str:
        return self.conn.label

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def missing_packages(self) -> list[str]:
        return missing_client(self.conn, self._fail, self.client)


class PostgresSource(ServerSource):
    kind = "postgresql"

    @classmethod
    def restore_packages(cls, stats: Mapping[str, Any]) -> list[str]:
        """pg_restore at least as new as the server the dump came from (a dump of
        PostgreSQL 17 does not restore with pg_restore 16)."""
        major = stats.get("server_major")
        clients = candidates("pg_restore")
        if not isinstance(major, int) or isinstance(major, bool) or not 9 <= major < 100:
            return [] if clients else ["postgresql-client"]
        if any((client_major(p) or 0) >= major for p in clients):
            return []
        return [f"postgresql-client-{major}"]

    suffix = ".pgdump"
    target_schemes = ("postgresql", "postgres")
    client = "pg_dump"

    @classmethod
    def default_name(cls, url: str) -> str:
        database = DbURL.parse(url, "postgresql").database or "postgres"
        return safe_name(database, cls.kind)

    def check(self) -> None:
        """Reach the server and find a pg_dump at least as new (exit 2 otherwise)."""
        tool("pg_dump", server_major(self.conn, self._fail))

    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        major = server_major(self.conn, self._fail)
        dumper = tool("pg_dump", major)
        argv = [
            dumper,
            "--format=custom",
            "--compress=0",  # offsite compresses; pg_dump's zlib would be slower and worse
            "--no-password",
            f"--dbname={self.conn.conninfo()}",
        ]
        dump = Tool(argv, self.conn.env, self.conn.secrets)
        if (client_major(dumper) or 0) <= NEWEST_CLIENT:
            with self._checked_here(dump, major) as checked:
                yield checked
            return
        # a pg_dump newer than the archive versions offsite knows: pg_restore reads it
        counter = CopyCounter()
        check = SideCheck(dump.stdout, [tool("pg_restore", major), "--file=-"], {}, counter.feed)

        def finish() -> None:
            dump.wait(self._fail)
            check.finish(lambda why: self._fail(f"self-check failed: {why}"))

        def stats() -> dict[str, Any]:
            return {"rows": dict(sorted(counter.rows.items())), "server_major": major}

        try:
            yield Dump(CheckedReader(check, finish), stats)
        finally:
            dump.kill()
            check.kill()

    @contextlib.contextmanager
    def _checked_here(self, dump: Tool, major: int) -> Iterator[Dump]:
        """The dump checked as it streams through this process (``archive``): every byte
        framed, rows counted, no second process rendering it as SQL."""
        check = ArchiveCheck()

        def finish() -> None:
            dump.wait(self._fail)
            try:
                check.finish()
            except ArchiveError as exc:
                raise self._fail(f"self-check failed: {exc}") from None

        def stats() -> dict[str, Any]:
            found: dict[str, Any] = {"rows": dict(sorted(check.rows.items())),
                                     "server_major": major}  # fmt: skip
            starts = check.starts()
            if len(starts) <= MAX_OFFSETS:  # a restore walks the dump to them otherwise
                found["data_offsets"] = starts
            return found

        try:
            yield Dump(CheckedReader(SelfChecked(dump.stdout, check, self._fail), finish), stats)
        finally:
            dump.kill()

    # -- restoring ---------------------------------------------------------------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return PgRestorer(Conn.parse(target), options)

    @classmethod
    def restorer_for(
        cls, target: str, options: RestoreOptions, stats: Mapping[str, Any]
    ) -> Restorer:
        """With the data blocks' offsets the backup recorded: ``restore --jobs`` finds
        each table's data without walking the dump's chunks to it."""
        return PgRestorer(Conn.parse(target), options, stats.get("data_offsets"))

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return f'> {name}.pgdump && pg_restore --no-owner -d "$DATABASE_URL" {name}.pgdump'

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        """Rows per table, and pg_amcheck over heap and indexes where amcheck installs."""
        conn = Conn.parse(target)

        def fail(why: str) -> RestoreFailed:
            return RestoreFailed(conn.database, why)

        rows = count_rows(conn, fail)
        try:
            conn.psql("CREATE EXTENSION IF NOT EXISTS amcheck;", fail)
        except RestoreFailed as exc:
            return Inspection(rows, checks=["rows per table", f"no amcheck ({exc.args[1]})"])
        argv = [tool("pg_amcheck"), "--no-password", "--heapallindexed", conn.conninfo()]
        try:
            run_tool(argv, conn.env, fail, conn.secrets)
            problems: list[str] = []
        except RestoreFailed as exc:
            problems = [str(exc.args[1])]
        return Inspection(rows, problems, ["rows per table", "pg_amcheck --heapallindexed"])


MAX_DEFAULT_JOBS = 8  # workers without --jobs, however many cores (connections, memory)


def staging_short(size: int) -> str | None:
    """Why TMPDIR cannot hold a decoded dump of ``size`` bytes (with a margin), or None."""
    folder = tempfile.gettempdir()
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    need = size + size // 10 + (64 << 20)
    if free >= need:
        return None
    return (f"would stage the decoded dump ({human_size(size)}) in TMPDIR ({folder}), "
            f"which has {human_size(free)} free")  # fmt: skip


def default_jobs() -> int:
    """``restore``'s workers when ``--jobs`` is not given, into a database it creates:
    the cores this process may run on (a failure there drops the database, so nothing is
    lost by not restoring in one transaction)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class PgRestorer(Restorer):
    """Into a new database (created here, dropped again on failure) or an empty one."""

    applies_as_it_reads = True  # statements run as they arrive

    def __init__(self, conn: Conn, options: RestoreOptions, offsets: object = None) -> None:
        self.conn = conn
        self.location = conn.label
        self._offsets = offsets
        if options.jobs < 0:
            raise BadInput("--jobs must be at least 1")
        self._major = server_major(conn, self._fail_on("the server"), "postgres")
        self._exists, free = self._database_exists()
        if options.jobs == 0:  # not given: one worker per core into a database made here
            jobs = 1 if self._exists else self._default_jobs(free, options.size)
            options = replace(options, jobs=jobs)
        elif options.jobs > 1 and (why := staging_short(options.size)):
            raise BadInput(f"--jobs {options.jobs} {why}: free space, point TMPDIR elsewhere, "
                           "or restore with --jobs 1 (streamed)")  # fmt: skip
        self.options = options
        self._created = False
        self._staged: StagedRestore | None = None
        if self._exists:
            objects = conn.psql(USER_OBJECTS, self._fail).strip()
            if objects not in ("", "0") and not options.force:
                raise TargetNotEmpty(conn.label)

    def stages_first(self, force: bool) -> bool:
        # pg_restore applies as it reads; with --jobs the dump is staged on disk anyway
        return force and self.options.jobs == 1

    def _fail(self, reason: str) -> RestoreFailed:
        return RestoreFailed(self.conn.database, reason)

    def _fail_on(self, database: str) -> ErrorFactory:
        return lambda why: RestoreFailed(self.conn.database, f"cannot reach {database}: {why}")

    def _database_exists(self) -> tuple[bool, int]:
        """Whether the target database exists, and how many more connections the server
        takes from a user who is not a superuser."""
        out = self.conn.psql(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname = :'name'), "
            "current_setting('max_connections')::int "
            "- current_setting('superuser_reserved_connections')::int "
            "- (SELECT count(*) FROM pg_stat_activity);",
            self._fail_on("the server"),
            database="postgres",
            name=self.conn.database,
        )
        exists, _, free = out.strip().partition("\x1f")
        return exists == "1", int(free) if free.lstrip("-").isdigit() else 1

    def _default_jobs(self, free_connections: int, size: int) -> int:
        """One worker per core, as the server's free connections and TMPDIR's free space
        allow (the decoded dump is staged there); 1, saying why, when they do not."""
        jobs = min(default_jobs(), MAX_DEFAULT_JOBS, max(free_connections - 2, 1))
        why = staging_short(size) if jobs > 1 else None
        if why:
            gha.warn(f"restoring {self.conn.label} in one transaction: parallel workers "
                     f"{why}")  # fmt: skip
            return 1
        return jobs

    def _restore_argv(self) -> list[str]:
        argv = [tool("pg_restore"), "--no-password", "--exit-on-error"]
        if self.options.no_owner:
            argv.append("--no-owner")
        if self._exists and self.options.force:
            argv += ["--clean", "--if-exists"]
        return [*argv, f"--dbname={self.conn.conninfo()}"]

    def write(self, stream: Readable) -> None:
        if not self._exists:
            self.conn.psql(
                'CREATE DATABASE :"name";', self._fail, database="postgres", name=self.conn.database
            )
            self._created = True
        if self.options.jobs > 1:
            # pg_restore --jobs reads a seekable file: the dump is staged, and into a new
            # database restored as it arrives; the rest follows in ``commit``, once the
            # entry's checksum matched.
            self._staged = StagedRestore(
                self._restore_argv(), self.conn.env, self.conn.secrets, self._fail,
                self.options.jobs, early=self._created, recorded=self._offsets,
            )  # fmt: skip
            self._staged.write(stream)
            return
        # One transaction: a failed restore leaves the database as empty as it was.
        argv = [*self._restore_argv(), "--single-transaction"]
        pipe_into(argv, self.conn.env, stream, self._fail, self.conn.secrets)

    def commit(self) -> None:
        if self._staged is not None:
            staged, self._staged = self._staged, None
            staged.finish()

    def discard(self) -> None:
        if self._staged is not None:
            self._staged.discard()
            self._staged = None
        if self._created:
            force = " WITH (FORCE)" if self._major >= 13 else ""
            with contextlib.suppress(RestoreFailed):
                self.conn.psql(
                    f'DROP DATABASE IF EXISTS :"name"{force};',
                    self._fail,
                    database="postgres",
                    name=self.conn.database,
                )
            self._created = False
