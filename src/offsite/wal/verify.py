"""``verify --wal`` and ``prune``'s share of the archive: what each kept base backup needs,
read against the listing of ``wal/<system id>/`` (and, with --read-data, every byte)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from offsite.crypto.keys import KEY_FILE
from offsite.errors import ArchiveRefused, BadInput, OffsiteError, WalMissing
from offsite.github import gha
from offsite.sets.manifest import Entry
from offsite.sets.stored import StoredSet
from offsite.storage.base import ObjectInfo, Storage
from offsite.wal.archive import PREFIX, Archive, key_id, parse_object
from offsite.wal.chain import (
    DEFAULT_SEGMENT,
    parse_history,
    reach,
    removable,
    segment_of,
    timeline_for,
    valid_size,
)
from offsite.wal.names import BASE_KIND, is_segment


@dataclass(frozen=True)
class Base:
    """A kept base backup, as its entry's stats describe it."""

    set_id: str
    entry: str
    system_id: str
    timeline: int
    start_lsn: int
    segment_size: int
    stop_lsn: int
    size_known: bool  # the backup recorded its cluster's segment size

    @classmethod
    def of(cls, stored: StoredSet, entry: Entry) -> Base | None:
        return cls.of_entry(entry, stored.id)

    @classmethod
    def of_entry(cls, entry: Entry, set_id: str = "") -> Base | None:
        stats = entry.stats
        values = [stats.get(k) for k in ("system_id", "timeline", "start_lsn")]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return None
        size = stats.get("wal_segment_size")
        known = valid_size(size)
        system_id, timeline, start = (int(v) for v in values)  # type: ignore[arg-type]
        stop = stats.get("stop_lsn")
        stop = stop if isinstance(stop, int) and not isinstance(stop, bool) else start
        return cls(set_id, entry.name, str(system_id), timeline, start,
                   int(size) if known else DEFAULT_SEGMENT, stop, known)  # type: ignore[arg-type]  # fmt: skip


def bases_of(sets: list[StoredSet]) -> list[Base]:
    found = [Base.of(s, e) for s in sets for e in s.manifest.entries if e.kind == BASE_KIND]
    return [b for b in found if b is not None]


@dataclass
class Listing:
    """One archive's listing: its files by WAL name (the object under the name itself,
    else the first stored beside it), every object of each name, and what is out of place:
    names whose own object was passed over by a push (it did not authenticate: planted?)
    and objects that are no WAL file offsite writes."""

    files: dict[str, ObjectInfo] = field(default_factory=dict)
    objects: dict[str, list[ObjectInfo]] = field(default_factory=dict)
    passed_over: list[str] = field(default_factory=list)  # keys a push stored beside
    foreign: list[str] = field(default_factory=list)  # keys of no WAL object

    def problems(self) -> list[str]:
        said = [f"{key}: an object that does not authenticate holds this WAL file's name "
                "(planted?); the file is stored beside it" for key in self.passed_over]  # fmt: skip
        said += [f"{key}: not a WAL object offsite writes (planted?)" for key in self.foreign]
        return said


def listing(
    storage: Storage, system_id: str, objects: Iterable[ObjectInfo] | None = None
) -> Listing:
    """The archive of ``system_id`` as its listing shows it (``objects``: that listing,
    when the caller has it already)."""
    found = Listing()
    ranked: dict[str, list[tuple[int, ObjectInfo]]] = {}
    listed = storage.list(f"{PREFIX}/{system_id}/") if objects is None else objects
    for obj in listed:
        if obj.key.rsplit("/", 1)[-1] == KEY_FILE:
            continue
        parsed = parse_object(obj.key)
        if parsed is None:
            found.foreign.append(obj.key)
            continue
        ranked.setdefault(parsed[0], []).append((parsed[1], obj))
    for name, stored in sorted(ranked.items()):
        stored.sort(key=lambda o: o[0])
        found.objects[name] = [o for _, o in stored]
        found.files[name] = stored[0][1]
        if stored[0][0] == 0 and len(stored) > 1:
            found.passed_over.append(stored[0][1].key)
    return found


def histories_of(
    archive: Archive, files: dict[str, ObjectInfo], passphrase: str | None
) -> tuple[dict[int, dict[int, int]], list[str], list[str]]:
    """Each timeline's history file, parsed; the problems reading them; and the listed
    histories that do not authenticate (fetch passes them over, warning, as if they were
    not there: a restore chooses its timeline without them, verify names them)."""
    histories: dict[int, dict[int, int]] = {}
    problems: list[str] = []
    passed: list[str] = []
    encrypted = archive.key_hash() is not None
    for name in files:
        if name.endswith(".history"):
            try:
                text = archive.fetch(name, passphrase, encrypted).decode("utf-8", "replace")
            except WalMissing:
                passed.append(f"{name} does not authenticate: passed over (planted?)")
                continue
            except OffsiteError as exc:
                problems.append(exc.message())
                continue
            histories[int(name[:8], 16)] = parse_history(text)
    return histories, problems, passed


def check_archive_key(
    archive: Archive, entry: Entry, passphrase: str | None, open_key: bool = True
) -> None:
    """What a base backup recorded of its archive's encryption (SPEC §8), held against the
    archive: ArchiveRefused (exit 1) when it was archived encrypted and ``key.gpg`` is gone
    (plain files would be replayed), or is none it saw: not one whose SHA-256 it recorded,
    and (when the key opens here) not one whose key id it recorded."""
    if entry.stats.get("wal_encrypted") is not True:
        return
    where = archive.where
    found = archive.key_hash()
    if found is None:
        raise ArchiveRefused(where, f"has no {KEY_FILE}, and the base backup was archived "
                             "encrypted (deleted? plain files may stand in its place)")  # fmt: skip
    ids, hashes = entry.stats.get("wal_key_ids"), entry.stats.get("wal_key_sha256")
    ids = ids if isinstance(ids, dict) else {}
    hashes = hashes if isinstance(hashes, dict) else {}
    if found in hashes:
        return
    if ids and open_key:
        try:
            key = archive.data_key(passphrase)
        except OffsiteError as exc:
            gha.warn(f"the WAL archive's {KEY_FILE} in {where} does not open here "
                     f"({exc.message()}): not held to the base backup's key id")  # fmt: skip
            return
        if key is not None and key_id(key) in ids:
            return
        raise ArchiveRefused(where, f"has a {KEY_FILE} that opens to another key than the one "
                             "the base backup recorded (swapped?)")  # fmt: skip
    if hashes and not ids:
        raise ArchiveRefused(where, f"has a {KEY_FILE} the base backup did not see (swapped?)")


def timeline_of_base(
    storage: Storage, base: Base, passphrase: str | None, cache: Path | None
) -> int | None:
    """The timeline ``base`` recovers into, read from the archive; None when the archive
    shows no timeline but the base backup's own (then 'latest' is that one)."""
    files = listing(storage, base.system_id).files
    later = sorted({n for n in files if is_segment(n) and int(n[:8], 16) > base.timeline})
    if not later and not any(name.endswith(".history") for name in files):
        return None
    archive = Archive(storage, base.system_id, cache)
    histories, problems, _ = histories_of(archive, files, passphrase)
    if problems:  # a timeline chosen without its history could be the wrong branch
        raise BadInput(f"cannot choose the timeline to recover into: {problems[0]}")
    # a later timeline with WAL that authenticates but no history that does (deleted, or
    # overwritten): recovering without it would follow the wrong timeline, silently
    encrypted = archive.key_hash() is not None
    for timeline in sorted({int(n[:8], 16) for n in later} - set(histories)):
        names = [n for n in reversed(later) if int(n[:8], 16) == timeline]  # newest first
        if not any(_authenticates(archive, n, passphrase, encrypted) for n in names):
            continue  # nothing of that timeline proves itself: planted names, passed over
        raise ArchiveRefused(archive.where, f"holds WAL of timeline {timeline} but no history "
                             f"file for it that authenticates ({timeline:08X}.history "
                             "deleted or replaced? copy it from another destination)")  # fmt: skip
    archived = {segment_of(n, base.segment_size)[0] for n in files if is_segment(n)}
    return timeline_for(base.timeline, base.stop_lsn, histories, archived)


def _authenticates(archive: Archive, name: str, passphrase: str | None, encrypted: bool) -> bool:
    try:
        archive.fetch(name, passphrase, encrypted)
    except OffsiteError:
        return False
    return True


@dataclass
class WalCheck:
    system_id: str
    files: int = 0
    newest: str | None = None
    newest_stored: datetime | None = None
    bases: list[str] = field(default_factory=list)  # "set/entry" of each base checked
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_archives(
    storage: Storage,
    sets: list[StoredSet],
    read_data: bool,
    passphrase: str | None,
    cache: Path | None,
) -> list[WalCheck]:
    """Each archive a kept base backup needs: every file from each base backup's start to
    the newest archived one is there (and, with ``read_data``, decrypts and matches)."""
    by_system: dict[str, list[Base]] = {}
    for base in bases_of(sets):
        by_system.setdefault(base.system_id, []).append(base)
    checks = []
    for system_id, bases in sorted(by_system.items()):
        check = WalCheck(system_id)
        checks.append(check)
        listed = listing(storage, system_id)
        files = listed.files
        check.files = len(files)
        check.problems += listed.problems()
        archive = Archive(storage, system_id, cache)
        for stored in sets:
            for entry in stored.manifest.entries:
                if entry.kind == BASE_KIND and str(entry.stats.get("system_id")) == system_id:
                    try:
                        check_archive_key(archive, entry, passphrase, open_key=read_data)
                    except ArchiveRefused as exc:
                        check.problems.append(f"set {stored.id}: {exc.message()}")
        histories, problems, passed = histories_of(archive, files, passphrase)
        check.problems += problems + passed
        needed: set[str] = set()
        for base in bases:
            found = reach(set(files), base.timeline, base.start_lsn, histories,
                          base.segment_size, base.stop_lsn)  # fmt: skip
            check.bases.append(f"{base.set_id}/{base.entry}")
            check.newest = found.newest
            for name in found.missing:
                check.problems.append(
                    f"WAL file {name}, which the base backup in set {base.set_id} needs, "
                    f"is missing from {PREFIX}/{system_id}/"
                )
            if found.unnamed:
                check.problems.append(f"and {found.unnamed} more WAL files the base backup in "
                                      f"set {base.set_id} needs are missing")  # fmt: skip
            needed.update(found.needed)
        if check.newest is not None and check.newest in files:
            check.newest_stored = files[check.newest].modified
        if read_data:
            encrypted = archive.key_hash() is not None
            for name in sorted(needed & set(files)):
                try:
                    archive.fetch(name, passphrase, encrypted)
                except OffsiteError as exc:
                    check.problems.append(exc.message())
    return checks


def prune_archives(
    storage: Storage, kept: list[StoredSet], trusted: list[StoredSet], dry_run: bool
) -> list[str]:
    """Remove, from each archive, the files that end before the oldest kept base backup
    (of any set kept, trusted or not) starts. The archive's segment size comes from the
    kept base backups that prove they were made with the key (``trusted``), all alike; an
    archive without one, or whose size they do not agree on, is left whole, as is one no
    kept base backup uses (its base backups may live in another destination). The names
    removed (or to remove)."""
    oldest: dict[str, int] = {}
    for base in bases_of(kept):
        oldest[base.system_id] = min(oldest.get(base.system_id, base.start_lsn), base.start_lsn)
    sizes: dict[str, set[int | None]] = {}
    for base in bases_of(trusted):
        sizes.setdefault(base.system_id, set()).add(base.segment_size if base.size_known else None)
    gone = []
    for system_id, start in sorted(oldest.items()):
        known = sizes.get(system_id, set())
        if len(known) != 1 or None in known:
            continue
        (size,) = known
        assert size is not None
        listed = listing(storage, system_id)
        for name in removable(set(listed.files), start, size):
            gone.append(f"{PREFIX}/{system_id}/{name}")
            if not dry_run:
                for obj in listed.objects[name]:  # and what was stored beside it
                    storage.delete(obj.key)
    return gone
