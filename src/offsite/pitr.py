"""Point-in-time recovery: which base backup a target needs, and whether the archive can
reach it (SPEC §8). Pure decisions over what the sets and the archive's listing say."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from offsite.errors import BadInput
from offsite.sets.manifest import Entry
from offsite.sets.stored import StoredSet
from offsite.wal.names import BASE_KIND, lsn_text, lsn_value


@dataclass(frozen=True)
class Target:
    time: datetime | None = None
    lsn: str | None = None

    @property
    def given(self) -> bool:
        return self.time is not None or self.lsn is not None

    def describe(self) -> str:
        if self.time is not None:
            return self.time.isoformat()
        return f"LSN {self.lsn}" if self.lsn else "the latest archived point"


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with its zone (``Z`` or an offset); a time without one is refused:
    a server and a runner may not agree on what local time means."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadInput(f"{text!r} is not a time like 2026-11-26T14:05:00Z") from None
    if when.tzinfo is None:
        raise BadInput(f"{text!r} has no time zone: add Z (UTC) or an offset like +01:00")
    return when


def _stop_time(entry: Entry) -> datetime | None:
    raw = entry.stats.get("stop_time")
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None
    return datetime.fromtimestamp(raw, timezone.utc)


def stopped(entry: Entry) -> str:
    """When the base backup ended, as a person reads it."""
    when = _stop_time(entry)
    stop_lsn = entry.stats.get("stop_lsn")
    if when is not None:
        return when.isoformat(timespec="seconds")
    return lsn_text(stop_lsn) if isinstance(stop_lsn, int) else "an unrecorded point"


def ends_before(entry: Entry, target: Target) -> bool:
    """Whether the base backup ``entry`` is over by ``target``: recovery can only reach
    points after the end of the base backup it starts from."""
    if target.time is not None:
        stop = _stop_time(entry)
        return stop is not None and stop <= target.time
    if target.lsn is not None:
        stop_lsn = entry.stats.get("stop_lsn")
        return isinstance(stop_lsn, int) and stop_lsn <= lsn_value(target.lsn)
    return True


def base_entry(stored: StoredSet, name: str | None) -> Entry | None:
    """The set's base backup: the one named, or its only one."""
    bases = [e for e in stored.manifest.entries if e.kind == BASE_KIND]
    if name is not None:
        return next((e for e in bases if e.name == name), None)
    return bases[0] if len(bases) == 1 else None


def choose_base(sets: list[StoredSet], name: str | None, target: Target) -> StoredSet:
    """The newest set whose base backup ends before ``target``; BadInput saying what is
    possible when none does."""
    with_base = [s for s in sets if base_entry(s, name) is not None]
    if not with_base:
        raise BadInput("no set here holds a base backup (offsite backup --physical)")
    for stored in sorted(with_base, key=lambda s: s.id, reverse=True):
        entry = base_entry(stored, name)
        if entry is not None and ends_before(entry, target):
            return stored
    oldest = min(with_base, key=lambda s: s.id)
    entry = base_entry(oldest, name)
    assert entry is not None
    raise BadInput(
        f"{target.describe()} is before the oldest base backup kept here (set {oldest.id}, "
        f"which ends at {stopped(entry)}): "
        "no earlier point can be recovered"
    )


def check_reachable(newest_archived: datetime | None, target: Target) -> None:
    """Refuse a time after what the archive holds: the newest file's upload time bounds
    every commit it can replay."""
    if target.time is None:
        return
    if newest_archived is None:
        raise BadInput("the WAL archive is empty: nothing after the base backup can be recovered")
    if target.time > newest_archived:
        raise BadInput(
            f"{target.describe()} is after the newest archived WAL "
            f"({newest_archived.isoformat(timespec='seconds')}): choose an earlier time, "
            "or wait for the archive to catch up"
        )
