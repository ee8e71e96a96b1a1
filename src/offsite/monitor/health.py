"""Is a backup healthy? Pure decisions over what was observed: no I/O here.

A target is a workflow of a repository (its runs and their ``backup-*`` artifacts) or
a destination (its complete sets). ``assess`` turns what was seen into a ``Health``:
healthy, unhealthy with every reason, or unknown when it could not be checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

HEALTHY, UNHEALTHY, UNKNOWN = "healthy", "unhealthy", "unknown"
FAILED = {"failure", "timed_out", "startup_failure", "action_required"}


@dataclass(frozen=True)
class Thresholds:
    max_age: timedelta
    max_failures: int = 0  # failed runs tolerated since the last success
    min_size: int = 1
    max_shrink: float = 50.0  # percent, against the previous successful backup
    artifacts: bool = True  # the workflow keeps its backups as GitHub artifacts
    max_wal_age: timedelta | None = None  # a destination's WAL archives: newest file's age


@dataclass(frozen=True)
class Run:
    id: int
    number: int
    status: str  # queued, in_progress, completed, …
    conclusion: str | None  # success, failure, cancelled, …
    finished: datetime  # updated_at: when it completed
    url: str


@dataclass(frozen=True)
class Backup:
    """One stored backup: an artifact of a run, or a set in a destination."""

    name: str
    size: int
    created: datetime
    expired: bool = False
    run_id: int | None = None


@dataclass
class Observation:
    target: str
    url: str = ""
    workflow_state: str | None = None  # None for a destination
    runs: list[Run] = field(default_factory=list)  # newest first
    backups: list[Backup] = field(default_factory=list)  # newest first
    error: str | None = None  # could not be checked: why
    absent: bool = False  # the repository has no such workflow (or the token cannot see it)
    requests: int = 0
    wal: dict[str, datetime] = field(default_factory=dict)  # WAL archive: newest file's time


@dataclass(frozen=True)
class Health:
    target: str
    status: str
    reasons: list[str]
    last_success: datetime | None
    age: timedelta | None
    url: str
    sizes: list[int]  # of the recent successful backups, oldest first
    failures: int = 0

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "fresh"


def human_age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // (24 * 60)}d"


def _size_checks(latest: Backup, previous: Backup | None, t: Thresholds) -> list[str]:
    reasons = []
    if latest.size < t.min_size:
        reasons.append(f"{latest.name} is {latest.size} bytes, under --min-size {t.min_size}")
    if previous is not None and previous.size > 0:
        drop = 100.0 * (previous.size - latest.size) / previous.size
        if drop > t.max_shrink:
            reasons.append(
                f"{latest.name} shrank by {drop:.0f}% ({previous.size} → {latest.size} bytes; "
                f"--max-shrink {t.max_shrink:g}%)"
            )
    return reasons


def assess(seen: Observation, t: Thresholds, now: datetime) -> Health:
    if seen.error is not None:
        return Health(seen.target, UNKNOWN, [seen.error], None, None, seen.url, [])
    if seen.workflow_state is None:
        return _assess_storage(seen, t, now)
    reasons: list[str] = []
    if seen.workflow_state != "active":
        reasons.append(f"the workflow is {seen.workflow_state}: its schedule does not run")
    done = [r for r in seen.runs if r.status == "completed"]
    streak = 0
    for run in done:
        if run.conclusion == "success":
            break
        if run.conclusion in FAILED:
            streak += 1
    successes = [r for r in done if r.conclusion == "success"]
    if streak > t.max_failures:
        reasons.append(f"{streak} failed run(s) in a row since the last success")
    last = successes[0] if successes else None
    age = now - last.finished if last else None
    if last is None:
        reasons.append("no successful run")
    elif age is not None and age > t.max_age:
        reasons.append(f"last success {human_age(age)} ago, over --max-age {human_age(t.max_age)}")
    sizes: list[int] = []
    if last is not None and t.artifacts:
        by_run: dict[int, list[Backup]] = {}
        for b in seen.backups:
            if b.run_id is not None:
                by_run.setdefault(b.run_id, []).append(b)
        mine = by_run.get(last.id, [])
        if not mine:
            reasons.append(f"run #{last.number} stored no backup-* artifact")
        else:
            latest = _total(mine)
            if any(b.expired for b in mine):
                reasons.append(f"{latest.name} of run #{last.number} has expired")
            earlier = [by_run[r.id] for r in successes[1:] if r.id in by_run]
            previous = _total(earlier[0]) if earlier else None
            reasons += _size_checks(latest, previous, t)
            sizes = [_total(b).size for b in reversed([mine, *earlier])]
    url = last.url if last else (seen.runs[0].url if seen.runs else seen.url)
    return Health(seen.target, UNHEALTHY if reasons else HEALTHY, reasons,
                  last.finished if last else None, age, url, sizes, streak)  # fmt: skip


def _total(backups: list[Backup]) -> Backup:
    """A run's backup artifacts as one (a run may upload several)."""
    first = backups[0]
    name = first.name if len(backups) == 1 else f"{first.name} (+{len(backups) - 1})"
    return Backup(name, sum(b.size for b in backups), first.created,
                  any(b.expired for b in backups), first.run_id)  # fmt: skip


def _wal_checks(seen: Observation, t: Thresholds, now: datetime) -> list[str]:
    """Archiving that stalled: the RPO a WAL archive offers is its newest file's age. Each
    archive (one per cluster) on its own, so a busy one cannot hide a stalled one."""
    if t.max_wal_age is None:
        return []
    if not seen.wal:
        return ["no WAL archived here (wal/): is archive_command set to offsite wal push?"]
    limit = human_age(t.max_wal_age)
    return [
        f"the newest WAL archived for cluster {system_id} is {human_age(now - newest)} old, "
        f"over --max-wal-age {limit}: archive_command may be failing"
        for system_id, newest in sorted(seen.wal.items())
        if now - newest > t.max_wal_age
    ]


def _assess_storage(seen: Observation, t: Thresholds, now: datetime) -> Health:
    if not seen.backups:
        return Health(seen.target, UNHEALTHY, ["no complete backup set"], None, None,
                      seen.url, [])  # fmt: skip
    latest = seen.backups[0]
    previous = seen.backups[1] if len(seen.backups) > 1 else None
    age = now - latest.created
    reasons = []
    if age > t.max_age:
        limit = human_age(t.max_age)
        reasons.append(f"newest set {latest.name} is {human_age(age)} old, over --max-age {limit}")
    reasons += _size_checks(latest, previous, t)
    reasons += _wal_checks(seen, t, now)
    sizes = [b.size for b in reversed(seen.backups[:10])]
    return Health(seen.target, UNHEALTHY if reasons else HEALTHY, reasons, latest.created,
                  age, seen.url, sizes)  # fmt: skip
