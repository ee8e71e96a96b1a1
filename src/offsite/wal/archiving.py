"""``wal push`` and ``wal fetch``: what PostgreSQL's archive_command and restore_command run.

A push exits 0 only once the file is stored at every destination (each backend's create
returns once the object is durable); a fetch writes the file beside its target and renames
it into place, so recovery never reads half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from offsite.crypto.keys import EncryptionConfig
from offsite.errors import BadInput
from offsite.github import gha
from offsite.storage.registry import open_storage
from offsite.storage.settings import StorageSettings
from offsite.wal.archive import Archive
from offsite.wal.header import check_segment
from offsite.wal.names import check_name, is_segment, system_id_of_datadir
from offsite.wal.packed import MAX_FILE, pack


def _system_id(given: str | None, name: str | None = None, data: bytes | None = None) -> str:
    """The cluster a WAL file is archived for: ``--system-id``, else the data directory's
    (PostgreSQL runs archive_command there). A segment's header must say the same, or,
    outside a data directory and without --system-id, says it (once it matches its name)."""
    found = given or system_id_of_datadir(Path.cwd())
    if name is not None and data is not None and is_segment(name.removesuffix(".partial")):
        found, warning = check_segment(name, data, found)
        if warning:
            gha.warn(warning)
    if found is None:
        raise BadInput(
            "cannot tell the cluster's system identifier: run in its data directory "
            "(PostgreSQL does) or pass --system-id"
        )
    return found


class Pusher:
    """Pushes WAL files to every destination, each archive's key unwrapped once."""

    def __init__(
        self,
        destinations: Sequence[str],
        settings: StorageSettings,
        encryption: EncryptionConfig,
        cache: Path | None,
        system_id: str | None = None,
    ) -> None:
        self.destinations = destinations
        self.settings = settings
        self.encryption = encryption
        self.cache = cache
        self.system_id = system_id
        self._archives: dict[tuple[str, str], tuple[Archive, str | None]] = {}

    def _archive(self, url: str, sysid: str) -> tuple[Archive, str | None]:
        if (url, sysid) not in self._archives:
            archive = Archive(open_storage(url, self.settings), sysid, self.cache)
            self._archives[url, sysid] = (archive, archive.key_for_push(self.encryption))
        return self._archives[url, sysid]

    def push(self, path: Path) -> tuple[str, int]:
        """Archive the WAL file at ``path`` in every destination (where the same content is
        there already, nothing is written); its plain SHA-256 and size."""
        name = check_name(path.name)
        try:
            size = path.stat().st_size
            if size > MAX_FILE:
                raise BadInput(f"{path} is larger than any WAL file")
            plain = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}") from None
        sysid = _system_id(self.system_id, name, plain)
        packed = pack(plain, name, sysid)
        for url in self.destinations:
            archive, key = self._archive(url, sysid)
            archive.push(name, packed, key)
        return hashlib.sha256(plain).hexdigest(), len(plain)


class Fetcher:
    """Fetches WAL files from one archive, its key unwrapped once."""

    def __init__(
        self,
        source: str,
        settings: StorageSettings,
        passphrase: str | None,
        cache: Path | None,
        system_id: str | None = None,
        encrypted: bool = True,
        pinned: str | None = None,
    ) -> None:
        self.archive = Archive(open_storage(source, settings), _system_id(system_id), cache)
        self.passphrase = passphrase
        self.encrypted = encrypted
        self.pinned = pinned

    def fetch(self, name: str, target: Path) -> int:
        """Write the archived WAL file ``name`` to ``target``, whole or not at all: its
        size."""
        check_name(name)
        plain = self.archive.fetch(name, self.passphrase, self.encrypted, self.pinned)
        write_file(plain, target)
        return len(plain)


def write_file(plain: bytes, target: Path) -> None:
    """``plain`` at ``target``, synced, through a temporary name beside it."""
    temp = target.with_name(f".{target.name}.offsite-{os.getpid()}-{threading.get_ident()}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(plain)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise BadInput(f"cannot write {target}: {exc.strerror}") from None
