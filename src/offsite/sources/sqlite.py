"""SQLite: a consistent copy through the online backup API, checked before it is stored.

The copy is the one staged file in offsite: ``PRAGMA integrity_check`` needs a
database, not a stream. It lives in the run's work folder and is removed after.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from offsite.errors import MalformedURL, RestoreFailed, SourceFailed, SourceNotFound
from offsite.sources.base import Dump, Inspection, RestoreOptions, RunContext, Source
from offsite.sources.restorer import FileRestorer, Restorer
from offsite.stream.pipeline import Pipeline


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return [] if rows == ["ok"] else rows


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    return {
        t: conn.execute(f"SELECT count(*) FROM {_quote_ident(t)}").fetchone()[0] for t in tables
    }


class SqliteSource(Source):
    kind = "sqlite"
    suffix = ".sqlite"
    target_schemes = ("sqlite", "file")

    @classmethod
    def local_target(cls, url: str) -> str:
        if url.startswith("sqlite://"):
            rest = url[len("sqlite://") :]
            if not rest.startswith("/"):
                raise MalformedURL("sqlite", url, "use sqlite:///abs/path.db or sqlite:rel/path.db")
            return rest
        if url.startswith("sqlite:"):
            return url[len("sqlite:") :]
        return url

    @classmethod
    def default_name(cls, url: str) -> str:
        return super().default_name(str(Path(cls.local_target(url)).with_suffix("")))

    @property
    def path(self) -> Path:
        return Path(self.local_target(self.url)).expanduser()

    def check(self) -> None:
        if not self.path.is_file():
            raise SourceNotFound(self.display)
        try:
            with open(self.path, "rb"):
                pass
        except OSError:
            raise SourceNotFound(self.display) from None

    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        copy = context.workdir / f"{self.name}.sqlite"
        try:
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
            try:
                with (
                    contextlib.closing(sqlite3.connect(uri, uri=True)) as src,
                    contextlib.closing(sqlite3.connect(copy)) as dst,
                ):
                    src.backup(dst, pages=4096)
                    problems = integrity_problems(dst)
                    if problems:
                        raise SourceFailed(self.name, f"integrity_check failed: {problems[0]}")
                    rows = row_counts(dst)
            except sqlite3.Error as exc:
                raise SourceFailed(self.name, f"cannot back up SQLite database: {exc}") from None
            with open(copy, "rb") as fh:
                yield Dump(fh, lambda: {"rows": rows})
        finally:
            with contextlib.suppress(OSError):
                copy.unlink()

    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return _SqliteRestorer(Path(cls.local_target(target)).expanduser(), options.force)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return f"> {name}.db && sqlite3 {name}.db 'PRAGMA integrity_check'"

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        path = Path(cls.local_target(target)).expanduser().resolve()
        uri = f"file:{quote(str(path))}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                return Inspection(
                    rows=row_counts(conn),
                    problems=integrity_problems(conn),
                    checks=["rows per table", "PRAGMA integrity_check"],
                )
        except sqlite3.Error as exc:
            return Inspection(problems=[f"cannot open the restored database: {exc}"])


class _SqliteRestorer(FileRestorer):
    def check_staged(self, path: Path) -> None:
        try:
            with contextlib.closing(sqlite3.connect(path)) as conn:
                problems = integrity_problems(conn)
        except sqlite3.Error as exc:
            raise RestoreFailed(
                path.name, f"restored file is not a SQLite database: {exc}"
            ) from None
        if problems:
            raise RestoreFailed(path.name, f"integrity_check failed: {problems[0]}")

    def commit(self) -> None:
        # A stale WAL or shared-memory file beside the old database would corrupt the new one.
        for suffix in ("-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                self.target.with_name(self.target.name + suffix).unlink()
        super().commit()
