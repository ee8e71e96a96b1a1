"""Which sets a retention policy keeps: a pure function with restic's ``forget`` semantics.

Each ``keep-<period> N`` rule walks the sets newest first and keeps the newest set of
each of the N most recent periods that have a set, and, like restic since 0.16, also the
oldest set while the rule has counts left (the longest history the counts allow);
``keep-last N`` keeps the N newest; ``keep-within D`` keeps every set less than D older
than the newest set. Rules are ORed, and a set records every rule that keeps it.

A diff (SPEC §10) is a restore point like a full set and counts alike; ``keep_bases`` then
keeps the base of every kept diff, which takes no place of a rule unless it was chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from offsite.errors import BadInput


@dataclass(frozen=True)
class Policy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: timedelta | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and value < 0:
                raise BadInput(f"--keep-{f.name} must be 0 or more, not {value}")

    @property
    def empty(self) -> bool:
        return self.within is None and not any(
            getattr(self, f.name) for f in fields(self) if f.name != "within"
        )


@dataclass(frozen=True)
class Decision:
    set_id: str
    time: datetime
    reasons: tuple[str, ...]  # the rules that keep it; empty means remove

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class Plan:
    decisions: tuple[Decision, ...]  # newest first

    @property
    def keep(self) -> list[Decision]:
        return [d for d in self.decisions if d.keep]

    @property
    def remove(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]


_PERIODS: tuple[tuple[str, Callable[[datetime], tuple[int, ...]]], ...] = (
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: tuple(t.isocalendar()[:2])),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: (t.year,)),
)


def plan(sets: Sequence[tuple[str, datetime]], policy: Policy) -> Plan:
    """Decide for each ``(set id, time)``; refuse an empty policy or one that keeps nothing."""
    if policy.empty:
        raise BadInput("no retention rule: give at least one --keep-… option")
    ordered = sorted(sets, key=lambda s: (s[1], s[0]), reverse=True)
    reasons: dict[str, list[str]] = {sid: [] for sid, _ in ordered}
    oldest = len(ordered) - 1
    rules = [("last", policy.last, None), *((n, getattr(policy, n), f) for n, f in _PERIODS)]
    for name, count, period in rules:
        kept, previous = 0, None
        for nr, (sid, moment) in enumerate(ordered):
            if kept >= count:
                break
            key = (nr,) if period is None else period(moment)
            if key != previous or nr == oldest:
                kept += 1
                previous = key
                reasons[sid].append(f"{name} {kept}/{count}")
    if policy.within is not None and ordered:
        newest = ordered[0][1]
        for sid, moment in ordered:
            if newest - moment < policy.within:
                reasons[sid].append(f"within {policy.within}")
    result = Plan(tuple(Decision(sid, t, tuple(reasons[sid])) for sid, t in ordered))
    if ordered and not result.keep:
        raise BadInput("this policy would remove every set; refusing")
    return result


def keep_bases(decided: Plan, bases: dict[str, str]) -> Plan:
    """``decided`` with the base of every kept diff kept too (``bases``: diff id -> base
    id), saying which diff keeps it."""
    kept = {d.set_id for d in decided.keep}
    needed: dict[str, list[str]] = {}
    for diff, base in bases.items():
        if diff in kept:
            needed.setdefault(base, []).append(diff)
    return Plan(
        tuple(
            d
            if d.set_id not in needed or d.keep
            else replace(d, reasons=tuple(f"base of {x}" for x in sorted(needed[d.set_id])))
            for d in decided.decisions
        )
    )
