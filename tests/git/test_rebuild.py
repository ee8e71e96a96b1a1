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
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest

from tests.fakegithub import FakeGitHub, FakeMetadata
from tests.fakegithub_target import ACTIONS_TOKEN, Made
from tests.git.conftest import OWNER, checkout_with_lfs, commit, git, make_repo, needs_lfs
from tests.git.test_extras import BIG

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
    meta.from_forks = {issues + 1}  # from a fork's branch of the same name: an issue
    # a label GitHub gives every new repository, in other case; a review comment's path
    # that tries to leave its code span, mention someone and forge a marker
    meta.edits["labels"] = {1: {"name": "Bug"}}
    meta.edits["pulls/comments"] = {1: {"path": "a`@victim`<!-- offsite:x:note:c1 -->.py"}}
    fake.metadata[FULL] = meta
    fake.metadata_page = 50
    return meta


@pytest.fixture
def backed_up(cli, github: FakeGitHub, tmp_path: Path, passphrase: str) -> Path:
    """The fixture's octo-org/app backed up with its metadata, then deleted."""
    return _backed_up(cli, github, tmp_path, issues=240, pulls=60, comments=150)


def _backed_up(cli, github: FakeGitHub, tmp_path: Path, issues: int, pulls: int,
               comments: int) -> Path:  # fmt: skip
    _source(github, issues=issues, pulls=pulls, comments=comments)
    git(
        "update-ref",
        "refs/pull/1/head",
        "refs/heads/feature",
        cwd=tmp_path / "server" / OWNER / "app.git",
    )  # GitHub's, never pushed back
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


def _refs_of_set(sets: Path, tmp_path: Path, cli) -> list[str]:
    out = tmp_path / "app.git"
    if not out.exists():
        r = cli("restore", sets, "--entry", "app", "--into", out)
        assert r.code == 0, r.err
    return git("for-each-ref", "--format=%(objectname) %(refname)", cwd=out).splitlines()


def _items(folder: Path, kind: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((folder / kind).rglob("*.json"))]


def _after_origin(body: str | None) -> str | None:
    first, _, rest = (body or "").partition("\n\n")
    assert "<!-- offsite:" in first, body
    return rest or None


def _compare(made: Made, meta: Path, refs_of_set: list[str]) -> None:
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
    # a pull request from a fork's branch is an issue saying so
    fork = next(
        n
        for n, i in issues.items()
        if i.get("pull_request")
        and n == max(k for k, v in issues.items() if not v.get("pull_request")) + 1
    )
    assert (
        made.numbered[fork - 1]["pull"] is None
        and "is back as an issue" in (made.numbered[fork - 1]["body"])
    )
    # no text of the set comes before the marker, or out of the origin line's code span
    for found in made.comments.values():
        for c in found:
            first = c["body"].split("\n")[0]
            assert first.startswith("<!-- offsite:") and first.count("<!--") == 1
            assert "@victim" not in first
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
    # every ref of the set but refs/pull/* (GitHub's own: those of the pull requests made)
    got = git("for-each-ref", "--format=%(objectname) %(refname)", cwd=made.git).splitlines()
    assert [x for x in got if " refs/pull/" not in x] == [
        x for x in refs_of_set if " refs/pull/" not in x
    ]
    pulls = sorted(int(x.split("/")[2]) for x in got if " refs/pull/" in x)
    assert pulls == [i["number"] for i in made.numbered if i.get("pull")]


def test_a_deleted_repository_comes_back_from_the_set_alone(
    cli, github: FakeGitHub, backed_up: Path, tmp_path: Path
) -> None:
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0")
    assert r.code == 0, r.err
    made = github.target.made[FULL]
    assert made.fields["private"] is True
    assert made.actions and made.started == []  # off while filled, on at the end
    _compare(made, _read_set(backed_up, tmp_path, cli), _refs_of_set(backed_up, tmp_path, cli))
    assert "Actions secret SECRET_1" in r.out and "approved by octocat" in r.out
    # a second run makes nothing
    posts = github.target.posts
    r = cli("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0",
            "--json")  # fmt: skip
    assert r.code == 0, r.err
    report = json.loads(r.out)["rebuilt"][0]
    assert github.target.posts == posts  # nothing made twice: settings set again, as they are
    assert not {"issues", "comments", "labels", "releases", "release assets"} & set(report["made"])
    assert report["found"]["issues and pull requests"] == 300


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
    assert plan["would_make"]["issues and pull requests"] == 298
    assert plan["would_make"]["placeholders"] == 2
    # one write a second, and GitHub's cap of about 500 creations an hour
    assert plan["estimate"]["seconds"] >= plan["estimate"]["writes"] > 40
    assert (
        plan["estimate"]["seconds"]
        >= 7.2 * sum(plan["would_make"].values()) - 7.2 * plan["would_make"]["git refs"]
    )
    assert github.target.writes == 0 and FULL not in github.target.made
    assert "Administration: write on octo-org" in plan["checks"][0]


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
    _compare(made, _read_set(backed_up, tmp_path, cli), _refs_of_set(backed_up, tmp_path, cli))
    markers = [c["body"].split("<!-- ")[1] for found in made.comments.values() for c in found]
    assert len(markers) == len(set(markers))  # no comment twice


def test_a_setting_github_refuses_is_named_the_rest_comes_back_and_a_second_run_ends_it(
    cli, github: FakeGitHub, backed_up: Path, tmp_path: Path
) -> None:
    upgrade = "Upgrade to GitHub Pro or make this repository public to enable this feature."
    github.target.refusing = {r"/branches/main/protection$": upgrade}
    args = ("restore", backed_up, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0")
    r = cli(*args)
    assert r.code == 3, r.err
    assert "protection of main" in r.err and "Upgrade to GitHub Pro" in r.err, r.err
    made = github.target.made[FULL]
    assert sorted(made.protection) == ["release/2"] and made.autolinks and made.hooks
    github.target.refusing = {}
    r = cli(*args)
    assert r.code == 0, r.err
    _compare(made, _read_set(backed_up, tmp_path, cli), _refs_of_set(backed_up, tmp_path, cli))


def test_force_adds_what_is_missing_and_keeps_what_the_target_holds(
    cli, github: FakeGitHub, backed_up: Path, tmp_path: Path
) -> None:
    """A repository someone made again by hand, with its own main and topics."""
    bare = tmp_path / "server" / OWNER / "again.git"
    work = tmp_path / "hand"
    git("init", "-q", "-b", "main", str(work))
    commit(work, "README", "made again by hand\n")
    git("clone", "-q", "--bare", str(work), str(bare))
    theirs = git("rev-parse", "refs/heads/main", cwd=bare).strip()
    github.target.made[f"{OWNER}/again"] = Made(OWNER, "again", bare, topics=["theirs"])
    args = ("restore", backed_up, "--entry", "app", "--into", f"github://{OWNER}/again",
            "--pace", "0")  # fmt: skip
    r = cli(*args)
    assert r.code == 2 and "refs/heads/main" in r.err and "--force" in r.err, r.err
    r = cli(*args, "--force")
    assert r.code == 0, r.err
    made = github.target.made[f"{OWNER}/again"]
    assert git("rev-parse", "refs/heads/main", cwd=bare).strip() == theirs  # not moved
    ours = _refs_of_set(backed_up, tmp_path, cli)
    for line in ours:
        sha, name = line.split()
        if name not in ("refs/heads/main",) and not name.startswith("refs/pull/"):
            assert git("rev-parse", name, cwd=bare).strip() == sha, name
    assert made.topics == ["theirs", "backup", "tools"]
    assert len(made.numbered) == 300  # numbers kept: the target had no issues


def test_a_diff_set_brings_its_base_metadata_with_it(
    cli, github: FakeGitHub, tmp_path: Path, passphrase: str
) -> None:
    """The newest set is a diff: what changed since the full, over the full's items."""
    meta = _source(github, issues=6, pulls=2, comments=5)
    sets = tmp_path / "sets"
    args = ("backup", f"github://{FULL}", "--include-metadata", "--include-release-assets",
            "--incremental", "--to", sets, "--json")  # fmt: skip
    assert cli(*args).code == 0
    meta.edits["issues"] = {2: {"title": "retitled after the full run"}}
    meta.issue_comments += 2
    r = cli(*args)
    assert r.code == 0, r.err
    entries = {e["name"]: e["delta"] for e in json.loads(r.out)["manifest"]["entries"]}
    assert entries["app-metadata"] == "diff"
    github.target.git_root = tmp_path / "server"
    github.target.delete(FULL)
    r = cli("restore", sets, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0")
    assert r.code == 0, r.err
    made = github.target.made[FULL]
    assert made.numbered[1]["title"] == "retitled after the full run"
    assert made.numbered[0]["title"] == "issue 1"  # from the full set
    _compare(made, _read_set(sets, tmp_path, cli), _refs_of_set(sets, tmp_path, cli))


@needs_lfs
def test_lfs_objects_and_the_wiki_come_back_the_wiki_once_github_has_made_it(
    cli, github: FakeGitHub, tmp_path: Path, passphrase: str
) -> None:
    """GitHub makes a wiki's repository with its first page: until then the wiki cannot be
    pushed (named, exit 3); once it is there, a second run pushes it."""
    server = tmp_path / "server" / OWNER
    shutil.rmtree(server / "app.git")
    make_repo(server, "app", commits=1, lfs=BIG)
    wiki = make_repo(server, "app.wiki", commits=2)
    wiki_refs = git("for-each-ref", "--format=%(objectname) %(refname)", cwd=wiki)
    github.metadata[FULL] = FakeMetadata(issues=2)
    sets = tmp_path / "sets"
    r = cli("backup", f"github://{FULL}", "--include-metadata", "--include-lfs",
            "--include-wiki", "--to", sets)  # fmt: skip
    assert r.code == 0, r.err
    github.target.git_root = tmp_path / "server"
    github.target.delete(FULL)
    shutil.rmtree(wiki)
    args = ("restore", sets, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0")
    r = cli(*args)
    assert r.code == 3 and "the wiki" in r.err and "first page" in r.err, r.err
    made = github.target.made[FULL]
    checkout_with_lfs(made.git, tmp_path / "work")  # type: ignore[arg-type]
    for name, data in BIG.items():
        assert (tmp_path / "work" / name).read_bytes() == data
    git("init", "-q", "--bare", str(wiki))  # the first page made on GitHub (its own commit
    r = cli(*args)  # aside: an empty repository stands in for it)
    assert r.code == 0, r.err
    assert git("for-each-ref", "--format=%(objectname) %(refname)", cwd=wiki) == wiki_refs


def test_writes_keep_the_pace_and_wait_out_a_secondary_rate_limit(
    cli, github: FakeGitHub, tmp_path: Path, passphrase: str
) -> None:
    """A POST GitHub answers with a secondary rate limit made nothing: it is sent again
    after Retry-After, once; writes are spaced by --pace."""
    sets = _backed_up(cli, github, tmp_path, issues=5, pulls=1, comments=2)
    github.target.throttle_writes = 2
    r = cli("restore", sets, "--entry", "app", "--into", f"github://{FULL}", "--pace", "0.05",
            "--json")  # fmt: skip
    assert r.code == 0, r.err
    made = github.target.made[FULL]
    assert len(made.numbered) == 6 and len(github.target.throttled) == 2
    arrived = github.target.arrived
    gaps = [b - a for a, b in zip(arrived, arrived[1:])]
    # the pace between writes (as the server sees them come: its threads add some jitter)
    assert statistics.median(gaps) >= 0.045 and sum(gaps) >= 0.05 * len(gaps)
    for when in github.target.throttled:  # the same write again after Retry-After
        after = next(t for t in arrived if t > when)
        assert after - when >= 0.95
    _compare(made, _read_set(sets, tmp_path, cli), _refs_of_set(sets, tmp_path, cli))


def test_a_whole_owner_goes_on_past_a_repository_it_must_refuse(
    cli, github: FakeGitHub, tmp_path: Path, passphrase: str
) -> None:
    """github://OWNER: each repository under its own name; one holding issues of its own
    is refused (named, exit 2), the others come back."""
    _source(github, issues=5, pulls=1, comments=2)
    lib = make_repo(tmp_path / "server" / OWNER, "lib", commits=1)
    github.org_repos[OWNER] = ["app", "lib"]
    github.repo_attrs[f"{OWNER}/lib"] = {"clone_url": f"file://{lib}"}
    github.metadata[f"{OWNER}/lib"] = FakeMetadata(issues=2)
    sets = tmp_path / "sets"
    r = cli("backup", f"github://{OWNER}", "--include-metadata", "--to", sets)
    assert r.code == 0, r.err
    github.target.git_root = tmp_path / "server"
    github.target.delete(FULL)
    theirs = {"number": 1, "title": "someone's", "body": "not from the set", "state": "open",
              "locked": False, "labels": [], "milestone": None, "pull": None}  # fmt: skip
    github.target.made[f"{OWNER}/lib"] = Made(OWNER, "lib", lib, numbered=[theirs])
    r = cli("restore", sets, "--into", f"github://{OWNER}", "--pace", "0")
    assert r.code == 2, r.err
    assert f"github://{OWNER}/lib" in r.err and "numbers cannot be kept" in r.err
    assert len(github.target.made[FULL].numbered) == 6  # app is back all the same
    assert github.target.made[f"{OWNER}/lib"].numbered == [theirs]


def test_force_adds_the_sets_issues_beside_the_targets_own_with_the_numbers_github_gives(
    cli, github: FakeGitHub, backed_up: Path, tmp_path: Path
) -> None:
    """SPEC §11: numbers cannot be kept in a repository with issues and milestones of its
    own; --force adds the set's with GitHub's numbers, the report maps them, the target's
    own stay as they are, and a second run finds what the first made by its marker."""
    bare = tmp_path / "server" / OWNER / "busy.git"
    git("init", "-q", "--bare", str(bare))
    theirs = {"number": 1, "title": "someone's", "body": "their own", "state": "open",
              "locked": False, "labels": [], "milestone": None, "pull": None}  # fmt: skip
    milestone = github._item("milestone", number=1, id=1, title="their milestone")
    github.target.made[f"{OWNER}/busy"] = Made(OWNER, "busy", bare, numbered=[dict(theirs)],
                                               milestones=[milestone])  # fmt: skip
    args = ("restore", backed_up, "--entry", "app", "--into", f"github://{OWNER}/busy",
            "--pace", "0", "--json")  # fmt: skip
    r = cli(*args)
    assert r.code == 2 and "--force" in r.err and "numbers" in r.err, r.err
    r = cli(*args, "--force")
    assert r.code == 0, r.err
    numbers = {int(k): v for k, v in json.loads(r.out)["rebuilt"][0]["numbers"].items()}
    made = github.target.made[f"{OWNER}/busy"]
    assert made.numbered[0] == theirs and made.milestones[0]["title"] == "their milestone"
    meta = _read_set(backed_up, tmp_path, cli)
    held = {i["number"]: i for i in _items(meta, "issues")}
    assert len(made.numbered) == 1 + len(held)  # no placeholders: numbers are GitHub's
    titles = {m["number"]: m["title"] for m in made.milestones}
    for number, want in held.items():
        got = made.numbered[numbers.get(number, number) - 1]
        assert (got["title"], got["state"]) == (want["title"], want["state"])
        if want["milestone"]:
            assert titles[got["milestone"]] == want["milestone"]["title"]
    posts = github.target.posts
    r = cli(*args, "--force")
    assert r.code == 0, r.err
    assert github.target.posts == posts  # found by marker: nothing made twice
