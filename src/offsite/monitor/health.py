"""Is a backup healthy? Pure decisions over what was observed: no I/O here.

A target is a workflow of a repository (its runs and their ``backup-*`` artifacts) or
a destination (its complete sets, its WAL archive, its drill records). ``assess`` turns
what was seen into a ``Health``: healthy, unhealthy with every reason, or unknown when
it could not be checked.

Objectives (issue 20, SPEC §9): the RPO is judged on the largest gap between
consecutive successful backups inside a window, the open gap to now included, so a
history with a dropped night fails even when the newest backup is fresh; the RTO on the
newest drill's measured restore time and age; and the newest backup's size (and a run's
duration) against the median of the ones before it, so a dump that failed quietly and
left a few bytes is caught.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from offsite.table import counted

HEALTHY, UNHEALTHY, UNKNOWN = "healthy", "unhealthy", "unknown"
FAILED = {"failure", "timed_out", "startup_failure", "action_required"}


@dataclass(frozen=True)
class Thresholds:
    max_age: timedelta
    max_failures: int = 0  # failed runs tolerated since the last success
    min_size: int = 1
    min_ratio: float = 0.5  # the newest size (and duration) against the median before it
    artifacts: bool = True  # the workflow keeps its backups as GitHub artifacts
    max_wal_age: timedelta | None = None  # a destination's WAL archives: newest file's age
    allow_unverified_wal: bool = False  # judge a WAL age no segment authenticated
    rpo: timedelta | None = None  # the largest gap between backups allowed in the window
    rto: timedelta | None = None  # the newest drill's restore time allowed
    max_drill_age: timedelta | None = None
    window: timedelta = timedelta(days=7)
    baseline: int = 5  # successful backups before the newest that make the median


@dataclass(frozen=True)
class Run:
    id: int
    number: int
    status: str  # queued, in_progress, completed, …
    conclusion: str | None  # success, failure, cancelled, …
    finished: datetime  # updated_at: when it completed
    url: str
    started: datetime | None = None  # run_started_at: its duration is finished - started

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished < self.started:
            return None
        return (self.finished - self.started).total_seconds()


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
    kind: str = "destination"  # or "workflow": a repository's backup workflow
    workflow_state: str | None = None  # None for a destination
    runs: list[Run] = field(default_factory=list)  # newest first
    backups: list[Backup] = field(default_factory=list)  # newest first
    error: str | None = None  # could not be checked: why
    absent: bool = False  # the repository has no such workflow (or the token cannot see it)
    requests: int = 0
    wal: dict[str, list[datetime]] = field(default_factory=dict)  # per cluster: files' times
    # per cluster: the time of the newest segment that authenticated; the clusters whose
    # archive could not be checked (no key here); what is out of place in the archives
    wal_verified: dict[str, datetime] = field(default_factory=dict)
    wal_unverified: set[str] = field(default_factory=set)
    wal_problems: list[str] = field(default_factory=list)
    set_problems: list[str] = field(default_factory=list)  # diffs whose base is gone
    drills: list[Drill] = field(default_factory=list)  # newest first
    reenabled: bool = False  # the monitor re-enabled the workflow GitHub had disabled
    history_short: bool = False  # the runs read do not reach back over the whole window
    pitr: set[str] = field(default_factory=set)  # clusters whose base backups are kept here
    notes: list[str] = field(default_factory=list)  # said, but no objective missed


@dataclass(frozen=True)
class Drill:
    """A drill's record (SPEC §9): when, of which set, its measured restore time."""

    set_id: str
    when: datetime
    rto_seconds: float
    ok: bool
    verified: bool  # its auth holds with the key given; else it is labelled unverified


@dataclass(frozen=True)
class Gap:
    """The largest time between consecutive successful backups (or archived WAL files)
    inside the window; ``end`` is "now" when the newest backup is its start."""

    start: datetime
    end: datetime
    open: bool  # no backup since ``start``

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def largest_gap(times: list[datetime], now: datetime, window: timedelta) -> Gap | None:
    """Over consecutive ``times`` whose later one falls inside the window, and the open
    gap from the newest to ``now``. None without any time."""
    if not times:
        return None
    ordered = sorted(times)
    since = now - window
    gaps = [Gap(a, b, False) for a, b in zip(ordered, ordered[1:], strict=False) if b > since]
    gaps.append(Gap(ordered[-1], max(now, ordered[-1]), True))
    return max(gaps, key=lambda g: g.length)


def below_median(newest: float, before: list[float], ratio: float) -> float | None:
    """The median of ``before`` when ``newest`` is under ``ratio`` of it, else None."""
    if not before or ratio <= 0:
        return None
    median = statistics.median(before)
    return median if median > 0 and newest < ratio * median else None


@dataclass(frozen=True)
class Health:
    target: str
    status: str
    reasons: list[str]
    last_success: datetime | None
    age: timedelta | None
    url: str
    failures: int = 0
    gap: Gap | None = None  # the largest in the window: the RPO achieved
    drill: Drill | None = None  # the newest drill recorded
    history: list[tuple[datetime, int]] = field(default_factory=list)  # (time, size), oldest first
    duration: float | None = None  # the newest successful run's, in seconds
    wal_newest: dict[str, datetime] = field(default_factory=dict)
    kind: str = "destination"  # or "workflow"

    @property
    def sizes(self) -> list[int]:
        """The recent successful backups' sizes, oldest first (ten at most)."""
        return [size for _, size in self.history][-10:]

    @property
    def size(self) -> int | None:
        """The newest backup's size."""
        return self.history[-1][1] if self.history else None

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


def human_seconds(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else human_span(timedelta(seconds=seconds))


def human_span(span: timedelta) -> str:
    """A length of time to the minute, two units at most: 95m, 26h 1m, 2d 3h. Where it
    is compared with a limit, "26h" must not stand for 26 hours and a minute."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes}m"
    big, small, unit, sub = ((minutes // 60, minutes % 60, "h", "m") if minutes < 48 * 60
                             else (minutes // 1440, minutes % 1440 // 60, "d", "h"))  # fmt: skip
    return f"{big}{unit} {small}{sub}" if small else f"{big}{unit}"


def _size_checks(latest: Backup, before: list[Backup], t: Thresholds) -> list[str]:
    """``before``: the successful backups before ``latest``, newest first."""
    reasons = []
    if latest.size < t.min_size:
        reasons.append(f"{latest.name} is {latest.size} bytes, under --min-size {t.min_size}")
    sizes = [float(b.size) for b in before[: t.baseline]]
    median = below_median(latest.size, sizes, t.min_ratio)
    if median is not None:
        reasons.append(
            f"{latest.name} is {latest.size} bytes, {100 * latest.size / median:.0f}% of the "
            f"median of the {len(sizes)} before it ({median:.0f} bytes; --min-ratio "
            f"{t.min_ratio:g}): too small"
        )
    return reasons


def _duration_checks(last: Run, before: list[Run], t: Thresholds) -> list[str]:
    seconds = last.seconds
    if seconds is None:
        return []
    durations = [s for s in (r.seconds for r in before[: t.baseline]) if s is not None]
    median = below_median(seconds, durations, t.min_ratio)
    if median is None:
        return []
    return [
        f"run #{last.number} took {human_seconds(seconds)}, under --min-ratio {t.min_ratio:g} "
        f"of the median {human_seconds(median)} of the {len(durations)} before it: too fast"
    ]


def _rpo_checks(gap: Gap | None, t: Thresholds, what: str, short: bool) -> list[str]:
    if t.rpo is None or gap is None or gap.length <= t.rpo:
        return []
    stamp = "%Y-%m-%d %H:%M"
    until = "now" if gap.open else gap.end.strftime(stamp)
    where = "" if not short else " (the history read does not cover the whole window)"
    return [
        f"{what}: a gap of {human_span(gap.length)} from {gap.start.strftime(stamp)} to "
        f"{until} UTC in the last {human_span(t.window)}, over the RPO "
        f"{human_span(t.rpo)}{where}"
    ]


def _drill_checks(drills: list[Drill], t: Thresholds, now: datetime) -> list[str]:
    if t.max_drill_age is None and t.rto is None:
        return []
    if not drills:
        return ["no restore drill recorded (drills/): the RTO is not proven"]
    newest = drills[0]
    if not newest.verified:  # a record anyone could have written proves no RTO (SPEC §9)
        return [f"the newest drill record, of set {newest.set_id}, is unverified: it proves "
                "no RTO (give the passphrase, or --trust-key for a signed record)"]  # fmt: skip
    reasons = []
    if not newest.ok:
        reasons.append(f"the newest drill, of set {newest.set_id}, failed")
    if t.max_drill_age is not None and now - newest.when > t.max_drill_age:
        reasons.append(
            f"the newest drill is {human_span(now - newest.when)} old, over "
            f"--max-drill-age {human_span(t.max_drill_age)}"
        )
    if t.rto is not None and newest.rto_seconds > t.rto.total_seconds():
        reasons.append(
            f"the newest drill restored in {human_seconds(newest.rto_seconds)}, over the RTO "
            f"{human_seconds(t.rto.total_seconds())}"
        )
    return reasons


def assess(seen: Observation, t: Thresholds, now: datetime) -> Health:
    if seen.error is not None:
        return Health(seen.target, UNKNOWN, [seen.error], None, None, seen.url, kind=seen.kind)
    if seen.workflow_state is None:
        return _assess_storage(seen, t, now)
    reasons: list[str] = []
    notes: list[str] = []
    if seen.reenabled:
        notes.append("GitHub had disabled the workflow for inactivity: the monitor re-enabled it")
    elif seen.workflow_state != "active":
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
        reasons.append(f"{counted(streak, 'failed run')} in a row since the last success")
    last = successes[0] if successes else None
    age = now - last.finished if last else None
    gap = largest_gap([r.finished for r in successes], now, t.window)
    rpo = _rpo_checks(gap, t, "successful runs", seen.history_short)
    if last is None:
        reasons.append("no successful run")
    elif age is not None and age > t.max_age and not (rpo and t.max_age == t.rpo):
        reasons.append(f"last success {human_age(age)} ago, over --max-age {human_age(t.max_age)}")
    reasons += rpo
    if last is not None:
        reasons += _duration_checks(last, successes[1:], t)
    history: list[tuple[datetime, int]] = []
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
            earlier = [(r, _total(by_run[r.id])) for r in successes[1:] if r.id in by_run]
            reasons += _size_checks(latest, [b for _, b in earlier], t)
            history = [(r.finished, b.size) for r, b in reversed([(last, latest), *earlier])]
    url = last.url if last else (seen.runs[0].url if seen.runs else seen.url)
    return Health(seen.target, UNHEALTHY if reasons or notes else HEALTHY, reasons + notes,
                  last.finished if last else None, age, url, streak, gap,
                  history=history, duration=last.seconds if last else None,
                  kind="workflow")  # fmt: skip


def _total(backups: list[Backup]) -> Backup:
    """A run's backup artifacts as one (a run may upload several)."""
    first = backups[0]
    name = first.name if len(backups) == 1 else f"{first.name} (+{len(backups) - 1})"
    return Backup(name, sum(b.size for b in backups), first.created,
                  any(b.expired for b in backups), first.run_id)  # fmt: skip


def _wal_checks(seen: Observation, t: Thresholds, now: datetime) -> list[str]:
    """Archiving that stalled: the RPO a WAL archive offers is its newest file's age, and
    with an RPO, its largest gap in the window. Each archive (one per cluster) on its own,
    so a busy one cannot hide a stalled one."""
    if t.max_wal_age is None and (t.rpo is None or not seen.wal):
        return []
    if not seen.wal:
        return ["no WAL archived here (wal/): is archive_command set to offsite wal push?"]
    reasons = list(seen.wal_problems)
    judged = {c: times for c, times in seen.wal.items() if c in seen.pitr} or seen.wal
    for system_id, times in sorted(judged.items()):
        newest = seen.wal_verified.get(system_id)
        if newest is None:
            if system_id not in seen.wal_unverified:
                reasons.append(f"no segment archived for cluster {system_id} authenticates: "
                               "its WAL age cannot be trusted")  # fmt: skip
                continue
            if not t.allow_unverified_wal:
                reasons.append(
                    f"the WAL age of cluster {system_id} is unverified (no passphrase or secret "
                    "key here to authenticate its newest segment): give the passphrase, or "
                    "the secret key in GNUPGHOME"
                )
                continue
            newest = max(times)
        if t.max_wal_age is not None and now - newest > t.max_wal_age:
            reasons.append(
                f"the newest WAL archived for cluster {system_id} is "
                f"{human_age(now - newest)} old, over --max-wal-age {human_age(t.max_wal_age)}: "
                "archive_command may be failing"
            )
        gap = largest_gap(times, now, t.window)
        reasons += _rpo_checks(gap, t, f"WAL archived for cluster {system_id}", False)
    return reasons


def _assess_storage(seen: Observation, t: Thresholds, now: datetime) -> Health:
    drill = seen.drills[0] if seen.drills else None
    wal_newest = {c: seen.wal_verified.get(c) or max(ts) for c, ts in seen.wal.items() if ts}
    if not seen.backups:
        return Health(seen.target, UNHEALTHY, ["no complete backup set", *seen.set_problems],
                      None, None, seen.url, drill=drill, wal_newest=wal_newest)  # fmt: skip
    latest = seen.backups[0]
    age = now - latest.created
    reasons = []
    gap = largest_gap([b.created for b in seen.backups], now, t.window)
    # point-in-time recovery: the RPO is the WAL archive's (sets are base backups, weekly)
    continuous = bool(seen.pitr & set(seen.wal))
    rpo = [] if continuous else _rpo_checks(gap, t, "complete sets", False)
    if age > t.max_age and not (rpo and t.max_age == t.rpo):
        limit = human_age(t.max_age)
        reasons.append(f"newest set {latest.name} is {human_age(age)} old, over --max-age {limit}")
    reasons += rpo
    reasons += _size_checks(latest, seen.backups[1:], t) + seen.set_problems
    reasons += _wal_checks(seen, t, now)
    reasons += _drill_checks(seen.drills, t, now)
    if continuous:
        wal = [largest_gap(ts, now, t.window) for c, ts in seen.wal.items() if c in seen.pitr]
        gap = max((g for g in wal if g is not None), key=lambda g: g.length, default=gap)
    notes = list(seen.notes)
    if drill is not None and not drill.verified and t.rto is None and t.max_drill_age is None:
        notes.append("the newest drill record is unverified: give the passphrase to prove it")
    history = [(b.created, b.size) for b in reversed(seen.backups[:30])]
    return Health(seen.target, UNHEALTHY if reasons else HEALTHY, reasons + notes,
                  latest.created, age, seen.url, gap=gap, drill=drill, history=history,
                  wal_newest=wal_newest)  # fmt: skip
