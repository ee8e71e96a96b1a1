"""Copying complete backup sets from one destination to others, as they are.

Each entry streams from the source to the target while its SHA-256 and size are checked
against the manifest; a mismatch fails before the manifest is written, and the manifest
goes last, byte for byte the same, so a copy is exactly as complete as its original.
A set the target already holds with the same manifest is left alone; one it holds with
another manifest is a conflict, never overwritten.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from offsite.errors import ChecksumMismatch, OffsiteError, SizeMismatch, StorageError
from offsite.manifest import MANIFEST_NAME
from offsite.sets import StoredSet
from offsite.storage.base import Storage, get_bytes
from offsite.streams import CheckedReader, HashingReader


@dataclass(frozen=True)
class Copied:
    set_id: str
    target: str
    size: int
    skipped: bool  # the target had it already


def _manifest_bytes(source: Storage, stored: StoredSet) -> bytes:
    return get_bytes(source, stored.key(MANIFEST_NAME))


def copy_set(source: Storage, stored: StoredSet, target: Storage) -> Copied:
    set_id = stored.id
    original = _manifest_bytes(source, stored)
    there = target.stat(f"{set_id}/{MANIFEST_NAME}")
    if there is not None:
        if get_bytes(target, f"{set_id}/{MANIFEST_NAME}") == original:
            return Copied(set_id, target.url, stored.manifest.size, skipped=True)
        raise StorageError(
            target.url, f"set {set_id} is there already with another manifest; not overwritten"
        )
    try:
        for entry in stored.manifest.entries:
            with source.open(stored.key(entry.file)) as raw:
                hashed = HashingReader(raw)

                def check(
                    hashed: HashingReader = hashed,
                    name: str = entry.name,
                    size: int = entry.size,
                    sha256: str = entry.sha256,
                ) -> None:
                    if hashed.count != size:
                        raise SizeMismatch(set_id, name, size, hashed.count)
                    if hashed.hexdigest() != sha256:
                        raise ChecksumMismatch(set_id, name)

                try:
                    target.put(f"{set_id}/{entry.file}", CheckedReader(hashed, check))
                except OffsiteError:
                    raise
                except OSError as exc:
                    raise StorageError(target.url, exc.strerror or exc) from exc
        target.put(f"{set_id}/{MANIFEST_NAME}", io.BytesIO(original))
    except BaseException:
        with contextlib.suppress(Exception):
            for obj in list(target.list(f"{set_id}/")):
                target.delete(obj.key)
        raise
    return Copied(set_id, target.url, stored.manifest.size, skipped=False)
