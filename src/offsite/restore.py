"""Reading entries back: hash every stored byte, decrypt, decompress, hand to a sink.

The checksum is compared before anything is committed, and it wins over any other
error: a flipped byte makes gpg or zstd fail too, but the user must hear "checksum
mismatch", not "bad passphrase".
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from offsite.crypto.modes import SET_KEY
from offsite.crypto.streaming import decrypt
from offsite.errors import (
    ArchiveRefused,
    BadInput,
    ChecksumMismatch,
    EntryMissing,
    EntryNotFound,
    ObjectMissing,
    PassphraseNeeded,
    TargetNotEmpty,
    UnsafeMember,
)
from offsite.github import gha
from offsite.pitr import Target, base_entry, check_reachable, choose_base, ends_before, stopped
from offsite.sets.chain import base_of, underlying
from offsite.sets.manifest import Entry
from offsite.sets.stored import StoredSet, scan, select
from offsite.sets.trust import TrustConfig, Verifier
from offsite.sources import RestoreOptions, Restorer, kind_class
from offsite.sources.tree import MAX_DELETED
from offsite.storage import Storage, open_storage
from offsite.storage.settings import StorageSettings
from offsite.stream.pipeline import Pipeline, decompress
from offsite.stream.progress import Progress
from offsite.stream.readers import CHUNK, HashingReader, Readable, copy
from offsite.urls import local_path
from offsite.wal.archive import parse_object
from offsite.wal.keycache import default_cache
from offsite.wal.names import BASE_KIND

Sink = Callable[[Readable], None]


def read_entry(
    storage: Storage,
    stored: StoredSet,
    entry: Entry,
    passphrase: str | None,
    sink: Sink,
    on_read: Callable[[int], None] | None = None,
    decode: bool = True,
    checked_first: bool = False,
) -> None:
    """Stream ``entry`` through decryption and decompression into ``sink``; with
    ``decode`` false, only read and hash the stored bytes (no key needed); with
    ``checked_first``, the stored bytes are copied (as stored, compressed) into an unnamed
    file in TMPDIR and their checksum compared before ``sink`` sees a byte.

    Raises ChecksumMismatch when the stored bytes differ from the manifest (checked
    over every byte, whatever else failed), else the first error of the way.
    """
    if decode and entry.encryption.mode in ("passphrase", SET_KEY) and not passphrase:
        raise PassphraseNeeded(stored.id, entry.name)
    key = stored.key(entry.file)
    try:
        raw: Readable = storage.open(key)
    except ObjectMissing:
        raise EntryMissing(stored.id, entry.name, entry.file) from None
    if checked_first:
        raw = _checked_copy(raw, stored, entry, on_read)
        on_read = None
    hashed = HashingReader(raw, on_read)
    pipeline = Pipeline()
    error: BaseException | None = None
    try:
        if decode:
            stream = decrypt(pipeline, hashed, entry.encryption, passphrase, stored.id, entry.name)
            sink(decompress(pipeline.checked(stream), entry.compression))
    except BaseException as exc:
        error = exc
        pipeline.abort()
    finally:
        try:
            hashed.drain()
        finally:
            with contextlib.suppress(Exception):
                raw.close()
    if hashed.count != entry.size or hashed.hexdigest() != entry.sha256:
        raise ChecksumMismatch(stored.id, entry.name) from error
    if error is not None:
        raise error


def _checked_copy(
    raw: Readable, stored: StoredSet, entry: Entry, on_read: Callable[[int], None] | None
) -> Readable:
    """The stored bytes of ``entry`` in an unnamed file in TMPDIR, read back from its
    start, once their size and SHA-256 are those the manifest names (SPEC §7: nothing is
    applied before it is checked); ChecksumMismatch, and nothing kept, when they are not."""
    staged = tempfile.TemporaryFile(prefix="offsite-stored-")  # noqa: SIM115 (returned open)
    try:
        with contextlib.closing(raw):
            hashed = HashingReader(raw, on_read)
            copy(hashed, staged.write)
        if hashed.count != entry.size or hashed.hexdigest() != entry.sha256:
            raise ChecksumMismatch(stored.id, entry.name)
        staged.seek(0)
    except BaseException:
        staged.close()
        raise
    return staged


@dataclass(frozen=True)
class RestoreRequest:
    source: str  # a destination URL, or a folder from `gh run download`
    into: str
    set_id: str | None = None
    entry: str | None = None
    options: RestoreOptions = field(default_factory=RestoreOptions)
    trust: TrustConfig = field(default_factory=TrustConfig)
    storage: StorageSettings = field(default_factory=StorageSettings)


@dataclass(frozen=True)
class Restored:
    set_id: str
    entry: str
    kind: str
    location: str
    size: int
    seconds: float


def _targets(request: RestoreRequest, stored: StoredSet) -> list[tuple[Entry, str]]:
    entries = stored.manifest.entries
    if not entries:
        raise EntryNotFound(stored.id, request.entry or "(any)", "none")
    if request.entry is not None:
        chosen = stored.manifest.entry(request.entry)
        if chosen is None:
            names = ", ".join(e.name for e in entries)
            raise EntryNotFound(stored.id, request.entry, names)
        return [(chosen, request.into)]
    if len(entries) == 1:
        return [(entries[0], request.into)]
    # Several entries, no --entry: each into its own place inside the target folder.
    base = request.into.rstrip("/")
    if "://" in base and not base.startswith("file://"):
        raise BadInput("this set has several entries: choose one with --entry NAME")
    folder = Path(local_path(base)).expanduser()
    if folder.is_dir() and any(folder.iterdir()) and not request.options.force:
        raise TargetNotEmpty(folder)
    places = {}
    for e in entries:
        cls = kind_class(e.kind)
        suffix = cls.suffix if cls.target_suffix is None else cls.target_suffix
        places[e.name] = f"{base}/{e.name}{suffix}"
    kinds = {e.name: e.kind for e in entries}
    joined: set[str] = set()
    for e in entries:  # a repository's LFS objects go into the repository restored before
        repo = e.name[: -len("-lfs")]
        if e.kind == "git-lfs" and kinds.get(repo) == "git":
            places[e.name] = places[repo]
            joined.add(e.name)
    taken: dict[str, str] = {}
    for e in entries:  # two entries into one place would let one write into the other
        other = taken.get(places[e.name])
        if other is not None and e.name not in joined:
            raise BadInput(
                f"entries {other!r} and {e.name!r} would restore into the same place "
                f"{places[e.name]}: restore them one at a time with --entry"
            )
        taken.setdefault(places[e.name], e.name)
    return [(e, places[e.name]) for e in entries]


AfterEach = Callable[[Entry, str, Restored], None]


def _staged(read: Callable[[Sink], None], restorer: Restorer) -> None:
    """For a kind that applies statements as it reads them (a SQL dump, an archive for
    mongorestore) over a target that holds data: the whole entry is read, its checksum
    compared and decrypted into an unnamed file in TMPDIR first, and only then applied, so
    a corrupt or truncated entry never half-overwrites the target (SPEC §7)."""
    with tempfile.TemporaryFile(prefix="offsite-staged-") as staged:

        def keep(stream: Readable) -> None:
            copy(stream, staged.write)

        read(keep)
        staged.flush()
        staged.seek(0)
        restorer.write(staged)


def _size(base: StoredSet | None, entry: Entry) -> int:
    """The decoded bytes an entry restores: a diff's with its base entry's."""
    if base is None or entry.delta == "full":
        return entry.raw_size
    own = underlying(base, entry).raw_size
    return own if entry.delta == "unchanged" else own + entry.raw_size


def _restore_diff(
    storage: Storage,
    verifier: Verifier,
    under: tuple[StoredSet, Entry],
    over: tuple[StoredSet, Entry],
    restorer: Restorer,
    on_read: Callable[[int], None],
) -> None:
    """A diff entry (SPEC §10): its base entry staged, then the diff over it with its
    companions (a deleted list, a ref list), each part checked against its manifest."""
    (base, first), (diff, entry) = under, over
    restorer.overlaid = True  # the base is staged for a diff to come over it
    read_entry(storage, base, first, verifier.entry_key(base, first), restorer.write, on_read)
    companions: dict[str, bytes] = {}
    for role, part in ((c.role, entry.part(c.role)) for c in entry.companions):
        assert part is not None

        def keep(stream: Readable, role: str = role) -> None:
            data = bytearray()
            while chunk := stream.read(CHUNK):  # a store may answer a read short
                data += chunk
                if len(data) > MAX_DELETED:
                    raise UnsafeMember(entry.name, f"({role})", "it is over 256 MiB")
            companions[role] = bytes(data)

        read_entry(storage, diff, part, verifier.entry_key(diff, part), keep, on_read)
    if not entry.stored:  # a diff that is its companions alone (a ref list)
        restorer.overlay(None, companions)
        return
    key = verifier.entry_key(diff, entry)
    read_entry(storage, diff, entry, key, lambda s: restorer.overlay(s, companions), on_read)


def _recovery(request: RestoreRequest, storage: Storage, entry: Entry) -> RestoreOptions:
    """A base backup's options with the timeline it recovers into: the archive's newest
    that branched from it after it began ('latest' could pick a branch taken before, and
    recovery would fail)."""
    if entry.kind != BASE_KIND:
        return request.options
    from offsite.wal.archive import Archive
    from offsite.wal.verify import Base, check_archive_key, timeline_of_base

    base = Base.of_entry(entry)
    if base is None:
        return request.options
    archive = Archive(storage, base.system_id, default_cache())
    check_archive_key(archive, entry, request.trust.passphrase)
    found = archive.key_hash()
    # an encrypted base backup's archive is read encrypted unless the backup recorded it
    # plain: with no key.gpg, files there cannot prove themselves (None: restore_command
    # requires a key, so a planted plain file stops recovery instead of being replayed)
    plain = entry.encryption.mode == "none" or entry.stats.get("wal_encrypted") is False
    if (found is None and not plain and not request.trust.allow_unencrypted
            and next(iter(storage.list(f"{archive.folder}/")), None) is not None):  # fmt: skip
        raise ArchiveRefused(archive.where, "has files but no key.gpg, and the base backup "
                             "recorded an encrypted archive: its key was removed, or these "
                             "files are not this backup's")  # fmt: skip
    timeline = timeline_of_base(storage, base, request.trust.passphrase, default_cache())
    key = found or ("" if plain or request.trust.allow_unencrypted else None)
    return replace(request.options, timeline=timeline, archive_key=key)


def _wal_file(key: str) -> bool:
    """Whether an archive's object is a WAL file offsite stored (not its key, not a stray)."""
    return parse_object(key) is not None


def _point_in_time(
    request: RestoreRequest, storage: Storage, verifier: Verifier, target: Target
) -> tuple[StoredSet, Entry]:
    """The set whose base backup a point-in-time target starts from, once the archive is
    seen to reach the target: the one --id names, else the newest that ends before it."""
    if request.set_id is not None:
        stored = select(storage, request.set_id, verifier.check)
        base = base_entry(stored, request.entry)
        if base is None:
            raise BadInput(f"set {stored.id} holds no base backup to recover to a point")
        if not ends_before(base, target):
            raise BadInput(
                f"the base backup in set {stored.id} ends at {stopped(base)}, "
                f"after {target.describe()}: leave out --id, or name an older set"
            )
    else:
        # only sets that are current and prove themselves: a planted one is passed over
        usable = verifier.usable(scan(storage).current())
        stored = choose_base(usable, request.entry, target)
        verifier.check(stored, False)
        base = base_entry(stored, request.entry)
        assert base is not None
    folder = f"wal/{base.stats.get('system_id')}/"
    newest = max((o.modified for o in storage.list(folder) if _wal_file(o.key)), default=None)
    check_reachable(newest, target)
    return stored, base


def run_restore(
    request: RestoreRequest, progress: Progress | None = None, after: AfterEach | None = None
) -> list[Restored]:
    """Restore the chosen entries; ``after(entry, target, restored)`` runs after each one
    is committed (a drill checks the target there)."""
    progress = progress or Progress(enabled=False)
    storage = open_storage(request.source, request.storage)
    with Verifier(storage, request.trust) as verifier:
        return restore_set(request, storage, verifier, progress, after)[1]


def restore_set(
    request: RestoreRequest,
    storage: Storage,
    verifier: Verifier,
    progress: Progress,
    after: AfterEach | None,
) -> tuple[StoredSet, list[Restored]]:
    """``run_restore`` with the storage and verifier open: the set chosen, and what was
    restored of it (a drill seals its record with what the verifier opened)."""
    point = Target(request.options.to_time, request.options.to_lsn)
    if point.given:
        stored, base = _point_in_time(request, storage, verifier, point)
        request = replace(request, entry=base.name)
    else:
        stored = select(storage, request.set_id, verifier.check, request.entry)
    # a set only an --allow-… flag lets in proves nothing of its entries either: each is
    # checked before a kind that applies as it reads sees a byte, encrypted or not
    proven = verifier.check(stored, request.set_id is not None)
    plan = _targets(request, stored)
    for entry, target in plan:
        kind_class(entry.kind).check_target(target)
    # a diff's entries build on its base's (SPEC §10): the base is there, the one named
    # (needed only where a chosen entry is not full: a full one restores without it)
    chained = stored.manifest.base and any(e.delta != "full" for e, _ in plan)
    under_all = base_of(storage, stored, verifier.check) if chained else None
    restorers: list[tuple[Entry, str, Restorer]] = [
        (
            entry,
            target,
            kind_class(entry.kind).restorer_for(
                target,
                replace(_recovery(request, storage, entry), size=_size(under_all, entry)),
                entry.stats,
            ),
        )
        for entry, target in plan
    ]
    done: list[Restored] = []
    for entry, target, restorer in restorers:
        # what is read: a full entry itself; an unchanged one its base's; a diff both
        origin, own, under = stored, entry, None
        if under_all is not None and entry.delta != "full":
            if entry.delta == "unchanged":
                origin, own = under_all, underlying(under_all, entry)
            else:
                under = (under_all, underlying(under_all, entry))
        total = own.size + (under[1].size if under else 0)
        with progress.task(f"restore {entry.name}", total) as meter:
            try:
                if under is not None:
                    _restore_diff(storage, verifier, under, (stored, entry), restorer,
                                  meter.add_read)  # fmt: skip
                else:
                    key = verifier.entry_key(origin, own)

                    # a kind that applies as it reads (SQL, mongorestore) never sees an
                    # unencrypted entry's byte before its checksum held: its stored bytes
                    # are staged and checked first (an encrypted one authenticates as it
                    # decrypts)
                    first = restorer.applies_as_it_reads and (
                        own.encryption.mode == "none" or not proven
                    )

                    def read(sink: Sink, origin: StoredSet = origin, own: Entry = own,
                             key: str | None = key, first: bool = first) -> None:  # fmt: skip
                        read_entry(storage, origin, own, key, sink, meter.add_read, True, first)

                    if restorer.stages_first(request.options.force) and not first:
                        _staged(read, restorer)
                    else:
                        read(restorer.write)
                restorer.commit()
            except BaseException:
                restorer.discard()
                if done:
                    places = ", ".join(f"{r.entry} ({r.location})" for r in done)
                    gha.warn(f"restored before the failure, and left in place: {places}")
                raise
        restored = Restored(stored.id, entry.name, entry.kind, restorer.location,
                            _size(under_all, entry), meter.seconds)  # fmt: skip
        done.append(restored)
        if after is not None:
            after(entry, target, restored)
    return stored, done
