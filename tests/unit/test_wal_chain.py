"""Which WAL files a base backup needs, and which no kept one does: positions, timelines,
segment sizes."""

from __future__ import annotations

from offsite.wal.chain import reach, removable, segment_name

MB16 = 16 << 20


def names(timeline: int, low: int, high: int, size: int = MB16) -> set[str]:
    return {segment_name(timeline, n, size) for n in range(low, high + 1)}


def test_a_single_timeline_needs_every_segment_from_the_start_to_the_newest() -> None:
    stored = names(1, 3, 9)
    found = reach(stored, 1, 3 * MB16 + 40, {}, MB16, 4 * MB16)
    assert found.newest == segment_name(1, 9, MB16) and found.missing == ()
    gap = reach(stored - {segment_name(1, 6, MB16)}, 1, 3 * MB16 + 40, {}, MB16, 4 * MB16)
    assert gap.missing == (segment_name(1, 6, MB16),)


def test_an_archive_that_stops_before_the_base_backup_ends_is_not_enough() -> None:
    assert reach(set(), 1, 3 * MB16, {}, MB16, 4 * MB16).missing == tuple(sorted(names(1, 3, 4)))
    found = reach(names(1, 1, 3), 1, 3 * MB16, {}, MB16, 5 * MB16 + 1)
    assert found.missing == tuple(sorted(names(1, 4, 5)))


def test_a_new_timeline_is_read_from_the_segment_that_holds_the_switch() -> None:
    switch = 7 * MB16 + 500  # inside segment 7: PostgreSQL reads 7 from timeline 2
    stored = names(1, 3, 6) | {segment_name(1, 7, MB16) + ".partial"} | names(2, 7, 9)
    stored.add("00000002.history")
    found = reach(stored, 1, 3 * MB16, {2: {1: switch}}, MB16, 3 * MB16 + 100)
    assert found.missing == () and found.newest == segment_name(2, 9, MB16)
    assert segment_name(1, 7, MB16) not in found.needed


def test_a_branch_taken_before_the_base_backup_is_not_followed() -> None:
    stored = names(1, 3, 12) | names(2, 5, 6) | {"00000002.history"}
    found = reach(stored, 1, 10 * MB16, {2: {1: 5 * MB16}}, MB16, 10 * MB16 + 9)
    assert found.newest == segment_name(1, 12, MB16) and found.missing == ()


def test_prune_compares_positions_and_trusts_no_odd_size() -> None:
    stored = names(1, 1, 9) | {"00000002.history"}
    gone = removable(stored, 5 * MB16 + 10, MB16)
    assert gone == sorted(names(1, 1, 4))  # segment 5 holds the start: it stays
    assert removable(stored, 5 * MB16 + 10, 1 << 33) == []  # no such segment size
    assert removable(stored, 5 * MB16 + 10, 3 << 20) == []  # not a power of two


def test_one_name_planted_far_ahead_is_walked_past_never_spelt_out() -> None:
    """A segment name of log 0xFFFFFFFF made the range to check billions of names long
    (verify --wal stalled): the first MAX_NAMED missing are named, the rest counted."""
    from offsite.wal.chain import MAX_NAMED

    far = "00000001FFFFFFFF000000FF"
    found = reach(names(1, 3, 9) | {far}, 1, 3 * MB16, {}, MB16, 4 * MB16)
    assert found.newest == far
    assert len(found.missing) == MAX_NAMED and found.missing[0] == segment_name(1, 10, MB16)
    assert found.unnamed == (0xFFFFFFFF * 256 + 255) - 10 - MAX_NAMED  # 10 … far-1
    assert set(found.needed) == names(1, 3, 9) | {far}


def test_a_name_spelt_past_the_logs_last_segment_hides_no_hole() -> None:
    """``…00000105`` at 16 MiB (segment field past 0xFF) reads as the number of
    ``…0000000100000005``: planted beside a deleted segment it evened the count, and
    verify --wal called an archive with a hole whole. Only PostgreSQL's spelling counts."""
    have = names(1, 0xF0, 0x1F0) - {segment_name(1, 0x1C8, MB16)}
    alias = "000000010000000000000105"  # the segment field says 0x105
    found = reach(have | {alias}, 1, 0xF0 * MB16, {}, MB16, 0xF1 * MB16)
    assert found.missing == (segment_name(1, 0x1C8, MB16),)
    assert alias not in found.needed
