"""A file's SHA-256, with nothing but hashlib: ``archive_command``'s fast path imports it
(``wal/spool.py``), where every millisecond is paid once per WAL file."""

from __future__ import annotations

import hashlib


def file_sha256(path: str) -> tuple[str, int]:
    """A file's SHA-256 (hex) and size, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
