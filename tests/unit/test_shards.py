"""Fan-out shares: stable, disjoint, complete, balanced."""

from __future__ import annotations

import random

import pytest

from offsite.errors import BadInput
from offsite.shards import matrix, parse_shard, share, shares

REPOS = [f"repo-{i:02d}" for i in range(10)]


def test_four_shares_of_ten_are_disjoint_complete_and_balanced() -> None:
    parts = shares(REPOS, 4)
    flat = [n for p in parts for n in p]
    assert sorted(flat) == REPOS and len(flat) == len(set(flat))
    assert sorted(len(p) for p in parts) == [2, 2, 3, 3]


def test_shares_do_not_depend_on_the_order_names_arrive_in() -> None:
    shuffled = REPOS[:]
    random.Random(7).shuffle(shuffled)
    assert shares(shuffled, 4) == shares(REPOS, 4)
    assert [share(shuffled, i, 4) for i in range(1, 5)] == shares(REPOS, 4)


def test_matrix_has_one_job_per_non_empty_share() -> None:
    jobs = matrix(["a", "b"], 4)["include"]
    assert len(jobs) == 2
    assert sorted(n for j in jobs for n in j["names"]) == ["a", "b"]  # type: ignore[attr-defined]
    assert all(j["only"] == ",".join(j["names"]) for j in jobs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0/4", "5/4", "x", "1-4", ""])
def test_bad_shard_values_are_bad_input(value: str) -> None:
    with pytest.raises(BadInput):
        parse_shard(value)
    assert parse_shard(" 2 / 4 ") == (2, 4)
