"""``wal push`` and ``wal fetch``: what PostgreSQL's archive_command and restore_command run.

A push exits 0 only once the file is stored at every destination (each backend's create
returns once the object is durable); a fetch writes the file beside its target and renames
it into place, so recovery never reads half a file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from offsite.crypto import EncryptionConfig
from offsite.errors import BadInput
from offsite.storage.registry import open_storage
from offsite.storage.settings import StorageSettings
from offsite.wal.archive import MAX_FILE, Archive, pack
from offsite.wal.names import check_name, system_id_of_datadir, system_id_of_segment


def default_cache() -> Path:
    """Where unwrapped archive keys are kept on this host (0600 files in a 0700 folder)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "offsite" / "keys"


def _system_id(given: str | None, data: bytes | None = None) -> str:
    found = given or system_id_of_datadir(Path.cwd())
    if found is None and data is not None:
        found = system_id_of_segment(data)
    if found is None:
        raise BadInput(
            "cannot tell the cluster's system identifier: run in its data directory "
            "(PostgreSQL does) or pass --system-id"
        )
    return found


def push(
    path: Path,
    destinations: Sequence[str],
    settings: StorageSettings,
    encryption: EncryptionConfig,
    cache: Path | None,
    system_id: str | None = None,
) -> list[bool]:
    """Archive the WAL file at ``path`` in every destination; for each, True when stored
    now, False when the same content was there already."""
    name = check_name(path.name)
    try:
        size = path.stat().st_size
        if size > MAX_FILE:
            raise BadInput(f"{path} is larger than any WAL file")
        plain = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    sysid = _system_id(system_id, plain)
    packed = pack(plain, name, sysid)
    done = []
    for url in destinations:
        archive = Archive(open_storage(url, settings), sysid, cache)
        done.append(archive.push(name, packed, archive.key_for_push(encryption)))
    return done


def fetch(
    name: str,
    target: Path,
    source: str,
    settings: StorageSettings,
    passphrase: str | None,
    cache: Path | None,
    system_id: str | None = None,
    encrypted: bool = True,
    pinned: str | None = None,
) -> None:
    """Write the archived WAL file ``name`` to ``target``."""
    check_name(name)
    archive = Archive(open_storage(source, settings), _system_id(system_id), cache)
    plain = archive.fetch(name, passphrase, encrypted, pinned)
    temp = target.with_name(f".{target.name}.offsite-{os.getpid()}")
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
