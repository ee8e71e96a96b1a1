"""A run's place at its destinations: the set id reserved at every one of them before
anything is written (SPEC §7), and the files of a run that failed taken back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime

from offsite.errors import OperationFailed
from offsite.github import gha
from offsite.names import set_id_for
from offsite.sets.manifest import MANIFEST_NAME
from offsite.storage.base import Storage
from offsite.urls import redact

RESERVATION = ".offsite-set"  # the object whose create-if-absent reserves a set id
MAX_TRIES = 1000  # suffixes tried for one second's set id


def _reserve(storage: Storage, key: str, stamp: bytes) -> bool:
    """Create the reservation if absent; then ask once more, which must be refused: a
    store that ignores the precondition (an emulator, a store that claims S3 compatibility)
    is named in a warning, since it cannot keep two runs apart."""
    if not storage.create(key, stamp):
        return False
    if storage.create(key, stamp):
        gha.warn(
            f"{redact(storage.url)} does not refuse to create an object that exists: two "
            "backups that start in the same second could share a set id there"
        )
    return True


def allocate_id(
    storages: Iterable[Storage], moment: datetime, shard: tuple[int, int] | None = None
) -> str:
    """The set id for a run started at ``moment``, with ``-2``, ``-3`` … on a clash.

    An id is reserved at every destination by creating ``<id>/.offsite-set`` only if it is
    absent (SPEC §7), which the store arbitrates: two runs that start in the same second
    never share a set. An id taken at any destination (reserved, or holding a set an older
    offsite wrote) moves every destination on to the next suffix. The reservation stays
    with the set (prune removes it with the set): were it removed once the set is complete,
    a run that listed the id before it was taken could create it again afterwards.

    The I-th of N shard jobs, which start at the same second on other runners, take only
    the suffixes ``-I``, ``-(I+N)``, ``-(I+2N)`` …: their ids never clash, neither as
    artifact names nor in a destination they share.
    """
    base = set_id_for(moment)
    targets = list(storages)
    n, step = shard if shard else (1, 1)
    tries = 0
    stamp = f"reserved by offsite at {moment.isoformat()}\n".encode()
    while True:
        tries += 1
        if tries > MAX_TRIES:  # one place named twice, or a store that answers nonsense
            where = ", ".join(redact(s.url) for s in targets)
            raise OperationFailed(f"no free set id after {MAX_TRIES} tries in {where}")
        candidate = base if n == 1 and not shard else f"{base}-{n}"
        reserved: list[Storage] = []
        for storage in targets:
            if next(iter(storage.list(candidate + "/")), None) is not None:
                break
            if not _reserve(storage, f"{candidate}/{RESERVATION}", stamp):
                break
            reserved.append(storage)
        else:
            return candidate
        for storage in reserved:  # give back what this run took of a taken id
            storage.delete(f"{candidate}/{RESERVATION}")
        n += step


def remove_partial(storages: list[Storage], set_id: str) -> None:
    """Best effort: take back the entry files of a run that failed before its manifest."""
    for storage in storages:
        with contextlib.suppress(Exception):
            if storage.stat(f"{set_id}/{MANIFEST_NAME}") is not None:
                continue  # committed there already: a complete set is kept
            for obj in list(storage.list(f"{set_id}/")):
                storage.delete(obj.key)
