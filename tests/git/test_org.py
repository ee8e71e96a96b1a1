"""A whole organisation: its repositories listed through GitHub's REST API (a fake that
serves and validates GitHub's shapes, pages, throttles and exhausts its rate limit),
backed up in parallel, split into stable shares by `offsite plan`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakegithub import TOKEN, FakeGitHub
from tests.git.conftest import make_repo, refs

ORG = "octo-org"


@pytest.fixture
def org(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeGitHub, dict[str, Path]]]:
    """Ten repositories, plus a fork and an archived one, each cloneable by file://."""
    fake = FakeGitHub()
    fake.page_size = 4  # three pages of repositories
    names = [f"svc-{i:02d}" for i in range(10)] + ["a-fork", "old-archive"]
    repos = {n: make_repo(tmp_path / "remotes", n, commits=1) for n in names}
    fake.org_repos[ORG] = names
    for name, path in repos.items():
        fake.repo_attrs[f"{ORG}/{name}"] = {
            "clone_url": f"file://{path}",
            "fork": name == "a-fork",
            "archived": name == "old-archive",
        }
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    yield fake, repos
    fake.close()


def test_an_organisation_is_backed_up_whole_within_rate_limits(
    cli, tmp_path: Path, org: tuple[FakeGitHub, dict[str, Path]]
) -> None:
    fake, repos = org
    fake.throttle_next = 1  # a secondary rate limit: Retry-After
    fake.exhaust_next = 1  # then the primary one: wait for its reset
    r = cli(
        "backup",
        f"github://{ORG}",
        "--to",
        tmp_path / "sets",
        "--no-encrypt",
        "--jobs",
        "4",
        "--json",
    )
    assert r.code == 0, r.err
    assert fake.throttle_next == 0 and fake.exhaust_next == 0
    manifest = json.loads(r.out)["manifest"]
    assert sorted(e["name"] for e in manifest["entries"]) == [f"svc-{i:02d}" for i in range(10)]
    r = cli("restore", tmp_path / "sets", "--entry", "svc-07", "--into", tmp_path / "svc-07.git")
    assert r.code == 0, r.err
    assert refs(tmp_path / "svc-07.git") == refs(repos["svc-07"])

    r = cli("backup", f"github://{ORG}", "--to", tmp_path / "more", "--no-encrypt", "--json",
            "--include-forks", "--include-archived", "--repo-filter", "a-*", "--repo-filter", "old-*")  # fmt: skip
    assert r.code == 0, r.err
    assert sorted(e["name"] for e in json.loads(r.out)["manifest"]["entries"]) == [
        "a-fork",
        "old-archive",
    ]


def test_one_repository_failing_fails_the_run_after_the_others_and_names_it(
    cli, tmp_path: Path, org: tuple[FakeGitHub, dict[str, Path]]
) -> None:
    fake, _ = org
    fake.repo_attrs[f"{ORG}/svc-03"]["clone_url"] = f"file://{tmp_path}/gone.git"
    fake.repo_attrs[f"{ORG}/svc-08"]["clone_url"] = f"file://{tmp_path}/also-gone.git"
    r = cli("backup", f"github://{ORG}", "--to", tmp_path / "sets", "--no-encrypt")
    assert r.code == 3
    assert "2 of 10 sources failed: entry 'svc-03'" in r.err and "entry 'svc-08'" in r.err
    assert not any((tmp_path / "sets").rglob("manifest.json"))


def test_plan_shards_are_stable_disjoint_and_complete(
    cli, tmp_path: Path, org: tuple[FakeGitHub, dict[str, Path]]
) -> None:
    r = cli("plan", f"github://{ORG}", "--shards", "4")
    assert r.code == 0, r.err
    jobs = json.loads(r.out)["include"]
    assert len(jobs) == 4
    shares = [set(j["names"]) for j in jobs]
    assert set().union(*shares) == {f"svc-{i:02d}" for i in range(10)}
    assert sum(len(s) for s in shares) == 10
    assert json.loads(cli("plan", f"github://{ORG}", "--shards", "4").out)["include"] == jobs

    backed_up: list[str] = []
    for job in jobs:
        r = cli("backup", f"github://{ORG}", "--shard", job["shard"], "--to", tmp_path / "sets",
                "--no-encrypt", "--json")  # fmt: skip
        assert r.code == 0, r.err
        manifest = json.loads(r.out)["manifest"]
        assert sorted(e["name"] for e in manifest["entries"]) == job["names"]
        assert manifest["id"].endswith("-" + job["shard"].split("/")[0])
        backed_up += job["names"]
    assert sorted(backed_up) == [f"svc-{i:02d}" for i in range(10)]


def test_an_unknown_owner_is_bad_input(
    cli, tmp_path: Path, org: tuple[FakeGitHub, dict[str, Path]]
) -> None:
    r = cli("plan", "github://nobody-here", "--shards", "2")
    assert r.code == 2, r.err
