"""The monitor's objectives over hand-made observations (issue 20): the RPO judged on the
largest gap in a window, the RTO on the newest drill, "too small, too fast" against the
median; their configuration; the metrics text; the drill record's seal; the status page's
escaping."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from offsite.config import parse
from offsite.errors import BadInput
from offsite.monitor import metrics, page
from offsite.monitor.health import (
    HEALTHY,
    UNHEALTHY,
    Backup,
    Drill,
    Observation,
    Run,
    Thresholds,
    assess,
    largest_gap,
)
from offsite.sets import drill_records

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def nightly(days: int, skip: tuple[int, ...] = ()) -> list[Run]:
    """A successful run each night at 02:00 for ``days`` nights, newest first."""
    first = NOW.replace(hour=2)
    return [Run(n, n, "completed", "success", first - timedelta(days=n), f"https://x/runs/{n}",
                first - timedelta(days=n, minutes=10))
            for n in range(days) if n not in skip]  # fmt: skip


def flow(runs: list[Run]) -> Observation:
    return Observation("o/r backup.yml", workflow_state="active", runs=runs)


RPO = Thresholds(max_age=26 * H, artifacts=False, rpo=26 * H)


def test_a_steady_history_meets_the_rpo_that_a_dropped_night_does_not() -> None:
    assert assess(flow(nightly(10)), RPO, NOW).status == HEALTHY
    dropped = assess(flow(nightly(10, skip=(3,))), RPO, NOW)
    assert dropped.status == UNHEALTHY
    # the newest run is fresh: only the gap tells
    assert dropped.age is not None and dropped.age < 26 * H
    assert "a gap of 2d from 2026-11-22 02:00 to 2026-11-24 02:00 UTC" in dropped.reason
    assert "over the RPO 26h" in dropped.reason
    # a hole older than the window is history, not the present RPO
    old_hole = assess(flow(nightly(10, skip=(8,))), RPO, NOW)
    assert old_hole.status == HEALTHY


def test_the_open_gap_to_now_counts() -> None:
    gap = largest_gap([NOW - 50 * H, NOW - 30 * H], NOW, timedelta(days=7))
    assert gap is not None and gap.open and gap.length == 30 * H
    assert largest_gap([], NOW, timedelta(days=7)) is None


def test_too_small_and_too_fast_against_the_median() -> None:
    runs = [Run(n, n, "completed", "success", NOW - n * 24 * H, f"u{n}",
                NOW - n * 24 * H - (timedelta(seconds=30) if n == 0 else 10 * timedelta(minutes=1)))
            for n in range(6)]  # fmt: skip
    sizes = [Backup(f"backup-{n}", 100 if n == 0 else 1000, NOW - n * 24 * H, run_id=n)
             for n in range(6)]  # fmt: skip
    seen = Observation("o/r backup.yml", workflow_state="active", runs=runs, backups=sizes)
    health = assess(seen, Thresholds(max_age=26 * H), NOW)
    assert health.status == UNHEALTHY
    assert "backup-0 is 100 bytes, 10% of the median of the 5 before it" in health.reason
    assert "run #0 took 30s, under --min-ratio 0.5 of the median 10m" in health.reason
    relaxed = assess(seen, Thresholds(max_age=26 * H, min_ratio=0.05), NOW)
    assert relaxed.status == HEALTHY, relaxed.reasons


def store(drills: list[Drill]) -> Observation:
    return Observation("s3://b", url="s3://b", backups=[Backup("20261126T100000Z", 10, NOW - H)],
                       drills=drills)  # fmt: skip


@pytest.mark.parametrize(
    ("drills", "thresholds", "words"),
    [
        ([], Thresholds(26 * H, max_drill_age=31 * 24 * H), "no restore drill recorded"),
        ([Drill("x", NOW - 40 * 24 * H, 60, True, True)],
         Thresholds(26 * H, max_drill_age=31 * 24 * H), "the newest drill is 40d old"),
        ([Drill("x", NOW - 24 * H, 3 * 3600, True, True)],
         Thresholds(26 * H, rto=2 * H), "restored in 3h, over the RTO 2h"),
        ([Drill("x", NOW - 24 * H, 60, False, True)],
         Thresholds(26 * H, rto=2 * H), "the newest drill, of set x, failed"),
        ([Drill("x", NOW - 24 * H, 60, True, False)],
         Thresholds(26 * H, rto=2 * H), "is unverified: it proves no RTO"),
    ],
)  # fmt: skip
def test_the_rto_is_judged_on_the_newest_drill(
    drills: list[Drill], thresholds: Thresholds, words: str
) -> None:
    health = assess(store(drills), thresholds, NOW)
    assert health.status == UNHEALTHY and words in health.reason
    fine = assess(store([Drill("x", NOW - 24 * H, 60, True, True)]), thresholds, NOW)
    assert fine.status == HEALTHY, fine.reasons


def test_objectives_by_source_group_and_file_the_strictest_wins() -> None:
    config = parse(
        """
objectives: {rpo: 24h, rto: 4h}
group-objectives: {critical: {rpo: 15m}}
sources:
  - {name: shop, url: "postgresql://db/shop", groups: [critical]}
  - {name: files, path: /srv, objectives: {rto: 30m}}
""",
        "offsite.yml",
    )
    shop, files = config.sources
    assert config.objectives_of(shop).rpo == timedelta(minutes=15)
    assert config.objectives_of(shop).rto == 4 * H
    assert config.objectives_of(files).rto == timedelta(minutes=30)
    assert config.strictest().rpo == timedelta(minutes=15)
    assert config.strictest().rto == timedelta(minutes=30)
    with pytest.raises(BadInput, match=r"objectives\.rpo"):
        parse("sources: []\nobjectives: {rpo: soon}\n", "offsite.yml")


def test_the_metrics_text_passes_promtool_and_escapes_labels() -> None:
    health = assess(flow(nightly(10)), RPO, NOW)
    odd = assess(Observation('o/r "x"\\y\nz.yml', workflow_state="active", runs=nightly(2)),
                 RPO, NOW)  # fmt: skip
    text = metrics.exposition(metrics.samples([health, odd], RPO, 3, NOW))
    assert 'offsite_target_healthy{repository="o/r",workflow="backup.yml"} 1' in text
    assert 'workflow="\\"x\\"\\\\y\\nz.yml"' in text
    assert "offsite_rpo_objective_seconds" in text
    promtool = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                              capture_output=True)  # fmt: skip
    assert promtool.returncode == 0, promtool.stderr


def test_a_drill_record_holds_only_with_its_key_and_its_own_name() -> None:
    key = "ab" * 32
    record = drill_records.DrillRecord("20261126T100000Z", "20261126T110000Z", True, 12.5,
                                       "postgresql").sealed(key)  # fmt: skip
    again = drill_records.parse(record.to_json(), record.key)
    assert again.holds(key) and not again.holds("cd" * 32)
    edited = record.to_json().replace(b"12.5", b"1.5")
    assert not drill_records.parse(edited, record.key).holds(key)
    with pytest.raises(ValueError, match="it says"):  # copied under another set or time
        drill_records.parse(record.to_json(), "drills/20261120T100000Z/20261126T110000Z.json")
    names = drill_records.names([record.key, "drills/x/y.json", "drills/20261126T100000Z/"
                                 "20261127T000000Z.json"])  # fmt: skip
    assert [n[2] for n in names] == ["20261127T000000Z", "20261126T110000Z"]


def test_the_status_page_escapes_what_github_and_destinations_name() -> None:
    evil = Observation('o/<script>alert(1)</script> backup.yml', workflow_state="active",
                       url="javascript:alert(1)", kind="workflow")  # fmt: skip
    health = assess(evil, RPO, NOW)
    assert health.url == "javascript:alert(1)"  # no run: the workflow's own address is shown
    html = page.render([health], RPO, NOW)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html and "<a " not in html


def test_a_wal_archive_that_stalled_for_a_while_misses_the_rpo() -> None:
    minutes = [NOW - timedelta(minutes=m) for m in range(0, 600, 5) if not 100 <= m < 190]
    seen = store([])
    seen.backups = [Backup("20261126T100000Z", 10, NOW - 3 * H)]  # a base backup a day
    seen.pitr = {"7312"}
    seen.wal = {"7312": minutes, "9999": [NOW - 30 * 24 * H]}  # an old cluster: not judged
    seen.wal_verified = {"7312": NOW}  # its newest segment authenticated
    t = Thresholds(26 * H, rpo=timedelta(minutes=60))
    health = assess(seen, t, NOW)
    assert health.status == UNHEALTHY
    assert "WAL archived for cluster 7312: a gap of 95m" in health.reason
    seen.wal["7312"] = [NOW - timedelta(minutes=m) for m in range(0, 600, 5)]
    # the WAL gives the RPO of a destination with point-in-time recovery, not the sets'
    # (base backups') schedule, and a cluster no kept base backup needs is not judged
    healthy = assess(seen, t, NOW)
    assert healthy.status == HEALTHY, healthy.reasons
    assert healthy.gap is not None and healthy.gap.length == timedelta(minutes=5)


def test_lengths_compared_with_a_limit_are_never_rounded_down() -> None:
    from offsite.monitor.health import human_span

    assert human_span(26 * H + timedelta(minutes=1)) == "26h 1m"
    assert human_span(timedelta(minutes=95)) == "95m"
    assert human_span(timedelta(days=2, hours=3)) == "2d 3h"
    assert human_span(timedelta(days=2)) == "2d"


def test_a_wal_age_counts_only_what_authenticated() -> None:
    """SPEC §9: the newest segment that authenticates gives the age; one no segment
    proves, or that could not be checked, is no fresh archive."""
    seen = store([])
    seen.backups = [Backup("20261126T100000Z", 10, NOW - 3 * H)]
    seen.pitr = {"7312"}
    seen.wal = {"7312": [NOW - timedelta(minutes=1)]}  # a fresh-looking object: planted
    t = Thresholds(26 * H, max_wal_age=timedelta(minutes=60))
    seen.wal_verified = {"7312": NOW - 5 * H}  # the newest that authenticated: stalled
    assert "5h old, over --max-wal-age" in assess(seen, t, NOW).reason
    seen.wal_verified = {}
    assert "no segment archived for cluster 7312 authenticates" in assess(seen, t, NOW).reason
    seen.wal_unverified = {"7312"}
    unverified = assess(seen, t, NOW)
    assert unverified.status == UNHEALTHY and "give the passphrase" in unverified.reason
    allowed = assess(seen, Thresholds(26 * H, max_wal_age=timedelta(minutes=60),
                                      allow_unverified_wal=True), NOW)  # fmt: skip
    assert allowed.status == HEALTHY, allowed.reasons
    seen.wal_problems = ["wal/7312/000000010000000000000009.zst.gpg: not a WAL object"]
    named = assess(seen, Thresholds(26 * H, max_wal_age=timedelta(minutes=60),
                                    allow_unverified_wal=True), NOW)  # fmt: skip
    assert named.status == UNHEALTHY and "000000010000000000000009.zst.gpg" in named.reason


def test_holes_older_than_the_push_window_are_named() -> None:
    from offsite.monitor.walseen import holes

    names = ["000000010000000000000001", "000000010000000000000002",
             "000000010000000000000005", "000000010000000000000007", "00000002.history"]  # fmt: skip
    times = {n: NOW - timedelta(hours=2) for n in names}
    times["000000010000000000000007"] = NOW  # just pushed: 6 may still be on its way
    assert holes(names, times, NOW - timedelta(minutes=10)) == [
        "000000010000000000000003", "000000010000000000000004"]  # fmt: skip
    far = ["000000010000000000000001", "0000000100000000FFFFFFFF"]  # a gap of 4 billion
    cut = holes(far, dict.fromkeys(far, NOW - timedelta(hours=2)), NOW)
    assert cut == [f"00000001000000000000000{n}" for n in range(2, 7)]
