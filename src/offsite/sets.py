"""Backup sets in a destination: complete ones (manifest present), incomplete ones, ids.

A destination holds ``<set-id>/`` folders. A folder fetched by ``gh run download``
holds one set's files and ``manifest.json`` at its root, or, without ``-n``, one
``backup-<set-id>/`` folder per artifact: both are read as sets too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from offsite.errors import NoSets, OffsiteError, SetGone, SetNotFound
from offsite.manifest import MANIFEST_NAME, SET_ID, Manifest, set_id_for
from offsite.storage.base import ExplainsMissing, ObjectInfo, Storage, get_bytes


@dataclass(frozen=True)
class StoredSet:
    prefix: str  # key prefix of the set's files: "<set-id>/", or "" for a downloaded artifact
    manifest: Manifest

    @property
    def id(self) -> str:
        return self.manifest.id

    def key(self, file: str) -> str:
        return self.prefix + file


@dataclass(frozen=True)
class IncompleteSet:
    prefix: str
    newest: datetime
    size: int


@dataclass(frozen=True)
class Scan:
    sets: list[StoredSet] = field(default_factory=list)  # oldest first
    incomplete: list[IncompleteSet] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # manifests that could not be read


def _set_folder(name: str) -> bool:
    return bool(SET_ID.match(name)) or (name.startswith("backup-") and bool(SET_ID.match(name[7:])))


def _load(storage: Storage, prefix: str) -> Manifest:
    where = f"{storage.url.rstrip('/')}/{prefix}{MANIFEST_NAME}"
    return Manifest.from_json(get_bytes(storage, prefix + MANIFEST_NAME), where)


def scan(storage: Storage) -> Scan:
    objects = list(storage.list())
    result = Scan()
    if any(o.key == MANIFEST_NAME for o in objects):
        result.sets.append(StoredSet("", _load(storage, "")))
        return result
    groups: dict[str, list[ObjectInfo]] = {}
    for obj in objects:
        folder, sep, _ = obj.key.partition("/")
        if sep and _set_folder(folder):
            groups.setdefault(folder + "/", []).append(obj)
    for prefix, members in sorted(groups.items()):
        if any(o.key == prefix + MANIFEST_NAME for o in members):
            try:
                result.sets.append(StoredSet(prefix, _load(storage, prefix)))
            except OffsiteError as exc:
                result.problems.append(exc.message())
        else:
            newest = max(o.modified for o in members)
            result.incomplete.append(IncompleteSet(prefix, newest, sum(o.size for o in members)))
    result.sets.sort(key=lambda s: s.id)
    return result


def select(storage: Storage, set_id: str | None = None) -> StoredSet:
    """The set named ``set_id``, or the newest complete one."""
    sets = scan(storage).sets
    if set_id is None:
        if not sets:
            raise NoSets(storage.url)
        return sets[-1]
    for stored in sets:
        if stored.id == set_id:
            return stored
    reason = storage.why_missing(set_id) if isinstance(storage, ExplainsMissing) else None
    if reason:
        raise SetGone(set_id, storage.url, reason)
    raise SetNotFound(set_id, storage.url)


def choose(storage: Storage, set_id: str | None, every: bool) -> list[StoredSet]:
    """Every complete set, or the one ``select`` picks."""
    if every:
        sets = scan(storage).sets
        if not sets:
            raise NoSets(storage.url)
        return sets
    return [select(storage, set_id)]


def allocate_id(
    storages: Iterable[Storage], moment: datetime, shard: tuple[int, int] | None = None
) -> str:
    """The set id for a run started at ``moment``, with ``-2``, ``-3`` … on a clash.

    The I-th of N shard jobs, which start at the same second on other runners and cannot
    see each other's sets, take only the suffixes ``-I``, ``-(I+N)``, ``-(I+2N)`` …: their
    ids never clash, neither as artifact names nor in a destination they share.
    """
    base = set_id_for(moment)
    targets = list(storages)
    n, step = shard if shard else (1, 1)
    while True:
        candidate = base if n == 1 and not shard else f"{base}-{n}"
        if not any(next(iter(s.list(candidate + "/")), None) for s in targets):
            return candidate
        n += step
