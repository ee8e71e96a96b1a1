"""PostgreSQL: ``pg_dump --format=custom``, checked and counted as it streams.

The dump passes through ``pg_restore --file=-`` on its way out: that reads every byte
(a truncated dump fails it, where ``--list`` would pass), and the COPY blocks of the SQL
it prints give exact rows per table, counted in the dump's own snapshot. The password
reaches the tools as ``PGPASSWORD`` only; the connection string on argv has none.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from glob import glob
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from offsite.errors import BadInput, MalformedURL, RestoreFailed, SourceFailed, TargetNotEmpty
from offsite.names import safe_name
from offsite.pipeline import Pipeline
from offsite.sources.base import Inspection, RestoreOptions, Restorer, Source
from offsite.sources.dburl import DbURL
from offsite.sources.process import ErrorFactory, SideCheck, Tool, pipe_into, run_tool
from offsite.streams import CheckedReader, Readable, copy
from offsite.urls import redact

_VERSION = re.compile(rb"\(PostgreSQL\)\s+(\d+)")
_CLIENT_DIRS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # PGDG RPMs
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew
)
_SYSTEM_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp'"
)
# Tables whose rows a dump holds: ordinary tables and partitions (partitioned parents hold
# none), minus tables that belong to an extension.
_TABLES = f"""
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {_SYSTEM_SCHEMAS}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""
_USER_OBJECTS = f"""
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_SYSTEM_SCHEMAS})
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_SYSTEM_SCHEMAS})
     + (SELECT count(*) FROM pg_largeobject_metadata)
"""


# -- connecting ----------------------------------------------------------------------


@dataclass(frozen=True)
class Conn:
    """A connection string with no password in it, and the environment that carries it."""

    url: DbURL
    label: str  # the URL as it may be shown

    @classmethod
    def parse(cls, url: str) -> Conn:
        parsed = DbURL.parse(url, "postgresql")
        if not parsed.database:
            raise MalformedURL(
                "postgresql", redact(url), "name a database: postgresql://user@host:5432/db"
            )
        return cls(parsed, redact(url))

    @property
    def database(self) -> str:
        assert self.url.database is not None
        return self.url.database

    def conninfo(self, database: str | None = None) -> str:
        u = self.url
        netloc = quote(u.user, safe="") + "@" if u.user else ""
        if u.host:
            netloc += f"[{u.host}]" if ":" in u.host else quote(u.host, safe="")
        if u.port:
            netloc += f":{u.port}"
        query = f"?{urlencode(u.query)}" if u.query else ""
        return f"postgresql://{netloc}/{quote(database or self.database, safe='')}{query}"

    @property
    def env(self) -> dict[str, str]:
        env = {"PGCONNECT_TIMEOUT": os.environ.get("PGCONNECT_TIMEOUT", "15")}
        if self.url.password is not None:
            env["PGPASSWORD"] = self.url.password
        return env

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self.url.password,)

    def psql(self, sql: str, fail: ErrorFactory, database: str | None = None, **vars: str) -> str:
        """Run ``sql`` (psql variables allowed) and return its unaligned output."""
        argv = [tool("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-F", "\x1f"]
        for key, value in vars.items():
            argv += ["-v", f"{key}={value}"]
        argv += ["--no-password", "-d", self.conninfo(database)]
        return run_tool(argv, self.env, fail, self.secrets, input=sql.encode())


# -- client tools --------------------------------------------------------------------


@cache
def _major(binary: str) -> int | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, check=False).stdout
    except OSError:
        return None
    m = _VERSION.search(out)
    return int(m.group(1)) if m else None


def _candidates(name: str) -> list[str]:
    found = []
    on_path = shutil.which(name)
    if on_path:
        found.append(on_path)
    dirs = [d for pattern in _CLIENT_DIRS for d in glob(pattern)]
    for folder in sorted(dirs, key=lambda d: _major(os.path.join(d, name)) or 0, reverse=True):
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK):
            found.append(path)
    return found


def tool(name: str, server_major: int | None = None) -> str:
    """The client tool ``name``, at least as new as the server; the newest otherwise."""
    candidates = _candidates(name)
    if not candidates:
        raise BadInput(f"{name} not found: install the PostgreSQL client (postgresql-client)")
    if server_major is None:
        return max(candidates, key=lambda p: _major(p) or 0)
    for path in candidates:
        major = _major(path)
        if major is not None and major >= server_major:
            return path
    newest = max((_major(p) or 0) for p in candidates)
    raise BadInput(
        f"{name} {newest} cannot dump a PostgreSQL {server_major} server: install "
        f"postgresql-client-{server_major} (the actions do on Ubuntu runners)"
    )


def server_major(conn: Conn, fail: ErrorFactory, database: str | None = None) -> int:
    out = conn.psql("SHOW server_version_num;", fail, database).strip()
    try:
        return int(out) // 10000
    except ValueError:
        raise fail(f"unexpected server_version_num {out!r}") from None


# -- row counting --------------------------------------------------------------------


def _identifiers(text: str) -> list[str]:
    """The dotted identifiers at the start of ``text``: '"My S"."t" (a)' → ['My S', 't']."""
    names: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == '"':
            j, name = i + 1, []
            while j < len(text):
                if text[j] == '"':
                    if text[j + 1 : j + 2] == '"':
                        name.append('"')
                        j += 2
                        continue
                    break
                name.append(text[j])
                j += 1
            names.append("".join(name))
            i = j + 1
        else:
            j = i
            while j < len(text) and text[j] not in ". (":
                j += 1
            names.append(text[i:j])
            i = j
        if text[i : i + 1] != ".":
            break
        i += 1
    return names


class CopyCounter:
    """Counts the data lines of each ``COPY … FROM stdin;`` block in pg_restore's SQL."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self._buf = b""  # always starts at the beginning of a line
        self._table: str | None = None
        self._count = 0

    def feed(self, chunk: bytes) -> None:
        buf = self._buf + chunk
        pos = 0
        while pos < len(buf):
            if self._table is None:
                start = pos if buf.startswith(b"COPY ", pos) else buf.find(b"\nCOPY ", pos)
                if start < 0:
                    last = buf.rfind(b"\n", pos)
                    pos = last + 1 if last >= 0 else pos
                    break
                start += 0 if start == pos and buf.startswith(b"COPY ", pos) else 1
                end = buf.find(b"\n", start)
                if end < 0:
                    pos = start
                    break
                names = _identifiers(buf[start + 5 : end].decode("utf-8", "replace"))
                self._table, self._count = ".".join(names), 0
                pos = end + 1
            elif buf.startswith(b"\\.\n", pos):
                self.rows[self._table] = self._count
                self._table = None
                pos += 3
            else:
                term = buf.find(b"\n\\.\n", pos)
                if term >= 0:
                    self._count += buf.count(b"\n", pos, term + 1)
                    pos = term + 1
                    continue
                last = buf.rfind(b"\n", pos)
                if last >= 0:
                    self._count += buf.count(b"\n", pos, last + 1)
                    pos = last + 1
                break
        self._buf = buf[pos:]


def count_rows(conn: Conn, fail: ErrorFactory, database: str | None = None) -> dict[str, int]:
    """Exact rows per table, counted in the database."""
    sql = (
        "SELECT format('SELECT %L, count(*) FROM %I.%I', n || '.' || r, n, r) "
        f"FROM ({_TABLES}) AS t(n, r) \\gexec\n"
    )
    out = conn.psql(sql, fail, database)
    rows: dict[str, int] = {}
    for line in out.splitlines():
        name, sep, count = line.rpartition("\x1f")
        if sep:
            rows[name] = int(count)
    return rows


# -- the source ----------------------------------------------------------------------


class PostgresSource(Source):
    kind = "postgresql"
    suffix = ".pgdump"
    target_schemes = ("postgresql", "postgres")

    def __init__(self, name: str, url: str) -> None:
        super().__init__(name, url)
        self.conn = Conn.parse(url)
        self._major: int | None = None

    @classmethod
    def default_name(cls, url: str) -> str:
        database = DbURL.parse(url, "postgresql").database or "postgres"
        return safe_name(database, cls.kind)

    @property
    def display(self) -> str:
        return self.conn.label

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def missing_packages(self) -> list[str]:
        """``postgresql-client`` when there is no client at all; else, once the server
        answers, ``postgresql-client-N`` when no pg_dump is at least as new as it."""
        if not _candidates("psql") or not _candidates("pg_dump"):
            return ["postgresql-client"]
        major = server_major(self.conn, self._fail)
        if any((_major(p) or 0) >= major for p in _candidates("pg_dump")):
            return []
        return [f"postgresql-client-{major}"]

    def check(self) -> None:
        """Reach the server and find a pg_dump at least as new (exit 2 otherwise)."""
        self._major = server_major(self.conn, self._fail)
        tool("pg_dump", self._major)

    @contextlib.contextmanager
    def stream(self, pipeline: Pipeline, workdir: Path) -> Iterator[Readable]:
        major = self._major or server_major(self.conn, self._fail)
        argv = [
            tool("pg_dump", major),
            "--format=custom",
            "--compress=0",  # offsite compresses; pg_dump's zlib would be slower and worse
            "--no-password",
            f"--dbname={self.conn.conninfo()}",
        ]
        dump = Tool(argv, self.conn.env, self.conn.secrets)
        counter = CopyCounter()
        check = SideCheck(dump.stdout, [tool("pg_restore", major), "--file=-"], {}, counter.feed)

        def finish() -> None:
            dump.wait(self._fail)
            check.finish(lambda why: self._fail(f"self-check failed: {why}"))
            self.stats = {"rows": dict(sorted(counter.rows.items())), "server_major": major}

        try:
            yield CheckedReader(check, finish)
        finally:
            dump.kill()
            check.kill()

    # -- restoring ---------------------------------------------------------------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return PgRestorer(Conn.parse(target), options)

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


class PgGlobalsSource(Source):
    """Roles and tablespaces (``pg_dumpall --globals-only``), beside a database's dump."""

    kind = "postgresql-globals"
    suffix = ".sql"
    target_schemes = ("postgresql", "postgres")
    TRAILER = b"PostgreSQL database cluster dump complete"

    def __init__(self, name: str, url: str) -> None:
        super().__init__(name, url)
        self.conn = Conn.parse(url)
        self._major: int | None = None

    @classmethod
    def of(cls, source: PostgresSource) -> PgGlobalsSource:
        return cls(f"{source.name}-globals", source.url)

    @property
    def display(self) -> str:
        return self.conn.label

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def check(self) -> None:
        self._major = server_major(self.conn, self._fail)
        tool("pg_dumpall", self._major)

    @contextlib.contextmanager
    def stream(self, pipeline: Pipeline, workdir: Path) -> Iterator[Readable]:
        major = self._major or server_major(self.conn, self._fail)
        argv = [tool("pg_dumpall", major), "--globals-only", "--no-password"]
        dump = Tool([*argv, f"--dbname={self.conn.conninfo()}"], self.conn.env, self.conn.secrets)
        tail = bytearray()

        class Tail:
            def read(self, size: int = -1, /) -> bytes:
                data = dump.stdout.read(size)
                tail[:] = (bytes(tail) + data)[-256:]
                return data

            def close(self) -> None:
                dump.stdout.close()

        def finish() -> None:
            dump.wait(self._fail)
            if self.TRAILER not in tail:
                raise self._fail("pg_dumpall output ends without its completion line")

        try:
            yield CheckedReader(Tail(), finish)
        finally:
            dump.kill()

    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return _GlobalsRestorer(Conn.parse(target))

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return '| psql -d "$DATABASE_URL"'


class _GlobalsRestorer(Restorer):
    """Runs the roles script with psql. Roles that exist already are reported by psql
    and left as they are; the other statements still run."""

    def stages_first(self, force: bool) -> bool:
        return True  # roles go into a live server as psql reads them

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.location = conn.label

    def write(self, stream: Readable) -> None:
        argv = [tool("psql"), "-X", "-q", "--no-password", "-d", self.conn.conninfo()]
        pipe_into(
            argv,
            self.conn.env,
            stream,
            lambda why: RestoreFailed(self.conn.database, why),
            self.conn.secrets,
        )

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        pass


class PgRestorer(Restorer):
    """Into a new database (created here, dropped again on failure) or an empty one."""

    def __init__(self, conn: Conn, options: RestoreOptions) -> None:
        self.conn = conn
        self.options = options
        self.location = conn.label
        if options.jobs < 1:
            raise BadInput("--jobs must be at least 1")
        self._major = server_major(conn, self._fail_on("the server"), "postgres")
        self._exists = self._database_exists()
        self._created = False
        self._staged: Path | None = None
        if self._exists:
            objects = conn.psql(_USER_OBJECTS, self._fail).strip()
            if objects not in ("", "0") and not options.force:
                raise TargetNotEmpty(conn.label)

    def stages_first(self, force: bool) -> bool:
        # pg_restore applies as it reads; with --jobs the dump is staged on disk anyway
        return force and self.options.jobs == 1

    def _fail(self, reason: str) -> RestoreFailed:
        return RestoreFailed(self.conn.database, reason)

    def _fail_on(self, database: str) -> ErrorFactory:
        return lambda why: RestoreFailed(self.conn.database, f"cannot reach {database}: {why}")

    def _database_exists(self) -> bool:
        out = self.conn.psql(
            "SELECT count(*) FROM pg_database WHERE datname = :'name';",
            self._fail_on("the server"),
            database="postgres",
            name=self.conn.database,
        )
        return out.strip() == "1"

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
            # pg_restore --jobs needs a seekable file: stage the decoded dump, restore
            # from it in ``commit`` once its checksum is known to be right.
            fd, name = tempfile.mkstemp(prefix="offsite-restore-", suffix=".pgdump")
            self._staged = Path(name)
            with os.fdopen(fd, "wb") as out:
                copy(stream, out.write)
            return
        # One transaction: a failed restore leaves the database as empty as it was.
        argv = [*self._restore_argv(), "--single-transaction"]
        pipe_into(argv, self.conn.env, stream, self._fail, self.conn.secrets)

    def commit(self) -> None:
        if self._staged is None:
            return
        argv = [*self._restore_argv(), f"--jobs={self.options.jobs}", str(self._staged)]
        try:
            run_tool(argv, self.conn.env, self._fail, self.conn.secrets)
        finally:
            self._staged.unlink()
            self._staged = None

    def discard(self) -> None:
        if self._staged is not None:
            with contextlib.suppress(OSError):
                self._staged.unlink()
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
