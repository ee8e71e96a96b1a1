"""health.assess over hand-made observations: one row per verdict a user can get."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from offsite.monitor.health import (
    HEALTHY,
    UNHEALTHY,
    UNKNOWN,
    Backup,
    Observation,
    Run,
    Thresholds,
    assess,
    human_age,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
DAY = Thresholds(max_age=timedelta(hours=26))


def run(n: int, hours_ago: float, conclusion: str | None = "success", status: str = "completed"):
    return Run(n, n, status, conclusion, NOW - timedelta(hours=hours_ago), f"https://x/runs/{n}")


def art(run_id: int, size: int, hours_ago: float = 1, expired: bool = False) -> Backup:
    return Backup(f"backup-{run_id}", size, NOW - timedelta(hours=hours_ago), expired, run_id)


def workflow(runs: list[Run], backups: list[Backup], state: str = "active") -> Observation:
    return Observation("o/r backup.yml", workflow_state=state, runs=runs, backups=backups)


CASES = [
    # (why, observation, thresholds, status, words the reason must hold)
    ("fresh run with its artifact", workflow([run(2, 1)], [art(2, 100)]), DAY, HEALTHY, ["fresh"]),
    (
        "newest success too old",
        workflow([run(2, 30)], [art(2, 100, 30)]),
        DAY,
        UNHEALTHY,
        ["last success 30h ago", "--max-age 26h"],
    ),
    (
        "no success at all",
        workflow([run(2, 1, "failure")], []),
        DAY,
        UNHEALTHY,
        ["no successful run", "1 failed run"],
    ),
    (
        "failures after a success, tolerated",
        workflow([run(3, 1, "failure"), run(2, 2)], [art(2, 100)]),
        Thresholds(timedelta(hours=26), max_failures=1),
        HEALTHY,
        ["fresh"],
    ),
    (
        "failures after a success, not tolerated",
        workflow([run(3, 1, "failure"), run(2, 2)], [art(2, 100)]),
        DAY,
        UNHEALTHY,
        ["1 failed run in a row"],
    ),
    (
        "a cancelled run is no failure",
        workflow([run(3, 1, "cancelled"), run(2, 2)], [art(2, 5)]),
        DAY,
        HEALTHY,
        ["fresh"],
    ),
    (
        "a running run is not judged",
        workflow([run(3, 0, None, "in_progress"), run(2, 2)], [art(2, 5)]),
        DAY,
        HEALTHY,
        ["fresh"],
    ),
    (
        "disabled workflow",
        workflow([run(2, 1)], [art(2, 100)], state="disabled_inactivity"),
        DAY,
        UNHEALTHY,
        ["disabled_inactivity", "schedule does not run"],
    ),
    (
        "success without an artifact",
        workflow([run(2, 1)], []),
        DAY,
        UNHEALTHY,
        ["run #2 stored no backup-* artifact"],
    ),
    (
        "artifacts not checked",
        workflow([run(2, 1)], []),
        Thresholds(timedelta(hours=26), artifacts=False),
        HEALTHY,
        ["fresh"],
    ),
    (
        "expired artifact",
        workflow([run(2, 1)], [art(2, 100, expired=True)]),
        DAY,
        UNHEALTHY,
        ["has expired"],
    ),
    ("too small", workflow([run(2, 1)], [art(2, 0)]), DAY, UNHEALTHY, ["under --min-size 1"]),
    (
        "shrank by more than half",
        workflow([run(3, 1), run(2, 25)], [art(3, 40), art(2, 100)]),
        DAY,
        UNHEALTHY,
        ["40 bytes, 40% of the median of the 1 before it (100 bytes; --min-ratio 0.5)"],
    ),
    (
        "shrank within the limit",
        workflow([run(3, 1), run(2, 25)], [art(3, 60), art(2, 100)]),
        DAY,
        HEALTHY,
        ["fresh"],
    ),
    (
        "several artifacts of one run add up",
        workflow([run(3, 1), run(2, 25)], [art(3, 30), art(3, 30), art(2, 100)]),
        DAY,
        HEALTHY,
        ["fresh"],
    ),
    (
        "could not be checked",
        Observation("o/r backup.yml", error="API unreachable"),
        DAY,
        UNKNOWN,
        ["API unreachable"],
    ),
    (
        "destination with a fresh set",
        Observation("s3://b", backups=[Backup("20261126T100000Z", 10, NOW - timedelta(hours=2))]),
        DAY,
        HEALTHY,
        ["fresh"],
    ),
    (
        "destination with a stale set",
        Observation("s3://b", backups=[Backup("20261120T100000Z", 10, NOW - timedelta(days=6))]),
        DAY,
        UNHEALTHY,
        ["newest set 20261120T100000Z is 6d old"],
    ),
    ("empty destination", Observation("s3://b"), DAY, UNHEALTHY, ["no complete backup set"]),
]


@pytest.mark.parametrize(
    ("seen", "thresholds", "status", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_assess(seen: Observation, thresholds: Thresholds, status: str, words: list[str]) -> None:
    health = assess(seen, thresholds, NOW)
    assert health.status == status, health.reasons
    for word in words:
        assert word in health.reason


def test_sizes_are_oldest_first_and_the_age_is_the_newest_success() -> None:
    seen = workflow([run(3, 1), run(2, 25), run(1, 49)], [art(3, 30), art(2, 20), art(1, 10)])
    health = assess(seen, DAY, NOW)
    assert health.sizes == [10, 20, 30]
    assert health.age == timedelta(hours=1)
    assert health.url == "https://x/runs/3"


@pytest.mark.parametrize(
    ("minutes", "shown"), [(0, "0m"), (119, "119m"), (120, "2h"), (47 * 60, "47h"),
                           (48 * 60, "2d"), (15 * 24 * 60, "15d")]
)  # fmt: skip
def test_human_age(minutes: int, shown: str) -> None:
    assert human_age(timedelta(minutes=minutes)) == shown
