"""Fan-out across jobs: stable, disjoint, complete shares of a list of names.

A name's place comes from its SHA-256, not from its position in the list, so the shares
do not depend on the order a configuration file or an API listed the names in; dealing
the names round-robin in that order keeps the shares within one name of each other.
"""

from __future__ import annotations

import hashlib
import re

from offsite.errors import BadInput

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(value: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``: the second of four shares, counted from 1."""
    m = _SHARD.match(value)
    if not m:
        raise BadInput(f"--shard takes I/N, e.g. 2/4, not {value!r}")
    index, total = int(m.group(1)), int(m.group(2))
    if not 1 <= index <= total:
        raise BadInput(f"--shard {value}: I goes from 1 to N")
    return index, total


def shares(names: list[str], total: int) -> list[list[str]]:
    """``total`` lists that together hold every name once; each sorted by name."""
    if total < 1:
        raise BadInput("--shards must be at least 1")
    order = sorted(set(names), key=lambda n: (hashlib.sha256(n.encode()).hexdigest(), n))
    out: list[list[str]] = [[] for _ in range(total)]
    for i, name in enumerate(order):
        out[i % total].append(name)
    return [sorted(share) for share in out]


def share(names: list[str], index: int, total: int) -> list[str]:
    return shares(names, total)[index - 1]


def matrix(names: list[str], total: int) -> dict[str, list[dict[str, object]]]:
    """A ``strategy.matrix`` value (``fromJSON``): one job per non-empty share."""
    jobs: list[dict[str, object]] = []
    for i, names_in in enumerate(shares(names, total), start=1):
        if names_in:
            jobs.append({"shard": f"{i}/{total}", "only": ",".join(names_in), "names": names_in})
    return {"include": jobs}
