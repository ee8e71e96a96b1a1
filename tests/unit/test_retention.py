"""The retention planner against restic's `forget` semantics, case by case."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from offsite.durations import parse_duration
from offsite.errors import BadInput
from offsite.names import set_id_for
from offsite.sets.retention import Policy, keep_bases, plan


def _t(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)


def _kept(times: list[str], policy: Policy) -> list[str]:
    sets = [(set_id_for(_t(t)), _t(t)) for t in times]
    result = plan(sets, policy)
    return sorted((d.time.strftime("%Y-%m-%d %H:%M") for d in result.keep), reverse=True)


D = ["2024-01-04 18:00", "2024-01-04 06:00", "2024-01-03 18:00", "2024-01-03 06:00",
     "2024-01-02 18:00", "2024-01-02 06:00", "2024-01-01 18:00", "2024-01-01 06:00"]  # fmt: skip

CASES = [
    pytest.param(D[::2], Policy(last=3), D[:6:2], id="last-3"),
    pytest.param(D, Policy(daily=3), ["2024-01-04 18:00", "2024-01-03 18:00", "2024-01-02 18:00"],
                 id="daily-newest-of-each-day"),
    pytest.param(["2024-01-09 02:00", "2024-01-05 02:00", "2024-01-02 02:00", "2024-01-01 02:00"],
                 Policy(daily=7), ["2024-01-09 02:00", "2024-01-05 02:00", "2024-01-02 02:00",
                                   "2024-01-01 02:00"], id="daily-gaps-all-kept"),
    pytest.param(["2024-01-10 02:00", "2024-01-09 02:00", "2024-01-05 02:00", "2024-01-02 02:00",
                  "2024-01-01 02:00"], Policy(daily=3),
                 ["2024-01-10 02:00", "2024-01-09 02:00", "2024-01-05 02:00"],
                 id="daily-counts-days-that-have-a-set"),
    pytest.param(["2024-01-09 02:00", "2024-01-08 02:00", "2024-01-07 02:00", "2024-01-03 02:00"],
                 Policy(weekly=2), ["2024-01-09 02:00", "2024-01-07 02:00"], id="weekly-iso-boundary"),
    pytest.param(["2025-01-02 02:00", "2024-12-30 02:00", "2024-12-27 02:00", "2024-12-20 02:00"],
                 Policy(weekly=2), ["2025-01-02 02:00", "2024-12-27 02:00"],
                 id="weekly-across-new-year-same-iso-week"),
    pytest.param(["2024-03-01 02:00", "2024-02-28 02:00", "2024-02-01 02:00", "2024-01-31 02:00"],
                 Policy(monthly=2), ["2024-03-01 02:00", "2024-02-28 02:00"], id="monthly"),
    pytest.param(["2024-06-01 02:00", "2024-01-01 01:00", "2023-12-31 23:00", "2023-01-01 02:00"],
                 Policy(yearly=2), ["2024-06-01 02:00", "2023-12-31 23:00"], id="yearly-boundary"),
    pytest.param(["2024-01-01 11:10", "2024-01-01 10:55", "2024-01-01 10:05"], Policy(hourly=2),
                 ["2024-01-01 11:10", "2024-01-01 10:55"], id="hourly"),
    pytest.param(D[4:], Policy(daily=5), ["2024-01-02 18:00", "2024-01-01 18:00", "2024-01-01 06:00"],
                 id="oldest-kept-while-counts-left"),
    pytest.param(["2024-01-10 12:00", "2024-01-09 12:00", "2024-01-08 13:00", "2024-01-08 12:00",
                  "2024-01-01 12:00"], Policy(within=timedelta(days=2)),
                 ["2024-01-10 12:00", "2024-01-09 12:00", "2024-01-08 13:00"],
                 id="within-counts-from-newest-set-strictly"),
    pytest.param(["2024-03-10 02:00", "2024-03-05 02:00", "2024-02-20 02:00", "2024-01-15 02:00"],
                 Policy(last=1, monthly=2), ["2024-03-10 02:00", "2024-02-20 02:00"], id="rules-ored"),
    pytest.param(["2024-01-03 02:00", "2024-01-02 02:00", "2024-01-01 02:00"], Policy(daily=1),
                 ["2024-01-03 02:00"], id="daily-1-keeps-newest-only"),
    pytest.param(["2024-01-02 02:00", "2024-01-01 02:00"], Policy(last=3),
                 ["2024-01-02 02:00", "2024-01-01 02:00"], id="more-counts-than-sets"),
    pytest.param([], Policy(daily=7), [], id="no-sets"),
    pytest.param(D, Policy(daily=7, weekly=4, monthly=12), [d for d in D if d.endswith("18:00")]
                 + ["2024-01-01 06:00"], id="seven-four-twelve"),
]  # fmt: skip


@pytest.mark.parametrize(("times", "policy", "expected"), CASES)
def test_plan_matches_restic(times: list[str], policy: Policy, expected: list[str]) -> None:
    assert _kept(times, policy) == expected


def test_reasons_name_every_rule() -> None:
    sets = [(set_id_for(_t(t)), _t(t)) for t in ["2024-03-10 02:00", "2024-02-20 02:00"]]
    decisions = plan(sets, Policy(last=1, monthly=2)).decisions
    assert decisions[0].reasons == ("last 1/1", "monthly 1/2")
    assert decisions[1].reasons == ("monthly 2/2",)


def test_same_second_clash_sorts_by_suffix() -> None:
    moment = _t("2024-01-01 00:00")
    result = plan([("20240101T000000Z", moment), ("20240101T000000Z-2", moment)], Policy(last=1))
    assert [d.set_id for d in result.keep] == ["20240101T000000Z-2"]


@pytest.mark.parametrize("policy", [Policy(), Policy(daily=0)], ids=["nothing", "zeros"])
def test_empty_policy_is_refused(policy: Policy) -> None:
    with pytest.raises(BadInput, match="no retention rule"):
        plan([("20240101T000000Z", _t("2024-01-01 00:00"))], policy)


def test_negative_count_is_refused() -> None:
    with pytest.raises(BadInput):
        Policy(daily=-1)


@pytest.mark.parametrize(("text", "delta"), [("90s", timedelta(seconds=90)),
                                              ("90m", timedelta(minutes=90)), ("26h", timedelta(hours=26)),
                                              ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2))])  # fmt: skip
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "7", "d7", "0d", "1y", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadInput):
        parse_duration(text)


def test_a_kept_diff_keeps_its_base_which_takes_no_place() -> None:
    full, diff = "20240101T000000Z", "20240101T010000Z"
    newer = "20240102T000000Z"
    times = [(i, datetime.strptime(i, "%Y%m%dT%H%M%SZ")) for i in (full, diff, newer)]
    decided = keep_bases(plan(times, Policy(last=2)), {diff: full})
    reasons = {d.set_id: d.reasons for d in decided.decisions}
    assert reasons == {newer: ("last 1/2",), diff: ("last 2/2",), full: (f"base of {diff}",)}


@pytest.mark.parametrize("seed", range(6))
def test_a_year_of_hourly_diffs_and_daily_fulls_never_loses_a_base(seed: int) -> None:
    """Generated: a year of sets (a full each day at 00:00, a diff of it every hour after),
    a random GFS policy; every diff kept keeps its base, and removing one keeps none."""
    import random

    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    times, bases = [], {}
    for day in range(365):
        full = set_id_for(start + timedelta(days=day))
        times.append((full, start + timedelta(days=day)))
        for hour in range(1, 24, rng.choice((1, 3, 6))):
            moment = start + timedelta(days=day, hours=hour)
            times.append((set_id_for(moment), moment))
            bases[set_id_for(moment)] = full
    policy = Policy(last=rng.randint(0, 30), hourly=rng.randint(0, 48), daily=rng.randint(1, 14),
                    weekly=rng.randint(0, 8), monthly=rng.randint(0, 12))  # fmt: skip
    before = plan(times, policy)
    decided = keep_bases(before, bases)
    kept = {d.set_id for d in decided.keep}
    assert all(bases[i] in kept for i in kept if i in bases)
    # what a rule chose is unchanged; only bases are added, each naming its diffs
    assert {d.set_id for d in before.keep} <= kept
    for d in decided.keep:
        if d.set_id not in {b.set_id for b in before.keep}:
            assert all(r.startswith("base of ") for r in d.reasons)
            assert d.set_id in bases.values()
