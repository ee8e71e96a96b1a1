"""The one backoff and the one reader of GitHub's environment."""

from __future__ import annotations

import pytest

from offsite import retry
from offsite.errors import BadInput
from offsite.github import env as github_env


@pytest.mark.parametrize(
    ("attempt", "first", "cap", "low", "high"),
    [(1, 0.5, 16, 0.25, 0.5), (2, 0.5, 16, 0.5, 1.0), (4, 0.5, 16, 2.0, 4.0),
     (9, 0.5, 16, 8.0, 16.0), (9, 0.5, 8, 4.0, 8.0)],
)  # fmt: skip
def test_backoff_doubles_up_to_its_cap_with_jitter(
    attempt: int, first: float, cap: float, low: float, high: float
) -> None:
    waits = [retry.backoff(attempt, first, cap) for _ in range(200)]
    assert all(low <= w <= high for w in waits)
    assert len(set(waits)) > 1  # jittered, so clients do not retry in step


def test_attempts_sleep_between_not_before(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", slept.append)
    assert list(retry.attempts(4, first=1, cap=2)) == [0, 1, 2, 3]
    assert len(slept) == 3 and all(0.5 <= s <= 2 for s in slept)
    slept.clear()
    for attempt in retry.attempts(5):
        if attempt == 1:
            break  # succeeded: no more waiting
    assert len(slept) == 1


@pytest.mark.parametrize(
    ("value", "count"), [(None, 6), ("1", 1), ("12", 12)]
)  # fmt: skip
def test_count_from_env(monkeypatch: pytest.MonkeyPatch, value: str | None, count: int) -> None:
    if value is None:
        monkeypatch.delenv("OFFSITE_SFTP_ATTEMPTS", raising=False)
    else:
        monkeypatch.setenv("OFFSITE_SFTP_ATTEMPTS", value)
    assert retry.count_from_env("OFFSITE_SFTP_ATTEMPTS", 6) == count


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_count_is_bad_input(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OFFSITE_SFTP_ATTEMPTS", value)
    with pytest.raises(BadInput):
        retry.count_from_env("OFFSITE_SFTP_ATTEMPTS", 6)


@pytest.mark.parametrize(
    ("env", "api", "server", "api_token", "git_token"),
    [
        ({}, "https://api.github.com", "https://github.com", None, None),
        ({"GITHUB_API_URL": "https://ghe.example/api/v3/", "GITHUB_SERVER_URL": "https://ghe.example/"},
         "https://ghe.example/api/v3", "https://ghe.example", None, None),
        ({"GH_TOKEN": "gh"}, "https://api.github.com", "https://github.com", "gh", None),
        ({"GITHUB_TOKEN": "t", "GH_TOKEN": "gh"}, "https://api.github.com", "https://github.com",
         "t", "t"),
        ({"OFFSITE_GIT_TOKEN": "git", "GITHUB_TOKEN": "t"}, "https://api.github.com",
         "https://github.com", "t", "git"),
    ],
)  # fmt: skip
def test_github_env(
    env: dict[str, str], api: str, server: str, api_token: str | None, git_token: str | None
) -> None:
    assert github_env.api_url(env) == api
    assert github_env.server_url(env) == server
    assert github_env.api_token(env) == api_token
    assert github_env.git_token(env) == git_token
