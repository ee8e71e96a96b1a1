"""Reaching a PostgreSQL server: a connection string with no password in it, the client
tools (the newest installed, or one at least as new as the server), psql for one query."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from glob import glob
from urllib.parse import quote, urlencode

from offsite.errors import BadInput, MalformedURL
from offsite.sources.dburl import DbURL
from offsite.sources.process import ErrorFactory, run_tool
from offsite.urls import redact

_VERSION = re.compile(rb"\(PostgreSQL\)\s+(\d+)")
_CLIENT_DIRS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # PGDG RPMs
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew
)


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


@cache
def client_major(binary: str) -> int | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, check=False).stdout
    except OSError:
        return None
    m = _VERSION.search(out)
    return int(m.group(1)) if m else None


def candidates(name: str) -> list[str]:
    """``name`` on PATH first (the user's choice), then each installed major's, newest
    first. Debian's ``pg_wrapper`` on PATH (a Perl script that picks a major and execs
    it) is left out when those are listed: it adds ~50 ms to every call."""
    found = []
    dirs = [d for pattern in _CLIENT_DIRS for d in glob(pattern)]
    on_path = shutil.which(name)
    if on_path and not (dirs and os.path.basename(os.path.realpath(on_path)) == "pg_wrapper"):
        found.append(on_path)
    for folder in sorted(
        dirs, key=lambda d: client_major(os.path.join(d, name)) or 0, reverse=True
    ):
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK):
            found.append(path)
    return found


def tool(name: str, server_major: int | None = None) -> str:
    """The client tool ``name``, at least as new as the server; the newest otherwise."""
    found = candidates(name)
    if not found:
        raise BadInput(f"{name} not found: install the PostgreSQL client (postgresql-client)")
    if server_major is None:
        return max(found, key=lambda p: client_major(p) or 0)
    for path in found:
        major = client_major(path)
        if major is not None and major >= server_major:
            return path
    newest = max((client_major(p) or 0) for p in found)
    raise BadInput(
        f"{name} {newest} cannot dump a PostgreSQL {server_major} server: install "
        f"postgresql-client-{server_major} (the actions do on Ubuntu runners)"
    )


def missing_client(conn: Conn, fail: ErrorFactory, name: str) -> list[str]:
    """``postgresql-client`` when there is no client at all; else, once the server
    answers, ``postgresql-client-N`` when no ``name`` (pg_dump, pg_basebackup) is at least
    as new as it."""
    if not candidates("psql") or not candidates(name):
        return ["postgresql-client"]
    major = server_major(conn, fail)
    if any((client_major(p) or 0) >= major for p in candidates(name)):
        return []
    return [f"postgresql-client-{major}"]


def server_major(conn: Conn, fail: ErrorFactory, database: str | None = None) -> int:
    out = conn.psql("SHOW server_version_num;", fail, database).strip()
    try:
        return int(out) // 10000
    except ValueError:
        raise fail(f"unexpected server_version_num {out!r}") from None
