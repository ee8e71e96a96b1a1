"""Redis: an RDB snapshot from ``redis-cli --rdb -``, checked by ``redis-check-rdb`` as it streams.

The snapshot covers every logical database of the instance. The password reaches
redis-cli as ``REDISCLI_AUTH``. Restoring writes the ``.rdb`` file (checked again) for
the swap docs/guides/databases.md describes: stop Redis, put the file in its ``dir``, start it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from offsite.errors import BadInput, RestoreFailed, SourceFailed
from offsite.sources.base import Dump, Inspection, RestoreOptions, RunContext, Source, SourceOptions
from offsite.sources.dburl import DbURL
from offsite.sources.process import ErrorFactory, SideCheck, Tool, find_tool, run_tool
from offsite.sources.restorer import FileRestorer, Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader
from offsite.urls import redact, scheme_of

PACKAGE = "redis-tools"
_INFO = re.compile(rb"\[info\] (\d+) (keys read|expires)")


def rdb_counts(report: bytes) -> dict[str, int]:
    """``keys`` and ``expires`` from redis-check-rdb's report."""
    found = {m.group(2): int(m.group(1)) for m in _INFO.finditer(report)}
    return {"keys": found.get(b"keys read", 0), "expires": found.get(b"expires", 0)}


def check_rdb(path: Path, fail: ErrorFactory) -> dict[str, int]:
    out = run_tool([find_tool("redis-check-rdb", package=PACKAGE), str(path)], {}, fail)
    return rdb_counts(out.encode())


class RedisSource(Source):
    kind = "redis"
    suffix = ".rdb"
    target_hint = (
        "--into file:///path/dump.rdb, then swap it into the server as docs/guides/databases.md "
        "shows"
    )

    def __init__(self, name: str, url: str, options: SourceOptions | None = None) -> None:
        super().__init__(name, url, options)
        self.parsed = DbURL.parse(url, "redis")

    @classmethod
    def default_name(cls, url: str) -> str:
        return "redis"  # the snapshot holds the whole instance; --name NAME=URL for several

    @property
    def display(self) -> str:
        return redact(self.url)

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def _argv(self) -> list[str]:
        u = self.parsed
        argv = [find_tool("redis-cli", package=PACKAGE), "-h", u.host or "127.0.0.1"]
        argv += ["-p", str(u.port or 6379)]
        if u.user and u.user != "default":
            argv += ["--user", u.user]
        if u.scheme == "rediss":
            argv.append("--tls")
            for key in ("cacert", "cert", "key"):
                if key in u.query:
                    argv += [f"--{key}", u.query[key]]
        return argv

    @property
    def _env(self) -> dict[str, str]:
        return {"REDISCLI_AUTH": self.parsed.password} if self.parsed.password else {}

    @classmethod
    def restore_packages(cls, stats: Mapping[str, Any]) -> list[str]:
        return [] if shutil.which("redis-check-rdb") else [PACKAGE]  # what a drill checks with

    def missing_packages(self) -> list[str]:
        needed = ("redis-cli", "redis-check-rdb")
        return [PACKAGE] if not all(shutil.which(n) for n in needed) else []

    def check(self) -> None:
        find_tool("redis-check-rdb", package=PACKAGE)
        out = run_tool([*self._argv(), "PING"], self._env, self._fail, (self.parsed.password,))
        if out.strip() != "PONG":  # redis-cli prints an auth error and still exits 0
            raise self._fail(f"redis-cli PING answered {out.strip()[:200]!r}")

    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        dump = Tool([*self._argv(), "--rdb", "-"], self._env, (self.parsed.password,))
        report = bytearray()
        checker = [find_tool("redis-check-rdb", package=PACKAGE), "/dev/stdin"]
        check = SideCheck(dump.stdout, checker, {}, report.extend)

        def finish() -> None:
            dump.wait(self._fail)
            check.finish(lambda why: self._fail(f"RDB check failed: {_detail(report) or why}"))

        try:
            yield Dump(CheckedReader(check, finish), lambda: rdb_counts(bytes(report)))
        finally:
            dump.kill()
            check.kill()

    # -- restoring ---------------------------------------------------------------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        if scheme_of(target) != "file":
            raise BadInput(
                "a Redis entry restores into an .rdb file (--into file:///path/dump.rdb); "
                "swap it into the server as docs/guides/databases.md shows"
            )
        return _RdbRestorer(Path(cls.local_target(target)).expanduser(), options.force)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return "> dump.rdb && redis-check-rdb dump.rdb"

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        path = Path(cls.local_target(target)).expanduser()
        try:
            counts = check_rdb(path, lambda why: RestoreFailed(path.name, why))
        except RestoreFailed as exc:
            return Inspection(problems=[str(exc.args[1])], checks=["redis-check-rdb"])
        problems = [
            f"{key}: manifest says {stats[key]}, the restored file holds {counts[key]}"
            for key in ("keys", "expires")
            if key in stats and stats[key] != counts[key]
        ]
        return Inspection(problems=problems, checks=["redis-check-rdb", "keys and expires"])


def _detail(report: bytearray) -> str:
    lines = [line.strip() for line in report.decode("utf-8", "replace").splitlines()]
    errors = [line for line in lines if "RDB ERROR" not in line and line.startswith("[offset")]
    return errors[-1] if errors else ""


class _RdbRestorer(FileRestorer):
    def check_staged(self, path: Path) -> None:
        check_rdb(path, lambda why: RestoreFailed(self.target.name, f"RDB check failed: {why}"))
