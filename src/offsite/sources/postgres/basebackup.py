"""A base backup for point-in-time recovery (SPEC §8): ``pg_basebackup`` in tar format,
streamed through the usual pipeline as entry kind ``pg-base``, and checked as it passes.

The check reads the whole tar: every member's header (with its checksum) and bytes, each
regular file's SHA-256, and the ``backup_manifest`` pg_basebackup appends to a tar it
writes to standard output. Every file the manifest lists must be there with its size
and SHA-256 (``--manifest-checksums=SHA256``), the manifest's own checksum must hold,
and nothing may be in the tar that the manifest does not list (but WAL, in the
self-contained mode). PostgreSQL 15's ``pg_verifybackup`` cannot read a tar, so this is
that check, done as the bytes stream by. ``stats`` get the system identifier (the
first field of ``global/pg_control``), the timeline, the start and stop LSN, and the
start and stop time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import struct
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from offsite.errors import BadInput, RestoreFailed, TargetNotEmpty
from offsite.github import gha
from offsite.names import safe_name
from offsite.sources.base import (
    Dump,
    Inspection,
    RestoreOptions,
    Restorer,
    RunContext,
)
from offsite.sources.dburl import DbURL
from offsite.sources.files import FolderRestorer
from offsite.sources.postgres.archive import SelfChecked
from offsite.sources.postgres.conn import server_major, tool
from offsite.sources.postgres.dump import ServerSource
from offsite.sources.postgres.rows import count_rows
from offsite.sources.postgres.scratch import ScratchServer
from offsite.sources.process import Tool
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader
from offsite.urls import redact
from offsite.wal.names import lsn_value

BLOCK = 512
# what is kept of a few members: the manifest whole (about 170 bytes a file, so 256 MiB is
# 1.5 M files), the label, pg_control's head
KEEP = {"backup_manifest": 256 << 20, "backup_label": 1 << 16, "global/pg_control": 16}


class TarError(ValueError):
    pass


class BaseBackupCheck:
    """Feed it the tar's bytes in order, then ``finish``: the stats, or TarError."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._member: str | None = None
        self._remaining = 0  # bytes of the current member still to come
        self._padding = 0
        self._hash: Any = None
        self._size = 0
        self._kept: bytearray | None = None
        self._ended = False
        self.files: dict[str, tuple[int, str]] = {}  # regular file: (size, sha256)
        self.kept: dict[str, bytes] = {}

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._remaining:
                take = min(self._remaining, len(view))
                piece = view[:take]
                self._hash.update(piece)
                if self._kept is not None and len(self._kept) < KEEP[self._member or ""]:
                    self._kept += piece
                self._remaining -= take
                view = view[take:]
                if not self._remaining:
                    self._end_member()
                continue
            if self._padding:
                take = min(self._padding, len(view))
                if any(view[:take]):
                    raise TarError("a member's padding is not zeros")
                self._padding -= take
                view = view[take:]
                continue
            need = BLOCK - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) == BLOCK:
                header, self._buf = bytes(self._buf), bytearray()
                self._header(header)

    def _header(self, header: bytes) -> None:
        if self._ended:
            if header.strip(b"\0"):
                raise TarError("bytes after the end of the archive")
            return
        if not header.strip(b"\0"):
            self._ended = True
            return
        computed = sum(header[:148]) + 8 * 32 + sum(header[156:])
        if _octal(header[148:156]) != computed:
            raise TarError("a member header's checksum does not match")
        name = header[:100].rstrip(b"\0").decode("utf-8", "surrogateescape")
        prefix = header[345:500].rstrip(b"\0").decode("utf-8", "surrogateescape")
        if prefix:
            name = f"{prefix}/{name}"
        kind = header[156:157]
        size = _octal(header[124:136])
        if size < 0:
            raise TarError(f"member {name!r} has no readable size")
        if kind in (b"0", b"\0"):
            self._member = name.removeprefix("./")
            self._remaining, self._size = size, size
            self._padding = -size % BLOCK
            self._hash = hashlib.sha256()
            self._kept = bytearray() if self._member in KEEP else None
            if not size:
                self._end_member()
        elif size:
            raise TarError(f"member {name!r} of type {kind!r} has data")

    def _end_member(self) -> None:
        assert self._member is not None
        self.files[self._member] = (self._size, self._hash.hexdigest())
        if self._kept is not None:
            self.kept[self._member] = bytes(self._kept)
        self._member, self._kept = None, None

    def finish(self) -> dict[str, Any]:
        try:
            return self._finish()
        except (KeyError, TypeError, ValueError, AttributeError, BadInput) as exc:
            if isinstance(exc, TarError):
                raise
            detail = exc.message() if isinstance(exc, BadInput) else repr(exc)
            raise TarError(f"its backup_manifest is not PostgreSQL's: {detail}") from None

    def _finish(self) -> dict[str, Any]:
        if self._remaining or self._buf or not self._ended:
            raise TarError("the archive ends early")
        raw = self.kept.get("backup_manifest")
        if raw is None:
            raise TarError("no backup_manifest at its end")
        manifest = _manifest(raw)
        listed = {_path_of(f): f for f in manifest["Files"]}
        for path, entry in listed.items():
            found = self.files.get(path)
            if found is None:
                raise TarError(f"{path} is in the manifest, not in the backup")
            if found[0] != entry.get("Size") or found[1] != entry.get("Checksum"):
                raise TarError(f"{path} does not match its manifest entry")
        extra = [
            p for p in self.files if p not in listed and p != "backup_manifest"
            and not p.startswith("pg_wal/")
        ]  # fmt: skip
        if extra:
            raise TarError(f"{extra[0]} is in the backup but not in its manifest")
        control = self.kept.get("global/pg_control", b"")
        if len(control) < 8:
            raise TarError("no global/pg_control")
        ranges = manifest["WAL-Ranges"]
        label = self.kept.get("backup_label", b"").decode("utf-8", "replace")
        started = re.search(r"^START TIME: (.+)$", label, re.M)
        stats: dict[str, Any] = {  # numbers only, as every entry's stats (the schema)
            "system_id": struct.unpack("<Q", control[:8])[0],
            "timeline": int(ranges[-1]["Timeline"]),
            "start_lsn": lsn_value(str(ranges[0]["Start-LSN"])),
            "stop_lsn": lsn_value(str(ranges[-1]["End-LSN"])),
            "stop_time": int(datetime.now(timezone.utc).timestamp()),
            "files": len(self.files),
            "wal_included": any(p.startswith("pg_wal/") for p in self.files),
        }
        begun = _label_time(started.group(1)) if started else None
        if begun is not None:
            stats["start_time"] = begun
        return stats


def _octal(field: bytes) -> int:
    """A tar header's octal number; -1 when it is not one."""
    text = field.strip(b"\0 ")
    try:
        return int(text, 8) if text else -1
    except ValueError:
        return -1


def _path_of(entry: dict[str, Any]) -> str:
    """A manifest file's path: ``Path``, or for a name that is not UTF-8 ``Encoded-Path``
    (hex), as the tar's names are read (surrogate escapes for such bytes)."""
    if "Path" in entry:
        return str(entry["Path"])
    return bytes.fromhex(str(entry["Encoded-Path"])).decode("utf-8", "surrogateescape")


def _manifest(raw: bytes) -> dict[str, Any]:
    """backup_manifest, its own checksum checked (SHA-256 of all before that line)."""
    cut = raw.rfind(b'"Manifest-Checksum"')
    line_start = raw.rfind(b"\n", 0, cut) + 1
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise TarError("its backup_manifest does not parse") from None
    want = manifest.get("Manifest-Checksum") if isinstance(manifest, dict) else None
    if cut < 0 or hashlib.sha256(raw[:line_start]).hexdigest() != want:
        raise TarError("its backup_manifest's checksum does not match")
    files, ranges = manifest.get("Files"), manifest.get("WAL-Ranges")
    if not isinstance(files, list) or not isinstance(ranges, list) or not ranges:
        raise TarError("its backup_manifest lists no files or no WAL range")
    if any(f.get("Checksum-Algorithm") != "SHA256" for f in files):
        raise TarError("its backup_manifest has no SHA-256 checksums")
    return dict(manifest)


def _label_time(text: str) -> int | None:
    """backup_label's ``2026-11-26 16:30:22 UTC`` in seconds since the epoch (UTC only)."""
    found = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (UTC|GMT)$", text.strip())
    if not found:
        return None
    when = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(when.timestamp())


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


STALE_TARGETS = (
    "recovery_target", "recovery_target_name", "recovery_target_xid", "recovery_target_time",
    "recovery_target_lsn",
)  # fmt: skip


NOT_THERE = 99  # wal fetch's exit for "not in the archive", in the restore_command written


def _conf_string(value: str) -> str:
    """A postgresql.conf string: single quotes, doubled inside."""
    return "'" + value.replace("'", "''") + "'"


def offsite_command() -> str:
    """This offsite's own program, by absolute path where it has one: the server that
    runs restore_command may not have the same PATH."""
    beside = Path(sys.executable).with_name("offsite")
    return str(beside) if beside.exists() else "offsite"


class PgBaseRestorer(FolderRestorer):
    """A base backup into a new (or empty) data directory, set up to recover: the
    ``restore_command`` that fetches its WAL from the archive, the recovery target, promote
    once reached, ``recovery.signal``. Nothing secret is written there: the passphrase stays
    in the file restore_command names (or the server's environment, or the key cache)."""

    def __init__(self, target: Path, options: RestoreOptions, stats: Mapping[str, Any]) -> None:
        if target.is_dir() and any(target.iterdir()):
            raise TargetNotEmpty(target)  # never over a data directory, even with --force
        super().__init__(target, force=False)
        self.options = options
        self.system_id = str(stats.get("system_id", ""))
        if not self.system_id.isdigit() or self.system_id == "0":
            raise BadInput("this base backup does not record its system identifier")

    def recovery_settings(self) -> list[str]:
        options = self.options
        if options.archive is None:
            return []
        archive = options.archive
        if "://" in archive and not archive.startswith("file://"):
            if redact(archive) != archive:
                raise BadInput(
                    "the destination URL holds a secret: restore_command would "
                    "write it into the data directory; give it by environment"
                )
        elif "://" not in archive:
            archive = str(Path(archive).expanduser().resolve())
        fetch = [options.program or offsite_command(), "wal", "fetch", "%f", "%p", "--from",
                 archive, "--system-id", self.system_id, "--async"]  # fmt: skip
        if options.passphrase_file:
            fetch += ["--passphrase-file", str(Path(options.passphrase_file).resolve())]
        if options.archive_key == "":
            fetch.append("--no-encrypt")
        elif options.archive_key:
            fetch += ["--key-sha256", options.archive_key]
            if not options.passphrase_file:
                gha.warn("restore_command names no passphrase file: the server needs "
                         "OFFSITE_PASSPHRASE in its environment, or --passphrase-file "
                         "(readable by its user), or the archive key in its key cache")  # fmt: skip
        # PostgreSQL replaces %-placeholders anywhere in the command: only %f and %p
        fetch = [a if a in ("%f", "%p") else a.replace("%", "%%") for a in fetch]
        # PostgreSQL takes any failure of restore_command as "not archived" and ends
        # recovery there, unless the command died (status over 125): then it stops. Only
        # "not there" may end recovery, and it is asked as 99, so that nothing else (a
        # shell's 1, an interpreter that cannot find offsite) can pass for it; a corrupt
        # file (3) or anything else stops recovery.
        fetch += ["--not-there-exit", str(NOT_THERE)]
        command = (f"{shlex.join(fetch)} || {{ s=$?; [ $s -eq {NOT_THERE} ] && exit 1; "
                   "exit 200; }")  # fmt: skip
        lines = [
            "# written by offsite restore: point-in-time recovery from the WAL archive",
            f"restore_command = {_conf_string(command)}",
            f"recovery_target_timeline = '{options.timeline or 'latest'}'",
            # a target an earlier restore left in the backed-up server's settings goes
            *(f"{name} = ''" for name in STALE_TARGETS),
        ]
        if options.to_time is not None:
            when = options.to_time.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
            lines.append(f"recovery_target_time = {_conf_string(when)}")
        elif options.to_lsn is not None:
            lines.append(f"recovery_target_lsn = {_conf_string(options.to_lsn)}")
        if options.to_time is not None or options.to_lsn is not None:
            lines.append("recovery_target_action = 'promote'")
        return lines

    def commit(self) -> None:
        staged = self._staged
        assert staged is not None
        lines = self.recovery_settings()
        if lines:
            # never through a symlink the archive put there (SPEC §7)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
            try:
                fd = os.open(staged / "postgresql.auto.conf", flags, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as conf:
                    conf.write("\n" + "\n".join(lines) + "\n")
                os.close(os.open(staged / "recovery.signal", flags, 0o600))
            except OSError as exc:
                raise BadInput(f"cannot write the recovery settings into {self.target}: "
                               f"{exc.strerror} (a symlink in the backup?)") from None  # fmt: skip
        for stale in ("postmaster.pid", "postmaster.opts", "standby.signal"):
            with contextlib.suppress(FileNotFoundError):
                (staged / stale).unlink()
        os.chmod(staged, 0o700)
        super().commit()
