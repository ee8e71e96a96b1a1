"""The base an incremental run diffs against (SPEC §10), or why the run is full.

The base is the newest full set of format 3 that proves itself with the run's key, holds
an index for an entry the run makes incrementally, and is at every destination under the
same id with the same manifest. Its age is the run's choice (``--full-after``); a run
whose diff would grow past ``--full-when-over`` of its base turns full as it finds out
(``sources.base.FullNeeded``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from offsite.crypto.keys import EncryptionConfig
from offsite.errors import (
    BadInput,
    CheckFailed,
    DecryptionFailed,
    DestinationMissing,
    OperationFailed,
)
from offsite.github import gha
from offsite.restore import read_entry
from offsite.sets.manifest import FORMAT_DELTA, BaseRef, Entry, Manifest
from offsite.sets.stored import Scan, StoredSet, manifest_sha256, scan
from offsite.sets.trust import TrustConfig, Verifier
from offsite.sources.base import Baseline, FullNeeded
from offsite.storage import open_storage
from offsite.storage.base import Storage
from offsite.storage.settings import StorageSettings
from offsite.stream.readers import Readable

FULL_AFTER = timedelta(days=7)  # SPEC §10's default
ARTIFACT_DAYS = 90  # GitHub keeps an artifact this long when its retention is not given
MAX_COMPANION = 1 << 30  # bytes of a decoded index read back: more is refused, not held


@dataclass(frozen=True)
class Incremental:
    """How a run with incremental sources picks its base."""

    full_after: timedelta | None = None  # a base older than this (7 days) is no base
    full_when_over: float = 0.5  # a diff over this share of its base: the run is full
    # where the base is read in place of GitHub Artifacts' staging folder (gh-artifacts://)
    base_from: str | None = None
    retention_days: int | None = None  # the diff's artifact's; GitHub's 90 days when unsaid
    index_cache: Path | None = None  # indexes and ref lists kept here between runs

    @property
    def oldest(self) -> timedelta:
        return self.full_after or FULL_AFTER

    @property
    def cache(self) -> IndexCache | None:
        return IndexCache(self.index_cache) if self.index_cache else None


class IndexCache:
    """What a full set's entries left to diff against (indexes, ref lists), decoded, kept
    in a folder between runs (``--index-cache``, for ``actions/cache``): so a run made for
    recipients, which cannot read its base's back, can still diff, and any run reads them
    without a download. A set's are under the SHA-256 of its ``manifest.json``: they are
    used only for the set with exactly that manifest at every destination."""

    KEEP = 4  # sets whose indexes stay (a diff's base is the newest full one at hand)

    def __init__(self, root: Path) -> None:
        self.root = root

    def stage(self, set_id: str, name: str, role: str, data: bytes) -> None:
        """Keep an entry's index for the set being written (a cache that cannot be
        written is a warning: the set is what matters)."""
        folder = self.root / f".incoming-{set_id}"
        try:
            if folder.is_symlink() or (folder.exists() and not (folder / ".offsite").is_file()):
                _remove(folder)  # not one this run made: nothing is written through it
            if not folder.exists():
                folder.mkdir(parents=True)
                (folder / ".offsite").write_text(set_id)
            (folder / f"{name}.{role}").write_bytes(data)
        except OSError as exc:
            gha.warn(f"--index-cache {self.root}: {exc}: the next run reads its base's "
                     "indexes from the destination")  # fmt: skip

    def commit(self, set_id: str, manifest: bytes, full: bool) -> None:
        try:
            self._commit(set_id, manifest, full)
        except OSError as exc:
            gha.warn(f"--index-cache {self.root}: {exc}: the next run reads its base's "
                     "indexes from the destination")  # fmt: skip

    def _commit(self, set_id: str, manifest: bytes, full: bool) -> None:
        """A set written: a full one's indexes kept under its manifest's SHA-256 (the
        oldest beyond ``KEEP`` go); a diff's are not wanted."""
        staged = self.root / f".incoming-{set_id}"
        if not full or not staged.is_dir():
            self.discard(set_id)
            return
        final = self.root / hashlib.sha256(manifest).hexdigest()
        _remove(final)
        os.replace(staged, final)
        (final / "set-id").write_text(set_id + "\n")
        kept = sorted((p for p in self.root.iterdir() if (p / "set-id").is_file()),
                      key=lambda p: (p / "set-id").read_text())  # fmt: skip
        for old in kept[: -self.KEEP]:
            _remove(old)
        for left in self.root.glob(".incoming-*"):  # a run killed before its manifest
            _remove(left)

    def discard(self, set_id: str) -> None:
        _remove(self.root / f".incoming-{set_id}")

    def holds(self, stored: StoredSet) -> bool:
        return (self.root / manifest_sha256(stored)).is_dir()

    def read(self, stored: StoredSet, name: str, role: str) -> bytes | None:
        path = self.root / manifest_sha256(stored) / f"{name}.{role}"
        try:
            if path.stat().st_size > MAX_COMPANION:
                raise FullNeeded(f"the cached {role} of {name} is over 1 GiB")
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FullNeeded(f"the cached {role} of {name} cannot be read: {exc}") from None


def _remove(path: Path) -> None:
    """A file, a symlink (not what it points at) or a folder, if there."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def holders(
    destinations: tuple[str, ...], storages: list[Storage], artifacts: str | None,
    base_from: str | None, settings: StorageSettings, retention_days: int | None = None,
) -> tuple[list[Storage], str]:  # fmt: skip
    """Where a base must be (SPEC §10): every destination, GitHub Artifacts' staging
    folder ``artifacts`` (empty, uploaded after the run) read at ``base_from`` instead;
    or why there is none."""
    staged = [url == artifacts for url in destinations]
    if not any(staged):
        if base_from:
            raise BadInput("--base-from reads the base in place of github-artifacts: it "
                           "goes with github-artifacts among the destinations")  # fmt: skip
        return storages, ""
    if not base_from:
        return [], ("GitHub Artifacts are uploaded after the run, so the base is read "
                    "elsewhere: name it with --base-from gh-artifacts://OWNER/REPO")  # fmt: skip
    here = os.environ.get("GITHUB_REPOSITORY")
    if not base_from.startswith("gh-artifacts://") or (
        here and base_from.removeprefix("gh-artifacts://").strip("/") != here
    ):
        raise BadInput(f"--base-from names where this run's artifact goes, "
                       f"gh-artifacts://{here or 'OWNER/REPO'}, not {base_from}")  # fmt: skip
    if retention_days is None:
        raise BadInput("--base-from needs --retention-days (the action's retention-days): a "
                       "diff must not outlive the artifact of its base")  # fmt: skip
    others = [s for s, staged_here in zip(storages, staged, strict=True) if not staged_here]
    try:
        return [open_storage(base_from, settings), *others], ""
    except (BadInput, OperationFailed) as exc:  # no token, no API: a full run, not none
        return [], f"the base cannot be read at {base_from}: {exc.message()}"


def _indexed(stored: StoredSet) -> bool:
    m = stored.manifest
    return m.format == FORMAT_DELTA and m.base is None and any(map(_diffable, m.entries))


def _diffable(entry: Entry) -> bool:
    """An entry a later run can diff against: it kept an index or a ref list."""
    return entry.delta == "full" and bool(entry.companion("index") or entry.companion("refs"))


def _scan(storage: Storage) -> Scan:
    """The sets there; none in a local folder the run is about to create."""
    try:
        return scan(storage)
    except DestinationMissing:
        return Scan()


def _proves(verifier: Verifier, stored: StoredSet, lowered: bool) -> bool:
    """Whether the set proves it was made with the run's key (its passphrase, or the key
    it signs with); an unencrypted, unsigned run takes an unencrypted base (nothing would
    prove it: the run writes such sets too)."""
    try:
        return verifier.check(stored, False) or lowered
    except CheckFailed:
        return False


def choose(
    storages: list[Storage],
    stack: contextlib.ExitStack,
    encryption: EncryptionConfig,
    policy: Incremental,
    sign_key: str | None = None,
    now: datetime | None = None,
) -> tuple[Baseline | None, StoredSet | None, str]:
    """The run's base (what its sources read, and the set) or None and why the run is full."""
    cache = policy.cache
    recipients = encryption.mode == "recipients"
    if recipients and cache is None:
        return None, None, ("a set made for recipients cannot be read back here to diff "
                            "against: keep its indexes with --index-cache DIR")  # fmt: skip
    now = now or datetime.now(timezone.utc)
    # for recipients, the cache proves the base: it holds what this host wrote for it
    lowered = (encryption.mode == "none" or recipients) and not sign_key
    trust = TrustConfig(passphrase=encryption.passphrase, allow_unencrypted=lowered,
                        trust_keys=(sign_key,) if sign_key else ())  # fmt: skip
    first = storages[0]
    verifier = stack.enter_context(Verifier(first, trust))
    others = [{s.id: s.raw for s in _scan(st).sets} for st in storages[1:]]
    expired = ""
    for stored in reversed(_scan(first).current(now)):
        if not _indexed(stored):
            continue
        # for recipients the cache holds what no one else can read back (checked against
        # the manifest's raw_sha256 as it is read): a set it lacks is no base
        if recipients and not (cache is not None and cache.holds(stored)):
            continue
        if not _proves(verifier, stored, lowered):
            continue
        if any(o.get(stored.id) != stored.raw for o in others):
            continue  # a base must be at every destination, the same there
        if now - stored.time > policy.oldest:
            return None, None, (f"the newest full set, {stored.id}, is older than "
                                f"{policy.oldest} (--full-after)")  # fmt: skip
        expiry = _expires_first(storages, stored.id, now, policy)
        if expiry:  # an older full set may be kept longer (a night's, not an hour's)
            expired = expired or expiry
            continue
        return _baseline(first, verifier, stored, policy), stored, ""
    if expired:
        return None, None, expired
    if recipients:
        return None, None, "no full set at every destination has its indexes in --index-cache"
    return None, None, "no full set with an index proves itself at every destination"


def _expires_first(storages: list[Storage], set_id: str, now: datetime, policy: Incremental) -> str:
    """Why a base cannot be taken: its artifact goes before the diff's would (GitHub
    Artifacts' retention days), leaving a diff without its base; "" where it can."""
    days = policy.retention_days or ARTIFACT_DAYS
    for storage in storages:
        expires = getattr(storage, "expires", None)
        when = expires(set_id) if expires is not None else None
        # a day's slack: the diff's artifact is uploaded, and its days start, after the run
        if when is not None and when < now + timedelta(days=days + 1):
            return (f"the newest full set, {set_id}, expires from GitHub Artifacts on "
                    f"{when:%Y-%m-%d}, before a diff kept {days} days would "
                    "(--retention-days)")  # fmt: skip
    return ""


def _baseline(
    storage: Storage, verifier: Verifier, stored: StoredSet, policy: Incremental
) -> Baseline:
    def read(name: str, role: str) -> bytes:
        entry = stored.manifest.entry(name)
        part = entry.part(role) if entry is not None else None
        if part is None:
            raise FullNeeded(f"set {stored.id} has no {role} for {name}")
        cached = policy.cache.read(stored, name, role) if policy.cache else None
        if cached is not None and hashlib.sha256(cached).hexdigest() == part_raw(entry, role):
            return cached  # as the (proven) manifest says it was: the cache saved a download
        if cached is not None:
            gha.warn(f"the cached {role} of {name} is not the one set {stored.id} names: "
                     "reading it from the destination")  # fmt: skip
        chunks: list[bytes] = []

        def keep(stream: Readable) -> None:
            total = 0
            while chunk := stream.read(1 << 20):
                total += len(chunk)
                if total > MAX_COMPANION:
                    raise FullNeeded(f"the {role} of {name} in set {stored.id} is over 1 GiB")
                chunks.append(chunk)

        try:
            read_entry(storage, stored, part, verifier.entry_key(stored, part), keep)
        except (CheckFailed, DecryptionFailed) as exc:  # gone or damaged: diff against nothing
            raise FullNeeded(f"the {role} of {name} in set {stored.id} cannot be read: "
                             f"{exc.message()}") from None  # fmt: skip
        return b"".join(chunks)

    started = datetime.fromisoformat(stored.manifest.created_at.replace("Z", "+00:00"))
    return Baseline(
        set_id=stored.id,
        started_ns=int(started.timestamp()) * 1_000_000_000,
        raw_sizes={e.name: e.raw_size for e in stored.manifest.entries if _diffable(e)},
        read=read,
        full_when_over=policy.full_when_over,
    )


def part_raw(entry: Entry | None, role: str) -> str:
    """The SHA-256 the manifest records of a companion's decoded bytes ("" if none)."""
    companion = entry.companion(role) if entry is not None else None
    return companion.raw_sha256 if companion is not None else ""


def delta_manifest(manifest: Manifest, base: StoredSet | None) -> Manifest:
    """A run's manifest in format 3: each entry says its delta, a diff names its base."""
    entries = tuple(e if e.delta else replace(e, delta="full") for e in manifest.entries)
    ref = BaseRef(base.id, manifest_sha256(base)) if base is not None else None
    if ref is None or not any(e.delta != "full" for e in entries):
        ref = None  # nothing diffed (every entry new): a full set, itself a base
    return replace(manifest, format=FORMAT_DELTA, entries=entries, base=ref)
