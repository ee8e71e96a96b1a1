"""What a repository's backup holds besides its bundle: Git LFS objects (a second entry,
checked object by object), the wiki (skipped where there is none), and GitHub metadata
(issues, pull requests with reviews, releases with their files, labels, milestones) read
from a fake GitHub that serves and validates GitHub's own shapes."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.conftest import only_set
from tests.fakegithub import TOKEN, FakeGitHub, validate, zip_folder
from tests.git.conftest import OWNER, checkout_with_lfs, git, make_repo, needs_lfs, refs

BIG = {"model.bin": os.urandom(300_000), "data.bin": os.urandom(120_000)}


def _backup(cli, *args):  # type: ignore[no-untyped-def]
    r = cli("backup", *args, "--no-encrypt", "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


@needs_lfs
def test_lfs_objects_are_a_second_entry_and_come_back_into_the_restored_repository(
    cli, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "remotes", "app", lfs=BIG)
    out = _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets", "--include-lfs")
    app, lfs = out["manifest"]["entries"]
    assert (app["name"], app["kind"]) == ("app", "git")
    assert (lfs["name"], lfs["kind"], lfs["file"]) == ("app-lfs", "git-lfs", "app-lfs.tar.zst")
    assert lfs["stats"]["objects"] == 2
    assert lfs["stats"]["bytes"] == sum(len(d) for d in BIG.values())
    assert "tar -xf - -C app.git" in lfs["restore_hint"]

    # the whole set: the repository, then its objects into it
    r = cli("restore", tmp_path / "sets", "--into", tmp_path / "out")
    assert r.code == 0, r.err
    restored = tmp_path / "out" / "app.git"
    assert refs(restored) == refs(repo)
    checkout_with_lfs(restored, tmp_path / "work")
    for name, data in BIG.items():
        assert (tmp_path / "work" / name).read_bytes() == data

    # one entry at a time, into a repository restored before
    r = cli("restore", tmp_path / "sets", "--entry", "app", "--into", tmp_path / "again.git")
    assert r.code == 0, r.err
    r = cli("restore", tmp_path / "sets", "--entry", "app-lfs", "--into", tmp_path / "again.git")
    assert r.code == 0, r.err
    checkout_with_lfs(tmp_path / "again.git", tmp_path / "work2")
    assert (tmp_path / "work2" / "model.bin").read_bytes() == BIG["model.bin"]


@needs_lfs
def test_the_lfs_archive_restores_with_tar_alone(cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "remotes", "app", lfs=BIG)
    _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets", "--include-lfs",
            "--compress", "none")  # fmt: skip
    with tarfile.open(only_set(tmp_path / "sets") / "app-lfs.tar") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    oids = sorted(hashlib.sha256(d).hexdigest() for d in BIG.values())
    assert names == [f"lfs/objects/{o[:2]}/{o[2:4]}/{o}" for o in oids]


@needs_lfs
def test_a_corrupt_lfs_object_on_the_server_fails_the_backup(cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "remotes", "app", lfs=BIG)
    oid = hashlib.sha256(BIG["data.bin"]).hexdigest()
    stored = repo / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    data = stored.read_bytes()  # its first byte flipped (an "X" put there is no change
    stored.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # when the random data has one)
    r = cli("backup", f"git+file://{repo}", "--to", tmp_path / "sets", "--no-encrypt",
            "--include-lfs")  # fmt: skip
    assert r.code == 3, (r.out, r.err)
    assert "app-lfs" in r.err and "Traceback" not in r.err
    assert not any((tmp_path / "sets").rglob("manifest.json"))


@needs_lfs
def test_incremental_runs_keep_lfs_objects_in_the_cache(cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "remotes", "app", lfs=BIG)
    cache = tmp_path / "cache"
    _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets", "--include-lfs",
            "--mirror-cache", cache)  # fmt: skip
    work = tmp_path / "push-work"
    checkout_with_lfs(repo, work)
    git("lfs", "install", "--local", cwd=work)
    (work / "more.bin").write_bytes(b"new large file\n" * 1000)
    git("add", "more.bin", cwd=work)
    git("commit", "-q", "-m", "one more", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    second = _backup(cli, f"git+file://{repo}", "--to", tmp_path / "sets", "--include-lfs",
                     "--mirror-cache", cache)  # fmt: skip
    app, lfs = second["manifest"]["entries"]
    assert app["stats"]["incremental"] is True
    assert lfs["stats"]["objects"] == 3


def test_the_wiki_is_an_entry_where_there_is_one(cli, tmp_path: Path) -> None:
    remotes = tmp_path / "remotes"
    app = make_repo(remotes, "app")
    wiki = make_repo(remotes, "app.wiki", commits=1)
    lonely = make_repo(remotes, "lonely", commits=1)
    out = _backup(cli, f"git+file://{app}", f"git+file://{lonely}", "--include-wiki",
                  "--to", tmp_path / "sets")  # fmt: skip
    names = [e["name"] for e in out["manifest"]["entries"]]
    assert names == ["app", "app-wiki", "lonely"]
    assert out["skipped"] == ["lonely-wiki: not there"]
    r = cli("restore", tmp_path / "sets", "--entry", "app-wiki", "--into", tmp_path / "w.git")
    assert r.code == 0, r.err
    assert refs(tmp_path / "w.git") == refs(wiki)

    r = cli("backup", f"git+file://{lonely}", "--include-wiki", "--to", tmp_path / "more",
            "--no-encrypt")  # fmt: skip
    assert r.code == 0, r.err
    assert "skipped lonely-wiki: not there" in r.out


# -- GitHub metadata --------------------------------------------------------------------
def _read_json(folder: Path, name: str):  # type: ignore[no-untyped-def]
    return json.loads((folder / name).read_text())


def test_metadata_is_exported_page_by_page_within_rate_limits(
    cli, tmp_path: Path, github: FakeGitHub
) -> None:
    github.throttle_next = 1  # a secondary rate limit: Retry-After
    github.exhaust_next = 1  # the primary one: wait for its reset
    r = cli("backup", f"github://{OWNER}/app", "--include-release-assets",
            "--to", tmp_path / "sets", "--no-encrypt", "--json")  # fmt: skip
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert github.throttle_next == 0 and github.exhaust_next == 0
    # each wait is one line of its own; no request's address (PyGithub's own logging)
    waits = [line for line in r.err.splitlines() if "for GitHub's rate limit" in line]
    assert len(waits) == 2 and "/repos/" not in r.err, r.err
    _, meta = out["manifest"]["entries"]
    assert (meta["name"], meta["kind"], meta["source"]) == (
        "app-metadata", "github-metadata", f"github://{OWNER}/app"
    )  # fmt: skip
    stats = meta["stats"]
    assert (stats["issues"], stats["pulls"], stats["pull_reviews"]) == (8, 3, 6)
    assert (stats["issue_comments"], stats["pull_review_comments"]) == (4, 3)
    assert (stats["releases"], stats["release_assets"], stats["labels"]) == (2, 3, 3)
    assert stats["release_asset_bytes"] == 11006
    # one request per page (2 items a page), one per pull request's reviews, one per asset,
    # one per setting's list (topics, properties, protected branches, rulesets,
    # environments, variables, secrets, autolinks, hooks, keys, collaborators, teams)
    pages = 1 + 4 + 2 + 2 + 2 + 2 + 1 + 1 + 3 * 1 + 3 + 12
    assert stats["requests"] == pages

    r = cli("restore", tmp_path / "sets", "--entry", "app-metadata", "--into", tmp_path / "m")
    assert r.code == 0, r.err
    folder = tmp_path / "m"
    issues = _items(folder, "issues")
    assert [i["number"] for i in issues] == list(range(1, 9))
    for item in issues:
        validate(item, "issue")
    for item in _items(folder, "pulls"):
        validate(item, "pull-request-simple")
    reviews = sorted(p.relative_to(folder / "pull-reviews").parts[0]
                     for p in (folder / "pull-reviews").rglob("*.json"))  # fmt: skip
    assert reviews == ["6", "6", "7", "7", "8", "8"]
    assert [r["tag_name"] for r in _items(folder, "releases")] == ["v1.0", "v1.1"]
    assert _read_json(folder, "settings/repository.json")["full_name"] == f"{OWNER}/app"
    index = _read_json(folder, "index.json")
    assert sorted(index["items"]["issues"], key=lambda k: int(k[:-5])) == [
        f"{n}.json" for n in range(1, 9)
    ]
    expected = github.metadata[f"{OWNER}/app"].releases
    assets = folder / "release-assets"
    assert (assets / "2" / "notes.txt").read_bytes() == expected["v1.1"]["notes.txt"]
    assert (assets / "1" / "app-linux.tar.gz").read_bytes() == expected["v1.0"]["app-linux.tar.gz"]
    # one JSON file per item: format 3, each entry full
    assert out["manifest"]["format"] == "offsite-manifest/3"
    assert meta["delta"] == "full" and not meta.get("companions")


def _items(folder: Path, kind: str) -> list:  # type: ignore[type-arg]
    """A kind's items, in the order of their numbers or ids."""
    files = sorted((folder / kind).glob("*.json"), key=lambda p: int(p.stem))
    return [json.loads(p.read_text()) for p in files]


def test_metadata_for_a_whole_organisation_and_a_plain_git_url(
    cli, tmp_path: Path, github: FakeGitHub
) -> None:
    out = _backup(cli, f"github://{OWNER}", "--include-metadata", "--to", tmp_path / "sets")
    names = [e["name"] for e in out["manifest"]["entries"]]
    assert names == ["app", "app-metadata"]
    assert "release_assets" not in out["manifest"]["entries"][1]["stats"]
    # the whole set: a bare repository and a folder of JSON side by side
    r = cli("restore", tmp_path / "sets", "--into", tmp_path / "all")
    assert r.code == 0, r.err
    assert refs(tmp_path / "all" / "app.git") == refs(tmp_path / "server" / OWNER / "app.git")
    assert _items(tmp_path / "all" / "app-metadata", "labels")

    r = cli("backup", f"git+file://{tmp_path}/server/{OWNER}/app.git", "--include-metadata",
            "--to", tmp_path / "x", "--no-encrypt")  # fmt: skip
    assert r.code == 2 and "github://OWNER/REPO" in r.err


def test_a_users_repositories_are_listed_from_the_user_path(
    cli, tmp_path: Path, github: FakeGitHub
) -> None:
    make_repo(tmp_path / "server" / "ada", "notes", commits=1)
    github.user_repos["ada"] = ["notes"]
    github.repo_attrs["ada/notes"] = {"clone_url": f"file://{tmp_path}/server/ada/notes.git"}
    out = _backup(cli, "github://ada", "--to", tmp_path / "sets")
    assert [e["name"] for e in out["manifest"]["entries"]] == ["notes"]
    assert "GET /users/ada/repos" in github.log
    assert not any(line.startswith("GET /orgs/") for line in github.log)


def test_a_missing_repository_fails_the_metadata_entry_with_one_line(
    cli, tmp_path: Path, github: FakeGitHub
) -> None:
    make_repo(tmp_path / "server" / OWNER, "gone", commits=1)
    r = cli("backup", f"github://{OWNER}/gone", "--include-metadata", "--to", tmp_path / "sets",
            "--no-encrypt")  # fmt: skip
    assert r.code == 3, r.err
    assert "gone-metadata" in r.err and "404" in r.err and "Traceback" not in r.err
    assert TOKEN not in r.err
    assert not any((tmp_path / "sets").rglob("manifest.json"))


def test_an_asset_storage_refuses_or_lost_fails_the_backup_without_its_signature(
    cli, tmp_path: Path, github: FakeGitHub
) -> None:
    github.link_seconds = -1  # every signed storage address has already expired
    r = cli("backup", f"github://{OWNER}/app", "--include-release-assets", "--to",
            tmp_path / "sets", "--no-encrypt")  # fmt: skip
    assert r.code == 3, r.err
    assert r.err.count("\n") == 1 and r.err.startswith("offsite: error:"), r.err
    assert "release asset app-linux.tar.gz" in r.err and "403" in r.err
    assert "expires=" not in r.err

    github.link_seconds = 60
    github.lost_assets.add("notes.txt")  # storage has lost this one: a 404
    r = cli("backup", f"github://{OWNER}/app", "--include-release-assets", "--to",
            tmp_path / "sets", "--no-encrypt")  # fmt: skip
    assert r.code == 3, r.err
    assert r.err.count("\n") == 1 and "release asset notes.txt" in r.err and "404" in r.err
    assert "expires=" not in r.err and "/blob/" in r.err  # the address, not its signature
    assert not any((tmp_path / "sets").rglob("manifest.json"))


def test_the_settings_a_restore_into_github_needs_are_captured_as_far_as_the_token_reads(
    cli, tmp_path: Path, github: FakeGitHub
) -> None:
    """Protection of each protected branch, rulesets in full, environments with their
    branch policies and variables, variables, secrets' names (no values), autolinks,
    webhooks, deploy keys, topics, properties, collaborators and teams; what the token may
    not read is one line each and named in index.json, never a failure."""
    meta = github.metadata[f"{OWNER}/app"]
    meta.topics, meta.protected, meta.rulesets = ["backup", "ops"], ["main", "release/2"], 2
    meta.environments, meta.variables, meta.secrets = ["production", "staging"], 2, 3
    meta.autolinks, meta.hooks, meta.deploy_keys, meta.collaborators, meta.teams = 1, 1, 1, 2, 1
    meta.ruleset_protected = ["next"]  # its rules are a ruleset's: /protection answers 404
    meta.denied = {"teams", "environments/staging/variables"}  # a token that may not
    meta.absent = {"properties/values"}  # a repository of a user: no custom properties
    r = cli("backup", f"github://{OWNER}/app", "--include-metadata", "--to", tmp_path / "sets",
            "--no-encrypt", "--json")  # fmt: skip
    assert r.code == 0, r.err
    out, out_err = json.loads(r.out), r.err
    stats = out["manifest"]["entries"][1]["stats"]
    assert (stats["branch_protections"], stats["rulesets"], stats["environments"]) == (2, 2, 2)
    assert (stats["variables"], stats["secrets"], stats["teams"], stats["unreadable"]) == (
        2, 3, 0, 1
    )  # fmt: skip
    # a request per list, per protected branch (3) and per ruleset (2) in full, per
    # environment's variables (2) and branch policies (custom, 2)
    assert stats["requests"] == 1 + 4 + 2 + 2 + 2 + 2 + 1 + 1 + 3 + 12 + 3 + 2 + 2 + 2
    r = cli("restore", tmp_path / "sets", "--entry", "app-metadata", "--into", tmp_path / "m")
    assert r.code == 0, r.err
    folder = tmp_path / "m"
    assert _read_json(folder, "settings/topics.json") == {"names": ["backup", "ops"]}
    protected = sorted(json.loads(p.read_text())["branch"]
                       for p in (folder / "branch-protection").iterdir())  # fmt: skip
    assert protected == ["main", "release/2"]
    production = next(json.loads(p.read_text()) for p in (folder / "environments").iterdir()
                      if json.loads(p.read_text())["environment"]["name"] == "production")  # fmt: skip
    assert production["deployment_branch_policies"] and production["variables"]
    secrets = [json.loads(p.read_text()) for p in (folder / "secrets").iterdir()]
    assert sorted(s["name"] for s in secrets) == ["SECRET_1", "SECRET_2", "SECRET_3"]
    assert all("value" not in s for s in secrets)
    assert _read_json(folder, "index.json")["unreadable"] == {
        "teams": "GitHub answered 403: Resource not accessible by integration"
    }
    staging = next(json.loads(p.read_text()) for p in (folder / "environments").iterdir()
                   if json.loads(p.read_text())["environment"]["name"] == "staging")  # fmt: skip
    assert list(staging["unreadable"]) == ["variables"] and staging["variables"] == []
    hook = json.loads(next((folder / "hooks").iterdir()).read_text())
    assert "secret" not in hook["config"]  # GitHub masks it: a restore must not set stars
    assert not (folder / "settings" / "custom-properties.json").exists()
    warnings = [line for line in out_err.splitlines() if "not read" in line]
    assert warnings == [f"offsite: warning: {OWNER}/app: teams not read: GitHub answered 403: "
                        "Resource not accessible by integration"]  # fmt: skip


def test_a_repository_backed_up_only_into_its_own_artifacts_is_told_so(
    cli, tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting a repository deletes its artifacts: a backup of it kept nowhere else is
    no backup against that (SPEC §11); one line says so, the backup is made all the same."""
    monkeypatch.setenv("OFFSITE_ARTIFACTS_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("GITHUB_REPOSITORY", f"{OWNER}/app")
    r = cli("backup", f"github://{OWNER}/app", "--to", "github-artifacts", "--no-encrypt")
    assert r.code == 0, r.err
    said = [line for line in r.err.splitlines() if "deletes these backups" in line]
    assert said == [f"offsite: warning: {OWNER}/app is backed up only into its own GitHub "
                    "Artifacts: deleting the repository deletes these backups with it; add "
                    "a destination outside it"]  # fmt: skip
    # the monitor of that repository's Artifacts says it too, and stays healthy
    made = next((tmp_path / "staging").iterdir())
    github.add(f"backup-{made.name}", zip_folder(made), repo=f"{OWNER}/app")
    r = cli("monitor", "--storage", f"gh-artifacts://{OWNER}/app", "--max-age", "1d",
            "--state-file", tmp_path / "state", "--json")  # fmt: skip
    assert r.code == 0, r.err
    target = json.loads(r.out)["targets"][0]
    assert target["status"] == "healthy"
    assert any("deleting the repository deletes these backups" in x for x in target["reasons"])
    r = cli("backup", f"github://{OWNER}/app", "--to", "github-artifacts", "--to",
            tmp_path / "elsewhere", "--no-encrypt")  # fmt: skip
    assert r.code == 0 and "deletes these backups" not in r.err
