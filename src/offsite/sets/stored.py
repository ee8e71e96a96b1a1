"""Backup sets in a destination: complete ones (manifest present), incomplete ones, ids.

A destination holds ``<set-id>/`` folders. A folder fetched by ``gh run download``
holds one set's files and ``manifest.json`` at its root, or, without ``-n``, one
``backup-<set-id>/`` folder per artifact: both are read as sets too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from offsite.errors import (
    BaseBroken,
    CheckFailed,
    DestinationMissing,
    KeyDoesNotOpen,
    ManifestError,
    NoSets,
    NotEncrypted,
    OffsiteError,
    SetGone,
    SetNotFound,
    WrongPassphrase,
)
from offsite.github import gha
from offsite.names import set_ids_of, set_time
from offsite.sets.manifest import FORMAT_DELTA, MANIFEST_NAME, MAX_MANIFEST, Manifest
from offsite.storage.base import ExplainsMissing, ObjectInfo, Storage
from offsite.urls import redact

FUTURE_SLACK = timedelta(hours=1)  # clocks drift; a set dated further ahead is planted


@dataclass(frozen=True)
class StoredSet:
    prefix: str  # key prefix of the set's files: "<set-id>/", or "" for a downloaded artifact
    manifest: Manifest
    raw: bytes = field(default=b"", repr=False, compare=False)  # manifest.json as read

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def time(self) -> datetime:
        return set_time(self.id)

    def key(self, file: str) -> str:
        return self.prefix + file

    def future(self, now: datetime) -> bool:
        """Dated more than an hour ahead of ``now``: never latest, never counted by retention."""
        return self.time - now > FUTURE_SLACK


@dataclass(frozen=True)
class InvalidSet:
    """A set folder whose manifest offsite refuses to read: listed, never used."""

    prefix: str
    error: OffsiteError

    @property
    def id(self) -> str:
        name = self.prefix.rstrip("/")
        return next(iter(set_ids_of(name)), name)

    @property
    def reason(self) -> str:
        return self.error.message()


@dataclass(frozen=True)
class IncompleteSet:
    prefix: str
    newest: datetime
    size: int


@dataclass(frozen=True)
class Scan:
    sets: list[StoredSet] = field(default_factory=list)  # oldest first
    incomplete: list[IncompleteSet] = field(default_factory=list)
    invalid: list[InvalidSet] = field(default_factory=list)  # manifests offsite refuses

    @property
    def problems(self) -> list[str]:
        return [i.reason for i in self.invalid]

    def future(self, now: datetime | None = None) -> list[StoredSet]:
        moment = now or datetime.now(timezone.utc)
        return [s for s in self.sets if s.future(moment)]

    def current(self, now: datetime | None = None) -> list[StoredSet]:
        """The sets not dated in the future, oldest first."""
        moment = now or datetime.now(timezone.utc)
        return [s for s in self.sets if not s.future(moment)]


def _read_manifest(storage: Storage, key: str, where: str) -> bytes:
    with storage.open(key) as fh:
        data = fh.read(MAX_MANIFEST + 1)
    if len(data) > MAX_MANIFEST:
        raise ManifestError(where, f"larger than {MAX_MANIFEST >> 20} MiB")
    return data


def _load(storage: Storage, prefix: str) -> StoredSet:
    where = f"{redact(storage.url).rstrip('/')}/{prefix}{MANIFEST_NAME}"
    raw = _read_manifest(storage, prefix + MANIFEST_NAME, where)
    manifest = Manifest.from_json(raw, where)
    folder = prefix.rstrip("/")
    if folder and manifest.id not in set_ids_of(folder):
        raise ManifestError(where, f"its id {manifest.id!r} is not its folder's name")
    return StoredSet(prefix, manifest, raw)  # the bytes a signature is checked against


def _require(storage: Storage) -> None:
    """A local destination that does not exist is a mistyped path, not an empty one."""
    from offsite.storage.local import LocalStorage

    if isinstance(storage, LocalStorage) and not storage.root.is_dir():
        raise DestinationMissing(storage.url)


def _loaded(storage: Storage, prefix: str, result: Scan) -> None:
    try:
        result.sets.append(_load(storage, prefix))
    except OffsiteError as exc:
        result.invalid.append(InvalidSet(prefix, exc))


def scan(storage: Storage) -> Scan:
    """Every set in the destination: a bad manifest makes its own set invalid, never the
    others unreadable."""
    _require(storage)
    # by prefix: set folders (ids are UTC times, 2000-2999), artifacts' ``backup-<id>``,
    # and a downloaded set's own manifest; never ``wal/`` (SPEC §8) nor ``drills/``
    objects = [obj for prefix in ("2", "backup-", MANIFEST_NAME) for obj in storage.list(prefix)]
    result = Scan()
    groups: dict[str, list[ObjectInfo]] = {}
    for obj in objects:
        folder, sep, _ = obj.key.partition("/")
        if sep and set_ids_of(folder):
            groups.setdefault(folder + "/", []).append(obj)
    if not groups and any(o.key == MANIFEST_NAME for o in objects) and _downloadable(storage):
        _loaded(storage, "", result)  # a folder `gh run download -n backup-<id>` filled
        return result
    for prefix, members in sorted(groups.items()):
        if any(o.key == prefix + MANIFEST_NAME for o in members):
            _loaded(storage, prefix, result)
        else:
            newest = max(o.modified for o in members)
            result.incomplete.append(IncompleteSet(prefix, newest, sum(o.size for o in members)))
    result.sets.sort(key=lambda s: (s.id, s.prefix.startswith("backup-")))
    seen: set[str] = set()
    for stored in list(result.sets):  # backup-<id>/ beside <id>/: <id>/ is the set
        if stored.id in seen:
            result.sets.remove(stored)
            why = ManifestError(stored.prefix, "the folder of its id holds the set")
            result.invalid.append(InvalidSet(stored.prefix, why))
        seen.add(stored.id)
    return result


def _downloadable(storage: Storage) -> bool:
    """A manifest at the top is one downloaded set only in a local folder: elsewhere, and
    beside set folders, it is something someone put there."""
    from offsite.storage.local import LocalStorage

    return isinstance(storage, LocalStorage)


# raises when a set may not be used (not authenticated); the flag says whether the user
# named the set (--id), which an older set without auth needs, rather than it being chosen;
# True when the set proves itself, False when only an opt-in flag lets it in
Check = Callable[[StoredSet, bool], bool]


def manifest_sha256(stored: StoredSet) -> str:
    return hashlib.sha256(stored.raw).hexdigest()


def mismatch(diff: StoredSet, base: StoredSet) -> str | None:
    """Why ``base`` is not the base ``diff`` names (or cannot be one); None when it is."""
    ref = diff.manifest.base
    assert ref is not None
    if base.id != ref.id or manifest_sha256(base) != ref.manifest_sha256:
        return "is there with another manifest than the diff names (swapped?)"
    if base.manifest.format != FORMAT_DELTA or base.manifest.base is not None:
        return "is not a full set of format 3"
    for entry in diff.manifest.entries:
        if entry.delta in ("diff", "unchanged"):
            own = base.manifest.entry(entry.name)
            if own is None or own.delta != "full" or own.kind != entry.kind:
                return f"holds no full entry {entry.name!r} of kind {entry.kind}"
    return None


def chain_problem(
    diff: StoredSet, sets: Iterable[StoredSet], check: Check | None = None
) -> str | None:
    """Why ``diff``'s chain is broken among ``sets`` (one destination's), or None; a base
    that ``check`` refuses is broken too. None for a full set."""
    ref = diff.manifest.base
    if ref is None:
        return None
    base = next((s for s in sets if s.id == ref.id), None)
    if base is None:
        if diff.prefix == "":  # a set `gh run download -n` fetched alone
            return (f"is not in this folder: download the artifact backup-{ref.id} beside it "
                    f"(gh run download RUN_ID -n backup-{ref.id})")  # fmt: skip
        return "is not there"
    why = mismatch(diff, base)
    if why is None and check is not None:
        try:  # a store that fails to answer says so (exit 3): no reason to call a chain broken
            check(base, True)
        except CheckFailed as exc:
            return f"is refused: {exc.message()}"
    return why


def latest(
    found: Scan, storage: Storage, check: Check | None = None, now: datetime | None = None,
    entry: str | None = None,
) -> StoredSet:  # fmt: skip
    """The newest valid set (holding ``entry``, where one is named): not dated in the
    future, passing ``check`` (SPEC §7), and, a diff, with its base there and the one named
    (SPEC §10); one that only an opt-in flag lets in only when no set at all proves itself
    (a set that proves itself but lacks ``entry`` is returned, for EntryNotFound to name
    what it holds). Each set holding ``entry`` that is passed over is named in a warning."""
    moment = now or datetime.now(timezone.utc)
    refused: list[tuple[CheckFailed, bool]] = []  # and whether the set holds the entry
    flagged: list[StoredSet] = []  # let in by a lowered guard only: newest first
    proven_elsewhere: StoredSet | None = None  # the newest that proves itself, lacking it

    def holds(stored: StoredSet) -> bool:
        return entry is None or stored.manifest.entry(entry) is not None

    def warn_passed() -> None:
        for passed, held in refused:
            if held:
                gha.warn(f"passing over {passed.message()}")

    for stored in reversed(found.sets):
        if stored.future(moment):
            gha.warn(f"set {stored.id} is dated in the future: not taking it as the latest")
            continue
        try:
            proven = check is None or check(stored, False)
        except CheckFailed as exc:
            refused.append((exc, holds(stored)))
            continue
        broken = chain_problem(stored, found.sets, check)
        if broken is not None:  # a diff is a restore point only with its base (SPEC §10)
            assert stored.manifest.base is not None
            refused.append((BaseBroken(stored.id, stored.manifest.base.id, broken), holds(stored)))
            continue
        if not proven:
            flagged.append(stored)
            continue
        if not holds(stored):
            proven_elsewhere = proven_elsewhere or stored
            continue
        warn_passed()
        for other in filter(holds, flagged):
            gha.warn(f"passing over set {other.id}: only an --allow-… flag lets it in, and "
                     f"set {stored.id} proves itself")  # fmt: skip
        return stored
    if proven_elsewhere is not None:  # no set of yours holds it: say why, where one did
        held = [exc for exc, holding in refused if holding]
        if held:
            raise held[0]
        return proven_elsewhere
    if flagged:
        warn_passed()
        chosen = next(filter(holds, flagged), flagged[0])
        gha.warn(f"no set in {redact(storage.url)} proves itself: taking set {chosen.id}, "
                 "which only an --allow-… flag lets in")  # fmt: skip
        return chosen
    if refused:  # not one set proves itself: most likely the key given is not theirs
        unopened = [exc for exc, _ in refused if isinstance(exc, KeyDoesNotOpen)]
        if unopened and all(isinstance(e, (KeyDoesNotOpen, NotEncrypted)) for e, _ in refused):
            raise wrong_passphrase(len(unopened))  # of the sets it could have opened
        raise refused[0][0]
    raise NoSets(storage.url)


def wrong_passphrase(sets: int) -> WrongPassphrase:
    """Exit 3: the passphrase opened none of the ``sets`` at a destination."""
    return WrongPassphrase(
        "does not open the one set" if sets == 1 else f"opens none of the {sets} sets"
    )


def select(
    storage: Storage, set_id: str | None = None, check: Check | None = None,
    entry: str | None = None,
) -> StoredSet:  # fmt: skip
    """The set named ``set_id``, or the latest (that holds ``entry``, where named: an hourly
    set of the files does not hide the night's database); a named set must pass ``check``
    too."""
    found = scan(storage)
    if set_id is None:
        return latest(found, storage, check, entry=entry)
    for stored in found.sets:
        if stored.id == set_id:
            if check is not None:
                try:
                    check(stored, True)
                except KeyDoesNotOpen as exc:
                    # a set the passphrase does not open, named: planted beside yours (exit
                    # 1, named), or the passphrase is not the one the sets were made with
                    unopened = _unopened(check, [o for o in found.current() if o is not stored])
                    if unopened is None:
                        raise
                    raise wrong_passphrase(unopened + 1) from exc
            return stored
    for invalid in found.invalid:
        if invalid.id == set_id:
            raise invalid.error
    reason = storage.why_missing(set_id) if isinstance(storage, ExplainsMissing) else None
    if reason:
        raise SetGone(set_id, storage.url, reason)
    raise SetNotFound(set_id, storage.url)


def _unopened(check: Check, others: list[StoredSet]) -> int | None:
    """How many of ``others`` the passphrase does not open when it opens none of them (the
    rule ``latest`` and ``Verifier.unopened`` follow: unencrypted sets aside), else None.
    Newest first: your own sets are the newest, and the first that opens ends the search."""
    count = 0
    for other in reversed(others):
        try:
            check(other, True)
        except KeyDoesNotOpen:
            count += 1
            continue
        except NotEncrypted:
            continue
        except CheckFailed:
            return None
        return None
    return count


def choose(
    storage: Storage, set_id: str | None, every: bool, check: Check | None = None
) -> list[StoredSet]:
    """Every valid set, or the one ``select`` picks."""
    if every:
        sets = scan(storage).sets
        if not sets:
            raise NoSets(storage.url)
        return sets
    return [select(storage, set_id, check)]
