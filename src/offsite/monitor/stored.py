"""What a destination holds: its complete sets, newest first, as backups to assess; the
times of its archived WAL files; its drill records (SPEC §9), newest first."""

from __future__ import annotations

import base64
import contextlib
from datetime import datetime, timedelta, timezone

from offsite.crypto.auth import import_trusted, signer
from offsite.crypto.gpg import throwaway_home
from offsite.crypto.keys import unwrap_key
from offsite.errors import BadInput, DestinationMissing, OffsiteError
from offsite.github.artifacts import kept_in_itself
from offsite.monitor.health import Backup, Drill, Observation
from offsite.monitor.walseen import observe_archive
from offsite.names import set_time
from offsite.sets import drill_records
from offsite.sets.stored import StoredSet, chain_problem, scan, wrong_passphrase
from offsite.sets.trust import TrustConfig, Verifier
from offsite.storage import open_storage
from offsite.storage.base import ObjectInfo, Storage
from offsite.storage.settings import StorageSettings
from offsite.urls import redact


def _proven(
    opened: Storage, trust: TrustConfig, current: list[StoredSet]
) -> tuple[list[StoredSet], list[str]]:
    """The sets that prove themselves with the key, and what to say when none does."""
    with Verifier(opened, trust) as verifier:
        refused = []
        if unopened := verifier.unopened(current):
            # said, and unhealthy as ever: a writer who replaces every key.gpg must not
            # turn a stale destination's alarm into "could not check"
            refused.append(wrong_passphrase(unopened).message().replace(
                "(wrong passphrase?)", "(wrong passphrase, or their key.gpg replaced?)"
            ))  # fmt: skip
        return verifier.usable(current), refused


def observe_storage(
    dest: str, settings: StorageSettings, trust: TrustConfig | None = None,
    entry: str | None = None,
) -> Observation:  # fmt: skip
    """With a key in ``trust``, only sets that prove they were made with it count: a set
    planted in the destination never makes its backups look fresh. With ``entry``, only
    sets holding it are its backups (a target of its own, ``DEST NAME``). The destination
    is named without its password everywhere the check goes: report, alerts, metrics and
    the status page (which GitHub Pages may publish)."""
    shown = redact(dest)
    seen = Observation(f"{shown} {entry}" if entry else shown, url=shown)
    try:
        opened = open_storage(dest, settings)
        found = scan(opened)
    except DestinationMissing as exc:
        # a folder that is not there (or a file in its place): mistyped, or a disk not
        # mounted, or removed by whoever could write there; unhealthy, and said, so that
        # the alert goes out (list and verify, which alert nobody, say it with exit 2)
        seen.set_problems = [f"{exc.message()} (mistyped, or not mounted?)"]
        return seen
    except BadInput:
        raise  # a destination the user wrote wrong: exit 2, not "could not check"
    except (OffsiteError, OSError) as exc:  # OSError: a local folder's own checks
        seen.error = exc.message() if isinstance(exc, OffsiteError) else str(exc)
        return seen
    # a set dated in the future (planted, or a clock gone wrong) never makes backups fresh
    current = found.current()
    refused: list[str] = []
    if trust is not None and trust.keyed:
        try:
            current, refused = _proven(opened, trust, current)
        except (OffsiteError, OSError) as exc:  # this target's, never every target's
            seen.error = exc.message() if isinstance(exc, OffsiteError) else str(exc)
            return seen
    # a diff is a backup with its base (SPEC §10): never fresh without it, as large as both
    # (its base among the sets that count here: with a key, those that prove themselves)
    broken = {s.id: why for s in current if (why := chain_problem(s, current)) is not None}
    seen.set_problems = refused + [
        f"set {i} is a diff whose base {why}" for i, why in broken.items()
    ]

    by_id = {s.id: s for s in found.sets}

    def size(stored: StoredSet) -> int:
        """What a restore of the set (with ``entry``: of that entry) reads: an entry's
        bytes, and its base entry's where it is a diff of it or unchanged (SPEC §10)."""
        base = by_id.get(stored.manifest.base.id) if stored.manifest.base else None
        total = 0
        for e in stored.manifest.entries:
            if entry is not None and e.name != entry:
                continue
            under = base.manifest.entry(e.name) if base and e.delta != "full" else None
            total += e.size + (under.size if under is not None else 0)
        return total

    newest = current[-1].manifest.entries if current else []
    kept = kept_in_itself(dest, [e.source for e in newest])
    seen.notes = [kept] if kept else []
    seen.backups = [
        Backup(s.id, size(s), set_time(s.id))
        for s in reversed(current)
        if s.id not in broken and (entry is None or s.manifest.entry(entry) is not None)
    ]  # fmt: skip
    # the clusters whose base backups are kept: their WAL archives give the RPO
    seen.pitr = {str(e.stats.get("system_id")) for s in current for e in s.manifest.entries
                 if e.kind == "pg-base" and e.stats.get("system_id")}  # fmt: skip
    try:
        passphrase = trust.passphrase if trust is not None else None
        now = datetime.now(timezone.utc)
        clusters: dict[str, list[ObjectInfo]] = {}
        for obj in opened.list("wal/"):
            parts = obj.key.split("/")
            if len(parts) == 3 and parts[1].isdigit():
                clusters.setdefault(parts[1], []).append(obj)
        for system_id, objects in sorted(clusters.items()):
            archive = observe_archive(opened, system_id, objects, passphrase, now)
            seen.wal_problems += archive.problems
            if archive.times:
                seen.wal[system_id] = archive.times
            if archive.newest is not None:
                seen.wal_verified[system_id] = archive.newest
            elif not archive.verified:
                seen.wal_unverified.add(system_id)
        seen.drills = _drills(opened, trust)
    except (OffsiteError, OSError) as exc:
        seen.error = exc.message() if isinstance(exc, OffsiteError) else str(exc)
    return seen


READ_RECORDS = 10  # records read, newest first, until one counts


def _drills(storage: Storage, trust: TrustConfig | None) -> list[Drill]:
    """The newest drill record that counts: one listing of ``drills/``, then the newest
    records (none dated in the future) read until one does. With the passphrase at hand
    a record counts when it proves itself (its auth, keyed from the data key its copy of
    the set's ``key.gpg`` opens to), as a set must; with --trust-key, when its signature
    (``<record>.sig``) is good; without a key, the newest is taken and labelled
    unverified (it satisfies no objective). One that cannot be read or parsed is passed
    over."""
    passphrase = trust.passphrase if trust is not None else None
    trusted = trust.trust_keys if trust is not None else ()
    soon = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime(drill_records.STAMP)
    listed = [o for o in storage.list(drill_records.PREFIX) if o.size <= drill_records.MAX_RECORD]
    named = drill_records.names([o.key for o in listed])
    signed = {o.key for o in listed if o.key.endswith(drill_records.SIGNATURE)}
    keys: dict[str, str | None] = {}
    with contextlib.ExitStack() as stack:
        home = stack.enter_context(throwaway_home()) if trusted else None
        fingerprints = import_trusted(trusted, home) if home is not None else ()
        for key, set_id, _ in [n for n in named if n[2] <= soon][:READ_RECORDS]:
            try:
                with storage.open(key) as fh:
                    raw = fh.read(drill_records.MAX_RECORD + 1)
                record = drill_records.parse(raw, key)
            except (OffsiteError, ValueError):
                continue
            verified = passphrase is not None and _holds(record, passphrase, keys)
            if not verified and home is not None and key + drill_records.SIGNATURE in signed:
                verified = _signed(storage, key, raw, home, fingerprints)
            if (passphrase is not None or trusted) and not verified:
                continue
            return [Drill(set_id, record.moment, record.rto_seconds, record.ok, verified)]
    return []


def _signed(storage: Storage, key: str, raw: bytes, home: str, trusted: tuple[str, ...]) -> bool:
    """Whether ``<key>.sig`` is a good signature of the record's bytes by a --trust-key."""
    try:
        with storage.open(key + drill_records.SIGNATURE) as fh:
            signature = fh.read(1 << 16)
    except OffsiteError:
        return False
    return signer(raw, signature, home) in trusted


def _holds(record: drill_records.DrillRecord, passphrase: str, keys: dict[str, str | None]) -> bool:
    """Whether the record's auth holds with the data key its ``key.gpg`` opens to with the
    passphrase (a key.gpg is opened once per check)."""
    if not record.key_gpg:
        return False
    if record.key_gpg not in keys:
        try:
            wrapped = base64.b64decode(record.key_gpg, validate=True)
            keys[record.key_gpg] = unwrap_key(wrapped, (), passphrase)
        except (ValueError, OffsiteError):
            keys[record.key_gpg] = None
    key = keys[record.key_gpg]
    return key is not None and record.holds(key)
