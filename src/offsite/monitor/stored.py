"""What a destination holds: its complete sets, newest first, as backups to assess; the
times of its archived WAL files; its drill records (SPEC §9), newest first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from offsite import drill_records
from offsite.errors import BadInput, DestinationMissing, OffsiteError
from offsite.manifest import set_time
from offsite.monitor.health import Backup, Drill, Observation
from offsite.sets import Scan, StoredSet, scan
from offsite.storage import open_storage
from offsite.storage.base import Storage
from offsite.storage.settings import StorageSettings
from offsite.trust import TrustConfig, Verifier
from offsite.wal.names import is_wal_name


def observe_storage(
    dest: str, settings: StorageSettings, trust: TrustConfig | None = None
) -> Observation:
    """With a key in ``trust``, only sets that prove they were made with it count: a set
    planted in the destination never makes its backups look fresh."""
    seen = Observation(dest, url=dest)
    try:
        opened = open_storage(dest, settings)
        found = scan(opened)
    except DestinationMissing:
        return seen  # not made yet: no backup there, which the rules judge
    except BadInput:
        raise  # a destination the user wrote wrong: exit 2, not "could not check"
    except (OffsiteError, OSError) as exc:  # OSError: a local folder's own checks
        seen.error = exc.message() if isinstance(exc, OffsiteError) else str(exc)
        return seen
    # a set dated in the future (planted, or a clock gone wrong) never makes backups fresh
    current = found.current()
    if trust is not None and trust.keyed:
        with Verifier(opened, trust) as verifier:
            current = [s for s in current if verifier.refusal(s) is None]
    seen.backups = [Backup(s.id, s.manifest.size, set_time(s.id)) for s in reversed(current)]
    try:
        for obj in opened.list("wal/"):
            system_id = obj.key.split("/")[1] if obj.key.count("/") >= 2 else ""
            name = obj.key.rsplit("/", 1)[-1].split(".zst", 1)[0]
            if system_id.isdigit() and is_wal_name(name):
                seen.wal.setdefault(system_id, []).append(obj.modified)
        seen.drills = _drills(opened, found, trust)
    except (OffsiteError, OSError) as exc:
        seen.error = exc.message() if isinstance(exc, OffsiteError) else str(exc)
    return seen


READ_RECORDS = 5  # records read, newest first, until one counts


def _drills(storage: Storage, found: Scan, trust: TrustConfig | None) -> list[Drill]:
    """The newest drill record that counts: one listing of ``drills/``, then the newest
    records read until one verifies (with a key given, one that does not is left out, as
    a planted set is; without a key, the newest is taken and labelled unverified)."""
    keyed = trust is not None and trust.keyed
    soon = datetime.now(timezone.utc) + timedelta(minutes=5)
    sets = {s.id: s for s in found.sets}
    listed = drill_records.names([o.key for o in storage.list(drill_records.PREFIX)])
    for key, set_id, _ in listed[:READ_RECORDS]:
        try:
            with storage.open(key) as fh:
                record = drill_records.parse(fh.read(drill_records.MAX_RECORD + 1), key)
        except (OffsiteError, ValueError):
            continue
        if record.moment > soon:
            continue  # dated in the future: planted, or a clock gone wrong
        verified = keyed and _holds(storage, record, sets.get(set_id), trust)
        if keyed and not verified:
            continue
        return [Drill(set_id, record.moment, record.rto_seconds, record.ok, verified, key)]
    return []


def _holds(
    storage: Storage, record: drill_records.DrillRecord, stored: StoredSet | None,
    trust: TrustConfig | None,
) -> bool:  # fmt: skip
    """Whether the record's auth holds with the drilled set's data key (a set pruned
    since cannot vouch for its drills)."""
    if stored is None or trust is None:
        return False
    try:
        with Verifier(storage, trust) as verifier:
            return record.holds(verifier.data_key(stored))
    except OffsiteError:
        return False
