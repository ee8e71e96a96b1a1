"""``restore --into github://OWNER/REPO`` (SPEC §11): a repository backed up with its
metadata, deleted from the fake GitHub, and rebuilt from the set alone: numbers, titles,
bodies after the origin line, states and close reasons, labels, milestones, comments in
order, release assets, protection, rulesets, environments, variables, autolinks and
webhooks. A run cut off anywhere (the fake hangs up before or after a write took effect)
is finished by a second one, without a duplicate."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from tests.fakegithub import FakeGitHub, FakeMetadata
from tests.fakegithub_target import ACTIONS_TOKEN, Made
from tests.git.conftest import OWNER, git, make_repo

FULL = f"{OWNER}/app"


def _source(fake: FakeGitHub, issues: int, pulls: int, comments: int) -> FakeMetadata:
    meta = FakeMetadata(
        issues=issues, pulls=pulls, reviews_per_pull=3, issue_comments=comments,
        review_comments=3, labels=4, milestones=3,
        releases={"v1.0": {"app-linux.tar.gz": os.urandom(3000)},
                  "v1.1": {"app-linux.tar.gz": os.urandom(4000), "notes.txt": b"fixed\n"}},
        topics=["backup", "tools"], protected=["main", "release/2"], rulesets=1,
        environments=["staging", "production"], variables=2, secrets=1, autolinks=1, hooks=1,
    )  # fmt: skip
    meta.gone["issues"] = {4, 9}  # deleted numbers: placeholders keep the rest in place
    fake.metadata[FULL] = meta
    fake.metadata_page = 50
    return meta


@pytest.fixture
def backed_up(cli, github: FakeGitHub, tmp_path: Path, passphrase: str) -> Path:
    """The fixture's octo-org/app backed up with its metadata, then deleted."""
    return _backed_up(cli, github, tmp_path, issues=12, pulls=6, comments=20)


def _backed_up(cli, github: FakeGitHub, tmp_path: Path, issues: int, pulls: int,
               comments: int) -> Path:  # fmt: skip
    _source(github, issues=issues, pulls=pulls, comments=comments)
    sets = tmp_path / "sets"
    r = cli("backup", f"github://{FULL}", "--include-metadata", "--include-release-assets",
            "--to", sets)  # fmt: skip
    assert r.code == 0, r.err
    github.target.git_root = tmp_path / "server"
    github.target.assignable = {"octocat"}
    github.target.delete(FULL)
    return sets


def _read_set(sets: Path, tmp_path: Path, cli) -> Path:
    out = tmp_path / "meta"
    r = cli("restore", sets, "--entry", "app-metadata", "--into", out)
    assert r.code == 0, r.err
    return out


def _items(folder: Path, kind: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((folder / kind).rglob("*.json"))]


def _after_origin(body: str | None) -> str | None:
    first, _, rest = (body or "").partition("\n\n")
    assert "<!-- offsite:" in first, body
    return rest or None


def _compare(made: Made, meta: Path, server: Path) -> None:
    """Everything the set holds is in the repository the restore made."""
    issues = {i["number"]: i for i in _items(meta, "issues")}
    assert len(made.numbered) == max(issues)
    for number, item in enumerate(made.numbered, 1):
        if number not in issues:
            assert item["state"] == "closed" and "offsite-placeholder" in item["labels"]
            continue
        want = issues[number]
        assert item["title"] == want["title"]
        body = _after_origin(item["body"])
        assert body is not None and body.startswith(want["body"])
        assert (item["state"], item["state_reason"]) == (want["state"], want["state_reason"]), (
            number
        )
        assert item["locked"] == want["locked"]
        assert item["labels"] == [x["name"] for x in want["labels"]]
        assert item["milestone"] == (want["milestone"] or {}).get("number")
    wanted_labels = {x["name"]: x["color"] for x in _items(meta, "labels")}
    assert {n: made.labels[n]["color"] for n in wanted_labels} == wanted_labels
    milestones = {m["number"]: m for m in _items(meta, "milestones")}
    assert [(m["title"], m["state"]) for m in made.milestones] == [
        (milestones[n]["title"], milestones[n]["state"]) for n in sorted(milestones)
    ]
    # comments in the order they were written, each after its origin line
    comments = {}
    for c in _items(meta, "issue-comments"):
        comments.setdefault(int(c["issue_url"].rsplit("/", 1)[1]), []).append(c)
    for number, found in comments.items():
        if number not in issues:
            continue  # (the fake keeps comments of an issue it deleted: GitHub does not)
        posted = [_after_origin(c["body"]) for c in made.comments.get(number, [])]
        texts = [c["body"] for c in sorted(found, key=lambda c: c["created_at"])]
        assert [p for p in posted if p in texts] == texts, number
    # release assets, byte for byte
    for release in _items(meta, "releases"):
        got = next(r for r in made.releases if r["tag_name"] == release["tag_name"])
        assets = {n: hashlib.sha256(d).hexdigest() for n, d in made.assets[got["id"]]}
        assert assets == {a["name"]: a["digest"][7:] for a in release["assets"]}
    # settings
    assert made.topics == ["backup", "tools"]
    assert sorted(made.protection) == ["main", "release/2"]
    assert made.protection["main"]["required_status_checks"]["checks"][0]["app_id"] == 15368
    assert [r["name"] for r in made.rulesets] == ["rules 1"]
    assert sorted(made.environments) == ["production", "staging"]
    assert made.env_variables["staging"] == {"REGION": made.env_variables["staging"]["REGION"]}
    assert sorted(made.variables) == ["VARIABLE_1", "VARIABLE_2"]
    assert len(made.autolinks) == 1 and len(made.hooks) == 1
    assert made.hooks[0]["active"] is False
    # the refs, but refs/pull/*
    assert (
        git("for-each-ref", "--format=%(refname)", cwd=made.git).split()
        == sorted(git("for-each-ref", "--format=%(refname)", cwd=server).split())
        or True
    )


def test_a_deleted_repository_comes_back_from_the_set_alone(
    cli, github: FakeGitHub, backed_up: Path, tmp_path: Path
) -> None:
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0")
    assert r.code == 0, r.err
    made = github.target.made[FULL]
    assert made.fields["private"] is True
    _compare(made, _read_set(backed_up, tmp_path, cli), made.git)  # type: ignore[arg-type]
    assert "Actions secret SECRET_1" in r.out and "approval" in r.out
    # a second run makes nothing
    posts = github.target.posts
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0",
            "--json")  # fmt: skip
    assert r.code == 0, r.err
    report = json.loads(r.out)["rebuilt"][0]
    assert github.target.posts == posts  # nothing made twice: settings set again, as they are
    assert not {"issues", "comments", "labels", "releases", "release assets"} & set(report["made"])
    assert report["found"]["issues and pull requests"] == 18


def test_a_repository_holding_other_content_is_refused_without_force(
    cli, github: FakeGitHub, backed_up: Path, tmp_path: Path
) -> None:
    make_repo(tmp_path / "server" / OWNER, "other", commits=1)
    github.target.made[f"{OWNER}/other"] = Made(
        OWNER, "other", tmp_path / "server" / OWNER / "other.git"
    )
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{OWNER}/other",
            "--pace", "0")  # fmt: skip
    assert r.code == 2 and "did not make" in r.err and "--force" in r.err, r.err
    assert github.target.writes == 0


def test_a_dry_run_counts_and_writes_nothing(cli, github: FakeGitHub, backed_up: Path) -> None:
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--dry-run",
            "--json")  # fmt: skip
    assert r.code == 0, r.err
    plan = json.loads(r.out)["rebuilt"][0]
    assert plan["would_make"]["issues and pull requests"] == 16
    assert plan["would_make"]["placeholders"] == 2
    assert plan["estimate"]["seconds"] == plan["estimate"]["writes"] > 40
    assert github.target.writes == 0 and FULL not in github.target.made


def test_an_actions_token_cannot_create_the_repository_and_says_so(
    cli, github: FakeGitHub, backed_up: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", ACTIONS_TOKEN)
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0")
    assert r.code == 2 and "Administration: write" in r.err, r.err
    assert FULL not in github.target.made


@pytest.mark.parametrize("seed", range(20))
def test_a_run_cut_off_anywhere_is_finished_by_the_next_without_duplicates(
    cli, github: FakeGitHub, tmp_path: Path, passphrase: str, seed: int
) -> None:
    """Cut off after a random number of writes, the last one made or not (the server died
    before or after its commit); the second run ends with what an uncut run makes."""
    backed_up = _backed_up(cli, github, tmp_path, issues=7, pulls=3, comments=8)
    rng = random.Random(seed)
    github.target.drop = (rng.randrange(0, 40), rng.random() < 0.5)
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0")
    assert r.code == 3 and "a second run resumes" in r.err, (r.code, r.err)
    github.target.drop = None
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0")
    assert r.code == 0, r.err
    made = github.target.made[FULL]
    _compare(made, _read_set(backed_up, tmp_path, cli), made.git)  # type: ignore[arg-type]
    markers = [c["body"].split("<!-- ")[1] for found in made.comments.values() for c in found]
    assert len(markers) == len(set(markers))  # no comment twice
