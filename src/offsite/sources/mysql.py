"""MySQL and MariaDB: ``mariadb-dump``/``mysqldump`` in one transaction, rows counted as it streams.

The password goes into a 0600 ``--defaults-extra-file``, never argv. The dump must end
with the tool's "-- Dump completed" trailer; the rows of each table are counted from the
dump's own INSERT statements, so the numbers match what was dumped.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from offsite.errors import RestoreFailed, SourceFailed, TargetNotEmpty
from offsite.names import safe_name
from offsite.sources.base import Dump, Inspection, RestoreOptions, RunContext, Source, SourceOptions
from offsite.sources.dburl import DbURL
from offsite.sources.process import ErrorFactory, Tool, find_tool, pipe_into, run_tool
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader, Readable
from offsite.urls import redact

PACKAGE = "mariadb-client (or mysql-client)"
TRAILER = b"-- Dump completed"
_STRING = re.compile(rb"'(?:[^'\\]|\\.)*'", re.S)
_SYSTEM = "('mysql', 'information_schema', 'performance_schema', 'sys')"


def _quote_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_ident(value: str) -> str:
    return "`" + value.replace("`", "``") + "`"


def _backquoted(text: bytes) -> tuple[str, int]:
    """The backquoted identifier at the start of ``text`` and the length it took."""
    i, name = 1, bytearray()
    while i < len(text):
        if text[i : i + 1] == b"`":
            if text[i + 1 : i + 2] == b"`":
                name += b"`"
                i += 2
                continue
            return name.decode("utf-8", "replace"), i + 1
        name.append(text[i])
        i += 1
    return name.decode("utf-8", "replace"), i


class Client:
    """How to reach one server: the defaults file that holds the secrets, and the tools."""

    def __init__(self, url: str) -> None:
        self.url = DbURL.parse(url, "mysql")
        self.label = redact(url)

    @property
    def database(self) -> str | None:
        return self.url.database

    @contextlib.contextmanager
    def defaults_file(self, folder: Path | None = None) -> Iterator[str]:
        """A 0600 option file with user, password, host, port and any ``?key=value``."""
        lines = ["[client]"]
        u = self.url
        for key, value in (("user", u.user), ("password", u.password), ("host", u.host)):
            if value is not None:
                lines.append(f"{key}={_quote_value(value)}")
        if u.port:
            lines.append(f"port={u.port}")
        if u.host and u.host != "localhost":
            lines.append("protocol=TCP")
        lines += [f"{key}={_quote_value(value)}" for key, value in u.query.items()]
        fd, name = tempfile.mkstemp(prefix="offsite-my-", suffix=".cnf", dir=folder)
        try:
            with os.fdopen(fd, "w") as fh:  # mkstemp made it 0600
                fh.write("\n".join(lines) + "\n")
            yield name
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    def query(self, sql: str, fail: ErrorFactory, database: str | None = None) -> list[list[str]]:
        client = find_tool("mariadb", "mysql", package=PACKAGE)
        with self.defaults_file() as defaults:
            argv = [client, f"--defaults-extra-file={defaults}", "--batch", "--skip-column-names"]
            if database:
                argv.append(f"--database={database}")
            out = run_tool(argv, {}, fail, (self.url.password,), input=sql.encode())
        return [line.split("\t") for line in out.splitlines()]


class RowCounter:
    """Rows per table from the dump's INSERT statements, in either layout the tools use:
    ``INSERT INTO `t` VALUES (…),(…);`` on one line, or one ``(…),`` line per row.

    String literals never span lines (the dump escapes newlines), so each line can be
    stripped of them on its own; what is left holds one '(' per row.
    """

    def __init__(self, qualify: bool) -> None:
        self.rows: dict[str, int] = {}
        self.tail = b""
        self._qualify = qualify  # all databases: name tables "db.table"
        self._db = ""
        self._partial = b""
        self._insert: str | None = None  # the table of the INSERT being read

    def _key(self, table: str) -> str:
        return f"{self._db}.{table}" if self._qualify else table

    def _values(self, key: str, text: bytes) -> None:
        if b"'" in text:
            text = _STRING.sub(b"''", text)
        self.rows[key] = self.rows.get(key, 0) + text.count(b"(")
        self._insert = None if text.rstrip().endswith(b";") else key

    def feed(self, chunk: bytes) -> None:
        self.tail = (self.tail + chunk)[-256:]
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if self._insert is not None:
                self._values(self._insert, line)
            elif line.startswith(b"INSERT INTO `"):
                table, used = _backquoted(line[12:])
                self._values(self._key(table), line[12 + used :])
            elif line.startswith(b"CREATE TABLE `"):
                table, _ = _backquoted(line[13:])
                self.rows.setdefault(self._key(table), 0)
            elif line.startswith(b"USE `"):
                self._db, _ = _backquoted(line[4:])


class MysqlSource(Source):
    kind = "mysql"
    suffix = ".sql"
    target_schemes = ("mysql", "mariadb")

    def __init__(self, name: str, url: str, options: SourceOptions | None = None) -> None:
        super().__init__(name, url, options)
        self.client = Client(url)

    @classmethod
    def default_name(cls, url: str) -> str:
        database = DbURL.parse(url, "mysql").database or "all-databases"
        return safe_name(database, cls.kind)

    @property
    def display(self) -> str:
        return self.client.label

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    @classmethod
    def restore_packages(cls, stats: Mapping[str, Any]) -> list[str]:
        return [] if shutil.which("mariadb") or shutil.which("mysql") else ["mariadb-client"]

    def missing_packages(self) -> list[str]:
        found = shutil.which("mariadb-dump") or shutil.which("mysqldump")
        return (
            []
            if found and (shutil.which("mariadb") or shutil.which("mysql"))
            else ["mariadb-client"]
        )

    def check(self) -> None:
        find_tool("mariadb-dump", "mysqldump", package=PACKAGE)
        self.client.query("SELECT 1;", self._fail, self.client.database)

    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        dumper = find_tool("mariadb-dump", "mysqldump", package=PACKAGE)
        with self.client.defaults_file(context.workdir) as defaults:
            argv = [
                dumper,
                f"--defaults-extra-file={defaults}",
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--default-character-set=utf8mb4",
            ]
            database = self.client.database
            argv += ["--", database] if database else ["--all-databases"]
            dump = Tool(argv, {}, (self.client.url.password,))
            counter = RowCounter(qualify=database is None)

            class Counted:
                def read(self, size: int = -1, /) -> bytes:
                    data = dump.stdout.read(size)
                    counter.feed(data)
                    return data

                def close(self) -> None:
                    dump.stdout.close()

            def finish() -> None:
                dump.wait(self._fail)
                if TRAILER not in counter.tail:
                    raise self._fail(f"{Path(dumper).name} output ends without its completion line")

            try:
                yield Dump(
                    CheckedReader(Counted(), finish),
                    lambda: {"rows": dict(sorted(counter.rows.items()))},
                )
            finally:
                dump.kill()

    # -- restoring ---------------------------------------------------------------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return MysqlRestorer(Client(target), options)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return "| mysql --binary-mode newdb"

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        client = Client(target)

        def fail(why: str) -> RestoreFailed:
            return RestoreFailed(client.database or "server", why)

        database = client.database
        where = (
            f"table_schema = {sql_string(database)}"
            if database
            else f"table_schema NOT IN {_SYSTEM}"
        )
        tables = client.query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE {where} AND table_type = 'BASE TABLE' ORDER BY 1, 2;",
            fail,
        )
        rows: dict[str, int] = {}
        if tables:
            sql = " UNION ALL ".join(
                f"SELECT {sql_string(t if database else f'{s}.{t}')}, COUNT(*) "
                f"FROM {sql_ident(s)}.{sql_ident(t)}"
                for s, t in tables
            )
            rows = {name: int(count) for name, count in client.query(sql + ";", fail)}
        problems: list[str] = []
        checker = find_tool("mariadb-check", "mysqlcheck", package=PACKAGE)
        with client.defaults_file() as defaults:
            argv = [checker, f"--defaults-extra-file={defaults}", "--check"]
            argv += ["--databases", database] if database else ["--all-databases"]
            out = run_tool(argv, {}, fail, (client.url.password,))
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[-1] not in ("OK",) and "." in parts[0]:
                problems.append(line.strip())
        return Inspection(rows, problems, ["rows per table", "CHECK TABLE"])


class MysqlRestorer(Restorer):
    """Into a new database (created here, dropped on failure), an empty one, or with
    ``--force`` over any; a URL without a database takes an all-databases dump."""

    applies_as_it_reads = True  # statements run as they arrive

    def stages_first(self, force: bool) -> bool:
        return force  # statements run as they are read: over data, check the whole first

    def __init__(self, client: Client, options: RestoreOptions) -> None:
        self.client = client
        self.options = options
        self.location = client.label
        self._created = False
        database = client.database
        if database is None:
            if not options.force:
                raise TargetNotEmpty(f"{client.label} (a whole server)")
            self._exists = True
            return
        name = sql_string(database)
        found = client.query(
            f"SELECT (SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = {name}),"
            f" (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {name})"
            f" + (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = {name})"
            f" + (SELECT COUNT(*) FROM information_schema.events WHERE event_schema = {name});",
            self._fail,
        )
        self._exists = found[0][0] != "0"
        if found[0][1] != "0" and not options.force:
            raise TargetNotEmpty(client.label)

    def _fail(self, reason: str) -> RestoreFailed:
        return RestoreFailed(self.client.database or "server", reason)

    def write(self, stream: Readable) -> None:
        database = self.client.database
        if database and not self._exists:
            self.client.query(f"CREATE DATABASE {sql_ident(database)};", self._fail)
            self._created = True
        client = find_tool("mariadb", "mysql", package=PACKAGE)
        with self.client.defaults_file() as defaults:
            argv = [client, f"--defaults-extra-file={defaults}", "--binary-mode"]
            if database:
                argv.append(f"--database={database}")
            pipe_into(argv, {}, stream, self._fail, (self.client.url.password,))

    def commit(self) -> None:
        pass  # the client committed statement by statement

    def discard(self) -> None:
        if self._created and self.client.database:
            with contextlib.suppress(RestoreFailed):
                self.client.query(
                    f"DROP DATABASE IF EXISTS {sql_ident(self.client.database)};", self._fail
                )
            self._created = False
