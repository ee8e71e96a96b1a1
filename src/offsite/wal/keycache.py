"""Archive keys this host holds: each unwrapped key in a 0600 file named by the
``key.gpg`` it came from (so the per-file cost of ``wal push`` includes no passphrase
stretch, SPEC §8), and the key each archive is pushed with, pinned by the archive's address
and cluster, so a ``key.gpg`` planted or deleted in the destination cannot stop archiving.
A file others can read is not trusted to be ours."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f]{64}$")


class KeyCache:
    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def cached(self, wrapped: bytes) -> str | None:
        """The key ``wrapped`` (a ``key.gpg``) opened to here before."""
        return self._read(self._named(f"wal-{hashlib.sha256(wrapped).hexdigest()[:32]}.key"))

    def remember(self, wrapped: bytes, key: str) -> None:
        self._write(self._named(f"wal-{hashlib.sha256(wrapped).hexdigest()[:32]}.key"), key)

    def pinned(self, where: str, system_id: str) -> str | None:
        """The key this host archives to ``where``'s cluster ``system_id`` with."""
        return self._read(self._named(self._pin(where, system_id)))

    def pin(self, where: str, system_id: str, key: str) -> None:
        self._write(self._named(self._pin(where, system_id)), key)

    @staticmethod
    def _pin(where: str, system_id: str) -> str:
        ident = hashlib.sha256(f"{where} {system_id}".encode()).hexdigest()[:32]
        return f"wal-archive-{ident}.key"

    def _named(self, name: str) -> Path | None:
        return None if self.folder is None else self.folder / name

    @staticmethod
    def _read(path: Path | None) -> str | None:
        try:
            if path is None or path.stat().st_mode & 0o077:
                return None
            key = path.read_text().strip()
        except OSError:
            return None
        return key if _KEY.match(key) else None

    @staticmethod
    def _write(path: Path | None, key: str) -> None:
        if path is None or KeyCache._read(path) == key:
            return
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key + "\n")
            os.replace(temp, path)
        except OSError:
            pass  # no cache: the next run unwraps again


def default_cache() -> Path:
    """Where unwrapped archive keys are kept on this host (0600 files in a 0700 folder)."""
    from offsite.wal.spool import cache_home

    return Path(cache_home()) / "keys"
