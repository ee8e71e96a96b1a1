"""Incremental GitHub metadata (SPEC §10): one JSON file per item and an index of every
item; a diff holds the items that changed (pages GitHub answers 304 are not read again),
the complete index, and a deleted list; a restore of base and diff equals a full export
of the repository as it was at the diff's time."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_guide_diff
from tests.fakegithub import FakeGitHub
from tests.git.conftest import OWNER

ISSUE_TITLE = {"title": "the title after the first backup"}


def _backup(cli, dest: Path, *extra: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    r = cli("backup", f"github://{OWNER}/app", "--include-release-assets", "--mirror-cache",
            dest.parent / "cache", "--to", dest, "--json", *extra)  # fmt: skip
    assert r.code == 0, r.err
    return json.loads(r.out)["manifest"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _change(github: FakeGitHub) -> None:
    """What happens in a repository between two runs: an issue retitled, a comment added,
    a label deleted, a review on a pull request (its own item unchanged), a new release."""
    meta = github.metadata[f"{OWNER}/app"]
    meta.edits["issues"] = {2: ISSUE_TITLE}
    meta.issue_comments += 1
    meta.gone["labels"] = {3}
    meta.reviews[7] = 3
    meta.releases["v2.0"] = {"app-linux.tar.gz": b"two\n" * 1000}


def test_a_metadata_diff_holds_what_changed_and_restores_the_repository_as_it_is_now(
    cli, passphrase: str, tmp_path: Path, github: FakeGitHub
) -> None:
    dest = tmp_path / "sets"
    full = _backup(cli, dest, "--incremental")
    meta = full["entries"][1]
    assert meta["delta"] == "full" and [c["role"] for c in meta["companions"]] == ["index"]

    unchanged = _backup(cli, dest, "--incremental")  # nothing happened: no file at all
    assert unchanged["entries"][1]["delta"] == "unchanged" and not unchanged["entries"][1]["file"]

    _change(github)
    github.log.clear()
    diff = _backup(cli, dest, "--incremental")
    entry = diff["entries"][1]
    assert diff["base"]["id"] == full["id"] and entry["delta"] == "diff"
    assert [c["role"] for c in entry["companions"]] == ["deleted"]
    # the pages GitHub answered 304 were not read again; the old assets not downloaded
    assert entry["stats"]["pages_not_modified"] > 0 and github.not_modified > 0
    downloads = [line for line in github.log if "/releases/assets/" in line]
    assert len(downloads) == 1, downloads  # v2.0's file, not v1.0's and v1.1's again
    # every pull request's reviews asked with their ETag: 304 but for the one reviewed
    reviews = {line for line in github.log if line.endswith("/reviews")}
    assert reviews == {f"GET /repos/{OWNER}/app/pulls/{n}/reviews" for n in (6, 7, 8)}
    assert entry["raw_size"] < meta["raw_size"] / 2
    assert (entry["stats"]["labels"], entry["stats"]["pull_reviews"]) == (2, 7)

    r = cli("restore", dest, "--entry", "app-metadata", "--into", tmp_path / "restored")
    assert r.code == 0, r.err
    restored = tmp_path / "restored"
    # what a full export of the repository now holds, byte for byte
    now = _backup(cli, tmp_path / "now")
    assert now["entries"][1]["delta"] == "full"
    r = cli("restore", tmp_path / "now", "--entry", "app-metadata", "--into", tmp_path / "full")
    assert r.code == 0, r.err
    expected = _tree(tmp_path / "full")
    got = _tree(restored)
    assert sorted(got) == sorted(expected)
    index = json.loads(got.pop("index.json"))
    assert index["items"] == json.loads(expected.pop("index.json"))["items"]
    assert got == expected
    assert not (restored / "labels" / "3.json").exists()
    assert json.loads((restored / "issues" / "2.json").read_text())["title"] == ISSUE_TITLE["title"]
    assert cli("verify", dest, "--all", "--read-data").code == 0

    # by hand, as the incremental guide says: base tar, the deleted list, then the diff tar
    sets = sorted(p for p in dest.iterdir() if (p / "manifest.json").exists())
    work = run_guide_diff("A metadata diff the same way", sets[0], sets[-1], tmp_path)
    assert _tree(work / "meta") == _tree(restored)


def test_a_diff_of_metadata_whose_base_index_is_damaged_makes_the_run_full(
    cli, tmp_path: Path, github: FakeGitHub
) -> None:
    dest = tmp_path / "sets"
    _backup(cli, dest, "--incremental", "--no-encrypt")
    index = next(dest.rglob("app-metadata.index.zst"))
    index.write_bytes(b"not zstd")  # gone or damaged: the next run cannot diff against it
    r = cli("backup", f"github://{OWNER}/app", "--include-metadata", "--incremental",
            "--mirror-cache", tmp_path / "cache", "--to", dest, "--no-encrypt", "--json")  # fmt: skip
    assert r.code == 0, r.err
    manifest = json.loads(r.out)["manifest"]
    assert manifest.get("base") is None and manifest["entries"][1]["delta"] == "full"
    assert "app-metadata" in r.err and "the run is full" in r.err


def _restored_equals_a_full_export(cli, tmp_path: Path, dest: Path) -> Path:  # type: ignore[no-untyped-def]
    """Restore the newest set's metadata; it holds what a full export now holds."""
    r = cli("restore", dest, "--entry", "app-metadata", "--into", tmp_path / "restored")
    assert r.code == 0, r.err
    _backup(cli, tmp_path / "now")
    r = cli("restore", tmp_path / "now", "--entry", "app-metadata", "--into", tmp_path / "full")
    assert r.code == 0, r.err
    got, expected = _tree(tmp_path / "restored"), _tree(tmp_path / "full")
    assert (
        json.loads(got.pop("index.json"))["items"]
        == json.loads(expected.pop("index.json"))["items"]
    )
    assert got == expected
    return tmp_path / "restored"


def test_an_issue_deleted_while_the_list_is_read_neither_hides_another_nor_stays(
    cli, passphrase: str, tmp_path: Path, github: FakeGitHub
) -> None:
    """Pages are numbered: an issue deleted on a page read before moves the next page's
    first issue onto it, unseen; the list is read again before anything counts deleted."""
    dest = tmp_path / "sets"
    _backup(cli, dest, "--incremental")
    meta = github.metadata[f"{OWNER}/app"]
    github.after_page[("issues", 1)] = lambda: meta.gone.setdefault("issues", set()).add(1)
    diff = _backup(cli, dest, "--incremental")
    assert diff["entries"][1]["delta"] == "diff"
    restored = _restored_equals_a_full_export(cli, tmp_path, dest)
    assert (restored / "issues" / "3.json").exists() and not (
        restored / "issues" / "1.json"
    ).exists()


def test_release_assets_asked_for_after_a_base_without_them_are_all_there(
    cli, passphrase: str, tmp_path: Path, github: FakeGitHub
) -> None:
    dest = tmp_path / "sets"
    r = cli("backup", f"github://{OWNER}/app", "--include-metadata", "--incremental",
            "--mirror-cache", tmp_path / "cache", "--to", dest)  # fmt: skip
    assert r.code == 0, r.err
    diff = _backup(cli, dest, "--incremental")  # --include-release-assets now
    assert diff["entries"][1]["delta"] == "diff"
    assert diff["entries"][1]["stats"]["release_assets"] == 3
    restored = _restored_equals_a_full_export(cli, tmp_path, dest)
    assert len(list((restored / "release-assets").rglob("*.*"))) == 3


def test_settings_the_token_can_no_longer_read_are_kept_from_the_base(
    cli, passphrase: str, tmp_path: Path, github: FakeGitHub
) -> None:
    """A diff made with a token that lost a permission does not delete what the base
    captured of it (it says it did not read it); what changed is in the diff."""
    meta = github.metadata[f"{OWNER}/app"]
    meta.hooks, meta.protected, meta.variables = 1, ["main"], 1
    dest = tmp_path / "sets"
    _backup(cli, dest, "--incremental")
    meta.denied, meta.variables = {"hooks"}, 2
    diff = _backup(cli, dest, "--incremental")
    entry = diff["entries"][1]
    assert entry["delta"] == "diff" and entry["stats"]["unreadable"] == 1
    assert (entry["stats"]["hooks"], entry["stats"]["variables"]) == (1, 2)
    r = cli("restore", dest, "--entry", "app-metadata", "--into", tmp_path / "m")
    assert r.code == 0, r.err
    assert len(list((tmp_path / "m" / "hooks").iterdir())) == 1
    assert len(list((tmp_path / "m" / "variables").iterdir())) == 2
    index = json.loads((tmp_path / "m" / "index.json").read_text())
    assert list(index["unreadable"]) == ["hooks"]
