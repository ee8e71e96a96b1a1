"""A base backup restored to recover (SPEC §8): a new (or empty) data directory with the
``restore_command`` that fetches its WAL from the archive, the recovery target and
``recovery.signal``."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Mapping
from datetime import timezone
from pathlib import Path
from typing import Any

from offsite.errors import BadInput, TargetNotEmpty
from offsite.github import gha
from offsite.sources.base import RestoreOptions
from offsite.sources.files import FolderRestorer
from offsite.urls import redact

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
        _owned_like_contents(staged)
        super().commit()


def _owned_like_contents(staged: Path) -> None:
    """Restored as root, the data directory (made here, root's), ``recovery.signal`` and
    ``postgresql.auto.conf`` (made here where the backup had none) go to the owner of the
    backup's files, the folder last: PostgreSQL starts only as its data directory's
    owner, and that user must be able to write both."""
    if os.geteuid() != 0:
        return
    try:
        owner = os.lstat(staged / "PG_VERSION")
    except FileNotFoundError:
        return
    for path in (staged / "recovery.signal", staged / "postgresql.auto.conf", staged):
        with contextlib.suppress(FileNotFoundError):
            os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
