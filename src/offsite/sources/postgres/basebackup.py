"""A base backup for point-in-time recovery (SPEC §8): ``pg_basebackup`` in tar format,
streamed through the usual pipeline as entry kind ``pg-base``, and checked as it passes.

The check that runs as the bytes pass is ``basecheck.py``'s; the restore into a data
directory set up to recover is ``recovery.py``'s. ``stats`` get what the check found: the
system identifier, the timeline, the start and stop LSN and time.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from offsite.errors import BadInput, RestoreFailed
from offsite.names import safe_name
from offsite.sources.base import Dump, Inspection, RestoreOptions, RunContext
from offsite.sources.dburl import DbURL
from offsite.sources.postgres.archive import SelfChecked
from offsite.sources.postgres.basecheck import BaseBackupCheck, TarError
from offsite.sources.postgres.conn import server_major, tool
from offsite.sources.postgres.dump import ServerSource
from offsite.sources.postgres.recovery import PgBaseRestorer
from offsite.sources.postgres.rows import count_rows
from offsite.sources.postgres.scratch import ScratchServer
from offsite.sources.process import Tool
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader


class PgBaseSource(ServerSource):
    """``backup postgresql://… --physical``: the whole cluster, for point-in-time recovery."""

    kind = "pg-base"
    suffix = ".tar"
    target_suffix = ""  # a data directory
    client = "pg_basebackup"

    @classmethod
    def default_name(cls, url: str) -> str:
        return safe_name("pg-base", cls.kind)

    def check(self) -> None:
        """A pg_basebackup as new as the server, and a role allowed to take a base backup."""
        tool("pg_basebackup", server_major(self.conn, self._fail))
        may = self.conn.psql(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user;",
            self._fail,
        ).strip()
        if may != "t":
            user = self.conn.url.user or "this role"
            raise BadInput(
                f"{user} may not take a base backup: ALTER ROLE {user} REPLICATION "
                "(and let pg_hba.conf allow its 'replication' connections)"
            )
        if not self.options.wal_included:
            self._check_archiving()

    def _check_archiving(self) -> None:
        """A base backup without its WAL is only as good as the archive: refuse one the
        server cannot archive for (pg_basebackup would wait for the archiver forever)."""
        mode, failing, wal, when = (
            self.conn.psql(
                "SELECT current_setting('archive_mode'), "
                "coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false), "
                "coalesce(last_failed_wal, ''), coalesce(last_failed_time::text, '') "
                "FROM pg_stat_archiver;",
                self._fail,
            )
            .rstrip("\n")
            .split("\x1f")
        )  # fmt: skip  (not strip(): \x1f is whitespace to it)
        if mode == "off":
            raise BadInput(
                "archive_mode is off on this server: a base backup needs its WAL archived "
                "(archive_command = 'offsite wal push %p --to DEST'), or take it --with-wal"
            )
        if failing == "t":
            raise BadInput(
                f"archiving is failing on this server (it last failed on {wal} at {when}): "
                "fix archive_command first, or take the base backup --with-wal"
            )

    # -- restoring ---------------------------------------------------------------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return cls.restorer_for(target, options, {})

    @classmethod
    def restorer_for(
        cls, target: str, options: RestoreOptions, stats: Mapping[str, Any]
    ) -> Restorer:
        return PgBaseRestorer(Path(cls.local_target(target)).expanduser(), options, stats)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return f"| (mkdir -m 700 -p {name} && tar -xf - -C {name})"

    @classmethod
    def inspect_entry(cls, target: str, source: str, stats: dict[str, Any]) -> Inspection:
        """A drill: a throwaway server on the restored data directory replays the archive
        to the target and promotes; then the rows of every table are counted, the last
        replayed transaction's time read, and the server stopped and removed."""
        datadir = Path(cls.local_target(target)).expanduser()
        major = stats.get("server_major")
        if not isinstance(major, int):
            return Inspection(problems=["the base backup does not record its server version"])
        role = DbURL.parse(source, "postgresql").user or "postgres"
        server = ScratchServer(datadir, major, role)
        started = time.monotonic()
        try:
            problem = server.start()
            recovered = time.monotonic() - started
            if problem is not None:
                return Inspection(problems=[f"recovery did not reach its target: {problem}"],
                                  recovery_seconds=recovered)  # fmt: skip
            return _inspect_recovered(server, recovered)
        finally:
            server.close()
            shutil.rmtree(datadir, ignore_errors=True)

    # -- dumping -------------------------------------------------------------------------
    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        major = server_major(self.conn, self._fail)
        argv = [
            tool("pg_basebackup", major),
            "--pgdata=-",
            "--format=tar",
            f"--wal-method={'fetch' if self.options.wal_included else 'none'}",
            "--checkpoint=fast",
            "--manifest-checksums=SHA256",
            "--no-password",
            f"--dbname={self.conn.conninfo()}",
        ]
        size = self.conn.psql(
            "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size';", self._fail
        ).strip()
        backup = Tool(argv, self.conn.env, self.conn.secrets)
        check = BaseBackupCheck()
        stats: dict[str, Any] = {}

        def finish() -> None:
            backup.wait(self._fail)
            try:
                stats.update(check.finish(), server_major=major)
                if size.isdigit():
                    stats["wal_segment_size"] = int(size)
            except TarError as exc:
                raise self._fail(f"self-check failed: {exc}") from None

        try:
            checked = SelfChecked(backup.stdout, check, self._fail, (TarError,))
            yield Dump(CheckedReader(checked, finish), lambda: stats)
        finally:
            backup.kill()


def _inspect_recovered(server: ScratchServer, recovered: float) -> Inspection:
    def fail(why: str) -> RestoreFailed:
        return RestoreFailed("drill", why)

    conn = server.conn()
    last = conn.psql(
        "SELECT coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'none');",
        fail,
    ).strip()
    databases = conn.psql(
        "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1;",
        fail,
    ).split()
    rows: dict[str, int] = {}
    for database in databases:
        counted = count_rows(server.conn(database), fail)
        rows.update({f"{database}/{table}": n for table, n in counted.items()})
    checks = [
        f"recovered and promoted in {recovered:.1f} s",
        f"last replayed transaction at {last}",
        f"rows counted in {len(rows)} tables of {len(databases)} databases",
    ]
    return Inspection(rows=rows, checks=checks, recovery_seconds=recovered)
