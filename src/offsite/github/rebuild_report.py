"""What a restore into GitHub was asked (``Options``) and what it did (``Report``): made,
found made already, what cannot come back, what was left out, what failed, and the
numbers GitHub gave where they could not be kept."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    """What a restore into GitHub made, found made already, and could not give back."""

    made: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)  # what cannot come back, one line each
    left_out: list[str] = field(default_factory=list)  # users and teams not on the target
    failed: list[str] = field(default_factory=list)  # refused: named, a second run retries
    numbers: dict[int, int] = field(default_factory=dict)  # the set's → the target's (--force)

    def as_json(self) -> dict[str, Any]:
        return {
            "made": dict(sorted(self.made.items())),
            "found": dict(sorted(self.found.items())),
            "cannot_come_back": self.lost,
            "failed": self.failed,
            "left_out": self.left_out,
            "numbers": {str(k): v for k, v in sorted(self.numbers.items())},
        }


@dataclass(frozen=True)
class Options:
    pace: float = 1.0
    force: bool = False
    dry_run: bool = False
    users: tuple[tuple[str, str], ...] = ()  # --map-user OLD=NEW
    teams: tuple[tuple[str, str], ...] = ()  # --map-team OLD=NEW
