"""Roles and tablespaces (``pg_dumpall --globals-only``), an entry beside a database's dump
(``--pg-globals``), restored by running the script with psql."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from offsite.errors import RestoreFailed, SourceFailed
from offsite.sources.base import Dump, RestoreOptions, RunContext, Source, SourceOptions
from offsite.sources.postgres.conn import Conn, server_major, tool
from offsite.sources.postgres.dump import PostgresSource
from offsite.sources.process import Tool, pipe_into
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader, Readable

TRAILER = b"PostgreSQL database cluster dump complete"


class _Tail:
    """``pg_dumpall``'s output as it is read, keeping its last bytes for the trailer check."""

    def __init__(self, stdout: Readable) -> None:
        self.stdout = stdout
        self.tail = b""

    def read(self, size: int = -1, /) -> bytes:
        data = self.stdout.read(size)
        self.tail = (self.tail + data)[-256:]
        return data

    def close(self) -> None:
        self.stdout.close()


class PgGlobalsSource(Source):
    """Roles and tablespaces (``pg_dumpall --globals-only``), beside a database's dump."""

    kind = "postgresql-globals"
    suffix = ".sql"
    target_schemes = ("postgresql", "postgres")

    def __init__(self, name: str, url: str, options: SourceOptions | None = None) -> None:
        super().__init__(name, url, options)
        self.conn = Conn.parse(url)

    @classmethod
    def of(cls, source: PostgresSource) -> PgGlobalsSource:
        return cls(f"{source.name}-globals", source.url, source.options)

    @property
    def display(self) -> str:
        return self.conn.label

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def check(self) -> None:
        tool("pg_dumpall", server_major(self.conn, self._fail))

    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        major = server_major(self.conn, self._fail)
        argv = [tool("pg_dumpall", major), "--globals-only", "--no-password"]
        dump = Tool([*argv, f"--dbname={self.conn.conninfo()}"], self.conn.env, self.conn.secrets)
        tail = _Tail(dump.stdout)

        def finish() -> None:
            dump.wait(self._fail)
            if TRAILER not in tail.tail:
                raise self._fail("pg_dumpall output ends without its completion line")

        try:
            yield Dump(CheckedReader(tail, finish))
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

    applies_as_it_reads = True  # statements run as they arrive

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
