"""Copying complete backup sets from one destination to others, as they are.

Each entry is read once and streams to every target that lacks the set (the same tee
as a backup's), while its SHA-256 and size are checked against the manifest; a mismatch
fails before the manifest is written, and the manifest goes last, byte for byte the
same, so a copy is exactly as complete as its original. A diff's base goes first
(SPEC §10), so a target never holds a diff without the base it names. A set a target already holds
with the same manifest is left alone; one it holds with another manifest is a
conflict, never overwritten.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from offsite.crypto.auth import SIGNATURE
from offsite.crypto.keys import KEY_FILE
from offsite.errors import ChecksumMismatch, ObjectMissing, SizeMismatch, StorageError
from offsite.sets.chain import base_of
from offsite.sets.manifest import MANIFEST_NAME, Entry
from offsite.sets.stored import StoredSet
from offsite.storage.base import Storage, get_bytes
from offsite.storage.fanout import put_everywhere, put_one
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader, HashingReader


@dataclass(frozen=True)
class Copied:
    set_id: str
    target: str
    size: int
    skipped: bool  # the target had it already


def _copy_entry(source: Storage, stored: StoredSet, entry: Entry, targets: list[Storage]) -> None:
    with source.open(stored.key(entry.file)) as raw:
        hashed = HashingReader(raw)

        def check() -> None:
            if hashed.count != entry.size:
                raise SizeMismatch(stored.id, entry.name, entry.size, hashed.count)
            if hashed.hexdigest() != entry.sha256:
                raise ChecksumMismatch(stored.id, entry.name)

        pipeline = Pipeline()
        try:
            put_everywhere(
                pipeline, targets, f"{stored.id}/{entry.file}", CheckedReader(hashed, check)
            )
            pipeline.join()
        except BaseException:
            pipeline.abort()
            raise


def copy_set(source: Storage, stored: StoredSet, targets: list[Storage]) -> list[Copied]:
    """The set copied to every target that lacks it; one result per target, in order."""
    set_id = stored.id
    key = f"{set_id}/{MANIFEST_NAME}"
    if stored.manifest.base is not None:  # a diff: its base first, where a target lacks it
        copy_set(source, base_of(source, stored), targets)
    original = stored.raw or get_bytes(source, stored.key(MANIFEST_NAME))
    needed: list[Storage] = []
    for target in targets:
        if target.stat(key) is None:
            needed.append(target)
        elif get_bytes(target, key) != original:
            raise StorageError(
                target.url, f"set {set_id} is there already with another manifest; not overwritten"
            )
    if needed:
        try:
            for extra in (KEY_FILE, SIGNATURE):  # the wrapped data key and the signature
                try:
                    data = get_bytes(source, stored.key(extra))
                except ObjectMissing:
                    continue
                for target in needed:
                    put_one(target, f"{set_id}/{extra}", io.BytesIO(data))
            for entry in (o for e in stored.manifest.entries for o in e.objects()):
                _copy_entry(source, stored, entry, needed)
            for target in needed:
                put_one(target, key, io.BytesIO(original))
        except BaseException:
            for target in needed:
                with contextlib.suppress(Exception):
                    if target.stat(key) is None:  # never take back a set that is complete
                        for obj in list(target.list(f"{set_id}/")):
                            target.delete(obj.key)
            raise
    size = stored.manifest.size
    return [Copied(set_id, t.url, size, skipped=t not in needed) for t in targets]
