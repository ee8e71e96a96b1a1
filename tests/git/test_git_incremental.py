"""Incremental repositories (SPEC §10): a diff is a bundle of what the base's refs do not
reach plus the complete ref list; a restore sets refs exactly (deleted branches and
tags gone, moved ones moved), over file:// remotes and into a new remote."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from offsite.sets.manifest import Manifest
from tests.conftest import run_guide_diff
from tests.git.conftest import GitDaemon, checkout_with_lfs, commit, git, make_repo, needs_lfs, refs


def _sets(dest: Path) -> list[Manifest]:
    return [Manifest.from_json((p / "manifest.json").read_bytes()) for p in sorted(dest.iterdir())
            if (p / "manifest.json").exists()]  # fmt: skip


def _backup(cli, repo: Path | str, dest: Path, cache: Path) -> Manifest:  # type: ignore[no-untyped-def]
    url = repo if isinstance(repo, str) else f"git+file://{repo}"
    r = cli("backup", url, "--incremental", "--mirror-cache", cache, "--to", dest)
    assert r.code == 0, r.err
    return _sets(dest)[-1]


def _push_commit(repo: Path, tmp_path: Path, name: str) -> None:
    work = tmp_path / f"work-{name}"
    git("clone", "-q", str(repo), str(work))
    commit(work, f"{name}.txt", f"{name}\n" * 50)
    git("push", "-q", "origin", "main", cwd=work)


def head(repo: Path) -> str:
    return git("symbolic-ref", "HEAD", cwd=repo)


@pytest.mark.parametrize("served", ["file", "daemon"])
def test_a_diff_carries_new_objects_and_restores_refs_exactly(
    cli, passphrase: str, tmp_path: Path, repo: Path, daemon: GitDaemon, served: str
) -> None:
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    url = f"git+file://{repo}" if served == "file" else f"git+{daemon.url('app.git')}"
    full = _backup(cli, url, dest, cache)
    assert full.entries[0].delta == "full" and full.entries[0].companion("refs")
    _push_commit(repo, tmp_path, "new")
    git("branch", "-D", "feature", cwd=repo)  # a deleted branch
    git("tag", "-f", "light-1", "main", cwd=repo)  # a moved tag
    diff = _backup(cli, url, dest, cache)
    entry = diff.entries[0]
    assert diff.base is not None and diff.base.id == full.id and entry.delta == "diff"
    assert entry.raw_size < full.entries[0].raw_size / 2  # the new commit, not the history
    r = cli("restore", dest, "--into", tmp_path / "restored.git")
    assert r.code == 0, r.err
    assert refs(tmp_path / "restored.git") == refs(repo)
    assert head(tmp_path / "restored.git") == head(repo)
    git("fsck", "--full", "--no-dangling", cwd=tmp_path / "restored.git")
    fresh = tmp_path / "new-home.git"  # into a new, empty remote: pushed with every ref
    git("init", "-q", "--bare", str(fresh))
    assert cli("restore", dest, "--into", f"git+file://{fresh}").code == 0
    assert refs(fresh) == refs(repo)
    r = cli("verify", dest, "--all", "--read-data")
    assert r.code == 0, r.out + r.err


def test_a_repository_whose_refs_only_went_away_is_a_ref_list_alone(
    cli, passphrase: str, tmp_path: Path, repo: Path
) -> None:
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    _backup(cli, repo, dest, cache)
    unchanged = _backup(cli, repo, dest, cache)
    assert unchanged.entries[0].delta == "unchanged" and unchanged.entries[0].file == ""
    git("branch", "-D", "release/2", cwd=repo)
    git("tag", "-d", "v1.0", cwd=repo)
    diff = _backup(cli, repo, dest, cache)
    entry = diff.entries[0]
    assert entry.delta == "diff" and entry.file == "" and entry.companion("refs") is not None
    data = json.loads((dest / diff.id / "manifest.json").read_text())
    assert "file" not in data["entries"][0]
    r = cli("restore", dest, "--into", tmp_path / "restored.git")
    assert r.code == 0, r.err
    assert refs(tmp_path / "restored.git") == refs(repo)
    assert "release/2" not in refs(tmp_path / "restored.git")


def test_a_new_annotated_tag_of_an_old_commit_comes_back(
    cli, passphrase: str, tmp_path: Path, repo: Path
) -> None:
    """No new commit, one new object: the tag. The diff is a bundle, not a list alone."""
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    _backup(cli, repo, dest, cache)
    git("tag", "-a", "v0.9", "-m", "an old release, tagged late", "feature", cwd=repo)
    diff = _backup(cli, repo, dest, cache)
    assert diff.entries[0].delta == "diff" and diff.entries[0].file != ""
    assert cli("restore", dest, "--into", tmp_path / "restored.git").code == 0
    assert refs(tmp_path / "restored.git") == refs(repo)


def test_a_repository_diff_restores_with_the_readme_commands(
    cli, passphrase: str, tmp_path: Path, repo: Path
) -> None:
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    base = _backup(cli, repo, dest, cache)
    _push_commit(repo, tmp_path, "new")
    git("branch", "-D", "feature", cwd=repo)
    diff = _backup(cli, repo, dest, cache)
    work = run_guide_diff("A repository's diff the same way", dest / base.id, dest / diff.id,
                           tmp_path)  # fmt: skip
    assert refs(work / "app.git") == refs(repo)
    assert head(work / "app.git") == head(repo)


def test_a_branch_renamed_to_a_nested_name_restores(
    cli, passphrase: str, tmp_path: Path, repo: Path
) -> None:
    """refs/heads/release/2 gone and refs/heads/release made: two update-ref transactions
    (one cannot delete a ref and create one nested under its name)."""
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    _backup(cli, repo, dest, cache)
    git("branch", "-D", "release/2", cwd=repo)
    git("branch", "release", "feature", cwd=repo)
    _backup(cli, repo, dest, cache)
    r = cli("restore", dest, "--into", tmp_path / "restored.git")
    assert r.code == 0, r.err
    assert refs(tmp_path / "restored.git") == refs(repo)


def test_head_follows_the_remote_default_branch(
    cli, passphrase: str, tmp_path: Path, repo: Path
) -> None:
    """A cached mirror's fetch never moves its HEAD: the run follows the remote's."""
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    _backup(cli, repo, dest, cache)
    git("symbolic-ref", "HEAD", "refs/heads/feature", cwd=repo)  # the default branch moved
    git("branch", "-D", "main", cwd=repo)
    _backup(cli, repo, dest, cache)
    assert cli("restore", dest, "--into", tmp_path / "one.git").code == 0
    assert head(tmp_path / "one.git") == "refs/heads/feature\n"
    assert refs(tmp_path / "one.git") == refs(repo)


def test_a_ref_list_naming_a_file_outside_refs_is_refused(cli, tmp_path: Path, repo: Path) -> None:
    """Unencrypted (no auth to break): a list naming hooks/post-update is not a ref list."""
    import hashlib

    import zstandard

    dest, cache = tmp_path / "sets", tmp_path / "cache"
    r = cli("backup", f"git+file://{repo}", "--incremental", "--mirror-cache", cache,
            "--no-encrypt", "--to", dest)  # fmt: skip
    assert r.code == 0, r.err
    git("branch", "-D", "feature", cwd=repo)
    r = cli("backup", f"git+file://{repo}", "--incremental", "--mirror-cache", cache,
            "--no-encrypt", "--to", dest)  # fmt: skip
    diff = _sets(dest)[-1]
    sha = git("rev-parse", "main", cwd=repo).strip()
    data = zstandard.ZstdCompressor().compress(f"{sha} hooks/post-update\n".encode())
    doc = json.loads((dest / diff.id / "manifest.json").read_text())
    companion = doc["entries"][0]["companions"][0]
    (dest / diff.id / companion["file"]).write_bytes(data)
    companion.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (dest / diff.id / "manifest.json").write_text(json.dumps(doc))
    r = cli("restore", dest, "--into", tmp_path / "restored.git")
    assert r.code == 3 and "ref list is not one" in r.err
    assert not (tmp_path / "restored.git").exists()


@needs_lfs
def test_an_lfs_diff_holds_only_the_objects_its_base_lacks(
    cli, passphrase: str, tmp_path: Path
) -> None:
    big = {"model.bin": os.urandom(200_000), "data.bin": os.urandom(100_000)}
    repo = make_repo(tmp_path / "remotes", "app", lfs=big)
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    args = ("--include-lfs", "--incremental", "--mirror-cache", cache, "--to", dest)
    assert cli("backup", f"git+file://{repo}", *args).code == 0
    full = _sets(dest)[-1]
    lfs = full.entry("app-lfs")
    assert lfs is not None and lfs.delta == "full" and lfs.companion("index")
    assert cli("backup", f"git+file://{repo}", *args).code == 0  # nothing new
    same = _sets(dest)[-1].entry("app-lfs")
    assert same is not None and same.delta == "unchanged" and not same.file

    work = tmp_path / "work"
    checkout_with_lfs(repo, work)
    git("lfs", "install", "--local", cwd=work)
    new = os.urandom(150_000)
    (work / "weights.bin").write_bytes(new)
    git("add", "weights.bin", cwd=work)
    git("commit", "-q", "-m", "new weights", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    assert cli("backup", f"git+file://{repo}", *args).code == 0
    diff = _sets(dest)[-1]
    entry = diff.entry("app-lfs")
    assert diff.base is not None and diff.base.id == full.id
    assert entry is not None and entry.delta == "diff"
    assert (entry.stats["objects"], entry.stats["new_objects"]) == (3, 1)
    assert len(new) <= entry.raw_size < len(new) + 10_000  # the new object alone

    r = cli("restore", dest, "--into", tmp_path / "out")
    assert r.code == 0, r.err
    checkout_with_lfs(tmp_path / "out" / "app.git", tmp_path / "again")
    for name, data in {**big, "weights.bin": new}.items():
        assert (tmp_path / "again" / name).read_bytes() == data
    # by hand, as the incremental guide says: both tars into the repository
    sets = sorted(p for p in dest.iterdir() if (p / "manifest.json").exists())
    work = run_guide_diff("LFS objects and container images: a diff", sets[0], sets[-1], tmp_path)
    found = {p.name for p in (work / "app.git" / "lfs" / "objects").rglob("*") if p.is_file()}
    assert found == {hashlib.sha256(d).hexdigest() for d in [*big.values(), new]}
