"""Restore drills: restore a set into a scratch target, check it, measure the time.

The comparison of rows per table with the manifest is a pure function; what a kind can
check in a restored target (row counts, its engine's integrity check) is its source's
``inspect``. The measured restore time is the recovery time objective a team can quote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from urllib.parse import urlsplit

from offsite.errors import BadInput, OffsiteError
from offsite.restore import Restored, RestoreRequest, restore_set
from offsite.sets.manifest import Entry
from offsite.sets.stored import StoredSet
from offsite.sets.trust import Verifier
from offsite.sources import kind_class
from offsite.storage import open_storage
from offsite.storage.base import Storage
from offsite.storage.settings import StorageSettings
from offsite.stream.progress import Progress


def compare_rows(expected: dict[str, int], found: dict[str, int]) -> list[str]:
    """One line per table whose rows differ from the manifest, or that is missing."""
    lines = []
    for table in sorted(expected):
        if table not in found:
            lines.append(f"table {table}: missing after restore ({expected[table]} rows expected)")
        elif found[table] != expected[table]:
            lines.append(f"table {table}: {found[table]} rows, manifest says {expected[table]}")
    return lines


@dataclass(frozen=True)
class EntryDrill:
    entry: str
    kind: str
    location: str
    size: int
    restore_seconds: float
    check_seconds: float
    tables: int  # tables whose rows were compared
    recovery_seconds: float = 0.0  # a base backup's replay of the archive, after its restore
    checks: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass(frozen=True)
class DrillReport:
    set_id: str
    entries: tuple[EntryDrill, ...]
    seconds: float  # wall time of the whole restore, download and decryption included
    # what its record is sealed with (SPEC §9): the set's data key, and its key.gpg
    data_key: str | None = field(default=None, repr=False)  # a secret: never in a repr
    wrapped: bytes = field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)


def check_entry(entry: Entry, target: str, restored: Restored) -> EntryDrill:
    started = time.monotonic()
    inspection = kind_class(entry.kind).inspect_entry(target, entry.source, entry.stats)
    expected = entry.stats.get("rows")
    mismatches = list(inspection.problems)
    checks = list(inspection.checks)
    tables = 0
    if isinstance(expected, dict) and inspection.rows is not None:
        mismatches = compare_rows(expected, inspection.rows) + mismatches
        tables = len(expected)
    elif isinstance(expected, dict):
        checks.append("rows not counted: this kind cannot count them in the target")
    return EntryDrill(
        entry=entry.name,
        kind=entry.kind,
        location=restored.location,
        size=restored.size,
        restore_seconds=restored.seconds + inspection.recovery_seconds,
        check_seconds=time.monotonic() - started - inspection.recovery_seconds,
        recovery_seconds=inspection.recovery_seconds,
        tables=tables,
        checks=checks,
        mismatches=mismatches,
    )


def run_drill(request: RestoreRequest, progress: Progress | None = None) -> DrillReport:
    """Restore (owners not restored: a scratch server has other roles) and check each
    entry; the set's data key kept for the record, as the restore opened it."""
    request = replace(request, options=replace(request.options, no_owner=True))
    drilled: list[EntryDrill] = []
    started = time.monotonic()
    storage = open_storage(request.source, request.storage)
    with Verifier(storage, request.trust) as verifier:
        stored, done = restore_set(
            request, storage, verifier, progress or Progress(enabled=False),
            lambda entry, target, restored: drilled.append(check_entry(entry, target, restored)),
        )  # fmt: skip
        seconds = time.monotonic() - started - sum(d.check_seconds for d in drilled)
        data_key, wrapped = _seal(storage, verifier, stored)
    return DrillReport(done[0].set_id, tuple(drilled), seconds, data_key, wrapped)


def _seal(storage: Storage, verifier: Verifier, stored: StoredSet) -> tuple[str | None, bytes]:
    """The set's data key and its ``key.gpg``, when its entries use one and it opens;
    else none: the record is stored unverified, and the monitor says so."""
    from offsite.crypto.keys import KEY_FILE
    from offsite.crypto.modes import SET_KEY

    if not any(e.encryption.mode == SET_KEY for e in stored.manifest.entries):
        return None, b""
    try:
        data_key = verifier.data_key(stored)
        with storage.open(stored.key(KEY_FILE)) as fh:
            return data_key, fh.read(1 << 16)
    except OffsiteError:
        return None, b""


def record(
    report: DrillReport, into: str, dest: str, settings: StorageSettings,
    now: datetime | None = None, sign_key: str | None = None, passphrase: str | None = None,
) -> str:  # fmt: skip
    """Store the drill's record in the destination it drilled from (SPEC §9), sealed with
    the set's data key when it has one and the key was at hand, and signed by ``sign_key``
    (``passphrase`` unlocks it) beside it; its key."""
    import base64

    from offsite.sets.drill_records import STAMP, DrillRecord

    storage = open_storage(dest, settings)
    data_key, wrapped = report.data_key, report.wrapped
    scheme = urlsplit(into).scheme if "://" in into else "folder"
    entries = [
        {"entry": e.entry, "kind": e.kind, "restore_seconds": round(e.restore_seconds, 3),
         "tables": e.tables, "checks": e.checks, "ok": e.ok}
        for e in report.entries
    ]  # fmt: skip
    made = DrillRecord(
        report.set_id, (now or datetime.now(timezone.utc)).strftime(STAMP), report.ok,
        round(report.seconds, 3), scheme, entries,
        base64.b64encode(wrapped).decode() if data_key else "",
    ).sealed(data_key)  # fmt: skip
    data = made.to_json()
    if sign_key:  # the signature first: a record is complete once it is there
        from offsite.crypto.auth import sign
        from offsite.sets.drill_records import SIGNATURE

        if not storage.create(made.key + SIGNATURE, sign(data, sign_key, passphrase)):
            raise BadInput(f"a drill record {made.key} is there already: drill again in a second")
    if not storage.create(made.key, data):
        raise BadInput(f"a drill record {made.key} is there already: drill again in a second")
    return made.key
