"""gh-artifacts://owner/repo against a local server speaking GitHub's REST shapes."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import tree_content
from tests.fakegithub import TOKEN, FakeGitHub, zip_folder


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    yield fake
    fake.close()


@pytest.fixture
def published(cli, github: FakeGitHub, tree: Path, tmp_path: Path, passphrase: str) -> list[str]:
    """Two sets uploaded as `actions/upload` does, an expired one, and an unrelated artifact."""
    local = tmp_path / "made"
    for _ in range(3):
        assert cli("backup", tree, "--to", local).code == 0
    ids = sorted(p.name for p in local.iterdir())
    now = datetime.now(timezone.utc)
    github.add(
        f"backup-{ids[0]}", zip_folder(local / ids[0]), now - timedelta(days=100), expired=True
    )
    github.add(f"backup-{ids[1]}", zip_folder(local / ids[1]), now - timedelta(days=1))
    github.add("coverage-report", b"not a backup", now - timedelta(hours=5))
    github.add(f"backup-{ids[2]}", zip_folder(local / ids[2]), now)
    return ids


URL = "gh-artifacts://octo-org/octo-docs"


def test_list_skips_expired_and_foreign_artifacts_over_pages(
    cli, github: FakeGitHub, published: list[str]
) -> None:
    r = cli("list", URL, "--json")
    assert r.code == 0, r.err
    assert [s["id"] for s in json.loads(r.out)["sets"]] == published[1:]
    pages = [line for line in github.log if line.endswith("/actions/artifacts")]
    assert len(pages) == 2  # four artifacts, two a page: the Link header was followed


def test_restore_and_verify_read_only_what_they_need(
    cli, github: FakeGitHub, published: list[str], tree: Path, tmp_path: Path
) -> None:
    github.expire_next_links = 1  # the first download address is already stale
    r = cli("restore", URL, "--latest", "--into", tmp_path / "back")
    assert r.code == 0, r.err
    assert github.stale_refused == 1  # it was met, and a fresh address asked for
    assert tree_content(tmp_path / "back") == tree_content(tree)
    assert cli("verify", URL, "--all", "--read-data").code == 0


def test_prune_deletes_artifacts(cli, github: FakeGitHub, published: list[str]) -> None:
    r = cli("prune", URL, "--keep-last", "1")
    assert r.code == 0, r.err
    assert sorted(a.name for a in github.artifacts) == sorted(
        [f"backup-{published[0]}", "coverage-report", f"backup-{published[2]}"]
    )
    assert any(line.startswith("DELETE") for line in github.log)


def test_a_live_artifact_wins_over_an_expired_one_of_the_same_set(
    cli, github: FakeGitHub, published: list[str], tmp_path: Path
) -> None:
    """A re-run uploaded the set again: the live copy is read, whichever comes first."""
    live = next(a for a in github.artifacts if a.name == f"backup-{published[1]}")
    github.add(live.name, live.data, live.created + timedelta(hours=1), expired=True)
    github.add(live.name, live.data, live.created - timedelta(hours=1), expired=True)
    r = cli("restore", URL, "--id", published[1], "--into", tmp_path / "back")
    assert r.code == 0, r.err


def test_an_unreadable_artifact_fails_the_listing(
    cli, github: FakeGitHub, published: list[str]
) -> None:
    """Not a set silently missing (and --latest quietly picking an older one)."""
    github.broken.add(next(a.id for a in github.artifacts if a.name == f"backup-{published[2]}"))
    r = cli("list", URL)
    assert r.code == 3 and f"backup-{published[2]}" in r.err


def test_an_expired_set_is_a_clear_error(
    cli, github: FakeGitHub, published: list[str], tmp_path: Path
) -> None:
    r = cli("restore", URL, "--id", published[0], "--into", tmp_path / "back")
    assert r.code == 2
    assert "expired" in r.err and r.err.count("\n") == 1


def test_bad_and_missing_token(cli, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong")
    r = cli("list", URL)
    assert r.code == 3 and "401" in r.err and "ghp_wrong" not in r.err
    monkeypatch.delenv("GITHUB_TOKEN")
    r = cli("list", URL)
    assert r.code == 2 and "GITHUB_TOKEN" in r.err


def test_writing_is_refused_with_a_pointer(
    cli, github: FakeGitHub, tree: Path, passphrase: str
) -> None:
    r = cli("backup", tree, "--to", URL)
    assert r.code == 2 and "actions/upload" in r.err


def test_a_forks_artifact_or_another_branchs_is_never_read(
    cli, github: FakeGitHub, published: list[str], tree: Path, tmp_path: Path
) -> None:
    """A fork's pull request can upload `backup-…` to the repository: it is not a set."""
    planted = tmp_path / "planted"
    assert cli("backup", tmp_path / "made" / published[2], "--to", planted).code == 0
    (made,) = list(planted.iterdir())
    fork_set = "20991231T000000Z-7"  # an id of its own (a backup may share a second)
    made.rename(planted / fork_set)
    manifest = json.loads((planted / fork_set / "manifest.json").read_text())
    (planted / fork_set / "manifest.json").write_text(json.dumps({**manifest, "id": fork_set}))
    github.add(f"backup-{fork_set}", zip_folder(planted / fork_set), fork=True)
    later = planted / "29990101T000000Z"  # also the newest id, were it counted
    (planted / fork_set).rename(later)
    github.add("backup-29990101T000000Z", zip_folder(later), branch="feature")
    r = cli("list", URL, "--json")
    assert r.code == 0, r.err
    assert [s["id"] for s in json.loads(r.out)["sets"]] == published[1:]
    restored = cli("restore", URL, "--into", tmp_path / "back")
    assert restored.code == 0, restored.err
    assert f"restored set {published[2]}" in restored.out
    assert cli("restore", URL, "--id", fork_set, "--into", tmp_path / "x").code == 2
    # --artifacts-branch reads another branch's runs, still never a fork's
    other = cli("list", URL, "--json", "--artifacts-branch", "feature")
    assert [s["id"] for s in json.loads(other.out)["sets"]] == []
    every = cli("list", URL, "--json", "--artifacts-branch", "*")
    ids = [s["id"] for s in json.loads(every.out)["sets"]]
    assert fork_set not in ids and "29990101T000000Z" not in ids  # a folder of another id


def test_an_incremental_run_into_github_artifacts_reads_its_base_from_the_artifacts(
    cli, github: FakeGitHub, tree: Path, tmp_path: Path, passphrase: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The staging folder is empty at every run (the job uploads it after): the base is
    read where the artifacts are (--base-from); a base whose artifact expires before the
    diff's would is no base, and an older one kept longer is taken instead."""
    staging = tmp_path / "staging"
    monkeypatch.setenv("OFFSITE_ARTIFACTS_DIR", str(staging))
    monkeypatch.setenv("GITHUB_REPOSITORY", f"{github.owner}/{github.repo}")
    url = f"gh-artifacts://{github.owner}/{github.repo}"

    def run(*extra: str, days: int = 30) -> dict:  # type: ignore[type-arg]
        time.sleep(1.1)  # one run a second: the empty staging folder reserves no id
        r = cli("backup", tree, "--incremental", "--to", "github-artifacts", "--json", *extra)
        assert r.code == 0, r.err
        out = json.loads(r.out)
        made = out["manifest"]["id"]  # uploaded, as actions/upload-artifact does
        github.add(f"backup-{made}", zip_folder(staging / made), days=days)
        shutil.rmtree(staging)
        return out

    full = run()  # without --base-from: full, saying where to read a base
    assert "--base-from gh-artifacts://OWNER/REPO" in full["full_because"]
    (tree / "new.txt").write_text("an hour later\n")
    hourly = ("--base-from", url, "--retention-days", "2")
    diff = run(*hourly, days=2)
    assert diff["manifest"]["base"]["id"] == full["manifest"]["id"]
    assert diff["manifest"]["entries"][0]["delta"] == "diff"
    r = cli("restore", url, "--latest", "--into", tmp_path / "back")
    assert r.code == 0, r.err
    assert tree_content(tmp_path / "back") == tree_content(tree)

    kept_longer = run("--base-from", url, "--retention-days", "60")  # the base goes first
    assert kept_longer["manifest"].get("base") is None
    assert "expires from GitHub Artifacts" in kept_longer["full_because"]
    # an hourly run that was full (kept 3 days) is no base for the next hour's: the night's
    short = run(*hourly, "--full-after", "1s", days=3)
    assert short["manifest"].get("base") is None
    (tree / "later.txt").write_text("two hours later\n")
    again = run(*hourly, days=2)
    assert again["manifest"]["base"]["id"] == kept_longer["manifest"]["id"]

    for wrong in (["--base-from", tmp_path / "elsewhere"], ["--base-from", "gh-artifacts://a/b"],
                  ["--base-from", url]):  # fmt: skip
        r = cli("backup", tree, "--incremental", "--to", "github-artifacts", *wrong,
                *(["--retention-days", "2"] if wrong[1] != url else []))  # fmt: skip
        assert r.code == 2, r.err
    r = cli("backup", tree, "--incremental", "--to", tmp_path / "elsewhere", "--base-from", url)
    assert r.code == 2 and "github-artifacts" in r.err
