"""Which WAL files a base backup needs to reach the newest archived one, and which files
no kept base backup needs: pure decisions over the archive's listing (names only).

A segment's name is its timeline and number: ``TTTTTTTTXXXXXXXXYYYYYYYY``, the number being
``X * (2^32 / segment size) + Y``. A timeline's ``.history`` file lists its ancestors and
the position where each one ended (``parent<TAB>X/Y<TAB>reason``); recovery follows it:
the old timeline's segments up to the switch, the new one's from there on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from offsite.wal.names import is_segment

DEFAULT_SEGMENT = 16 << 20


def segment_name(timeline: int, number: int, size: int) -> str:
    per = 0x100000000 // size
    return f"{timeline:08X}{number // per:08X}{number % per:08X}"


def segment_of(name: str, size: int) -> tuple[int, int]:
    """(timeline, number) of a segment's name."""
    per = 0x100000000 // size
    return int(name[:8], 16), int(name[8:16], 16) * per + int(name[16:24], 16)


def parse_history(text: str) -> dict[int, int]:
    """A ``.history`` file: each ancestor timeline and the position it ended at."""
    ends: dict[int, int] = {}
    for line in text.splitlines():
        found = re.match(r"^\s*(\d+)\s+([0-9A-Fa-f]+)/([0-9A-Fa-f]+)", line)
        if found:
            ends[int(found.group(1))] = (int(found.group(2), 16) << 32) | int(found.group(3), 16)
    return ends


def timeline_for(
    timeline: int, consistent: int, histories: dict[int, dict[int, int]], archived: set[int]
) -> int:
    """The newest timeline a base backup (consistent from ``consistent`` on ``timeline``,
    its end) can recover into: its own, or one branched from it after that point. A
    timeline branched off before (a restore promoted from an earlier point) is another
    history, and recovery into it fails; ``archived``: timelines with segments."""
    best = timeline
    for candidate, ends in histories.items():
        if candidate in archived and candidate > best and ends.get(timeline, -1) >= consistent:
            best = candidate
    return best


MAX_NAMED = 100  # missing files named, at most (the rest counted): see ``reach``


@dataclass(frozen=True)
class Reach:
    """What a base backup needs, read against the archive."""

    newest: str | None  # the newest segment archived
    needed: tuple[str, ...]  # the files it needs, from its start to the newest, that are there
    missing: tuple[str, ...]  # those the archive lacks, the first MAX_NAMED of them
    unnamed: int = 0  # how many more it lacks


def reach(
    stored: set[str],
    timeline: int,
    start_lsn: int,
    histories: dict[int, dict[int, int]],
    size: int = DEFAULT_SEGMENT,
    stop_lsn: int | None = None,
) -> Reach:
    """The files a base backup (from ``start_lsn`` to ``stop_lsn`` on ``timeline``) needs
    to reach the newest segment in ``stored``, across the timelines ``histories`` (a
    timeline's ancestors and where each ended) say lead there. The segments up to the
    backup's own end are needed whatever the archive holds: without them it never becomes
    consistent."""
    # a name is one segment only as PostgreSQL spells it: a segment field past the log's
    # last (``…00000105`` at 16 MiB) would count as another name's segment and hide a hole
    segments = sorted({segment_of(n, size) for n in stored if is_segment(n)
                       and segment_name(*segment_of(n, size), size) == n})  # fmt: skip
    consistent = max(start_lsn, stop_lsn or 0)
    newest_tli = timeline_for(timeline, consistent, histories, {t for t, _ in segments})
    own_end = consistent // size
    on_it = [n for t, n in segments if t == newest_tli]
    if newest_tli == timeline:
        on_it.append(own_end)
    if not on_it:
        return Reach(None, (), ())
    newest = max(on_it)
    path: list[tuple[int, int, int]] = []  # (timeline, first segment, last segment)
    first = start_lsn // size
    if newest_tli == timeline:
        path.append((timeline, first, newest))
    else:
        ends = histories.get(newest_tli)
        if ends is None or timeline not in ends:
            name = f"{newest_tli:08X}.history"
            return Reach(segment_name(newest_tli, newest, size), (name,), (name,))
        chain = sorted(t for t in ends if t >= timeline)
        for tli in chain:
            # the segment holding the switch is read from the new timeline (PostgreSQL
            # copies it there), so the old one is needed up to the segment before
            switch = ends[tli]
            path.append((tli, first, switch // size - 1))
            first = switch // size
        path.append((newest_tli, first, newest))
    histories_needed = [f"{t:08X}.history" for t in range(timeline + 1, newest_tli + 1)
                        if any(t == p[0] for p in path)]  # fmt: skip
    needed = [h for h in histories_needed if h in stored]
    missing = [h for h in histories_needed if h not in stored]
    # the names a range lacks are found by walking it past what is there, never whole: one
    # name planted far ahead (a log number of 0xFFFFFFFF) makes a range of billions
    unnamed = 0
    for tli, low, high in path:
        have = [n for t, n in segments if t == tli and low <= n <= high]
        needed += [segment_name(tli, n, size) for n in have]
        absent, present, n = (high - low + 1) - len(have), set(have), low
        while absent > 0 and len(missing) < MAX_NAMED and n <= high:
            if n not in present:
                missing.append(segment_name(tli, n, size))
                absent -= 1
            n += 1
        unnamed += max(absent, 0)
    archived = [n for t, n in segments if t == newest_tli]
    shown = segment_name(newest_tli, max(archived), size) if archived else None
    return Reach(shown, tuple(needed), tuple(missing), unnamed)


def valid_size(size: object) -> bool:
    """A WAL segment size PostgreSQL allows: a power of two from 1 MiB to 1 GiB."""
    return (isinstance(size, int) and not isinstance(size, bool) and (1 << 20) <= size <= (1 << 30)
            and not size & (size - 1))  # fmt: skip


def removable(stored: set[str], oldest_start: int, size: int) -> list[str]:
    """Files no kept base backup needs: segments (and their ``.partial`` and ``.backup``
    files) that end at or before the position the oldest kept base backup starts at,
    compared as positions in the WAL (``size``: the archive's true segment size). History
    files stay."""
    if not valid_size(size):
        return []
    gone = []
    for name in stored:
        base = name[:24]
        if len(base) == 24 and is_segment(base):
            end = (segment_of(base, size)[1] + 1) * size  # the position after the segment
            if end <= oldest_start:
                gone.append(name)
    return sorted(gone)
