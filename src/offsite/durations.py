"""Durations as users write them: 90m, 26h, 7d, 2w; seconds (90s) for a WAL archive's age."""

from __future__ import annotations

import re
from datetime import timedelta

from offsite.errors import BadInput

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text)
    if not m or int(m.group(1)) == 0:
        raise BadInput(
            f"duration {text!r}: write a positive number and a unit, e.g. 90m, 26h, 7d, 2w"
        )
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
