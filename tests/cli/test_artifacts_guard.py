"""What a backup to GitHub Artifacts refuses before it runs (issue 21): a name restore,
prune and the monitor would never find again, one upload-artifact refuses, and an
unencrypted set in a public repository, whose artifacts anyone signed in can download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Inside the actions: the folder the next step uploads."""
    staging = tmp_path / "offsite-artifacts"
    monkeypatch.setenv("OFFSITE_ARTIFACTS_DIR", str(staging))
    return staging


def _event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **repository: object) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"full_name": "o/r", **repository}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))


@pytest.mark.parametrize(
    ("name", "says"),
    [("nightly-db", "write it as backup-{id}"), ("backup-nightly-db", "write it as"),
     ("backup-{id}-a:b", "refuses"), ("backup-", "write it as")],
)  # fmt: skip
def test_an_artifact_name_offsite_could_not_find_again_is_refused_before_the_backup(
    cli, tree: Path, job: Path, monkeypatch: pytest.MonkeyPatch, name: str, says: str
) -> None:
    monkeypatch.setenv("OFFSITE_ARTIFACT_NAME", name)
    r = cli("backup", tree, "--to", "github-artifacts", "--no-encrypt")
    assert r.code == 2 and says in r.err
    assert not job.exists() or list(job.iterdir()) == []  # nothing was backed up
    monkeypatch.setenv("OFFSITE_ARTIFACT_NAME", "backup-{id}-nightly-db")
    r = cli("backup", tree, "--to", "github-artifacts", "--no-encrypt", "--json")
    assert r.code == 0, r.err
    set_id = json.loads(r.out)["manifest"]["id"]
    from offsite.github.artifacts import artifact_name
    from offsite.storage.gh_artifacts import parse_artifacts

    name = artifact_name(set_id)
    assert name == f"backup-{set_id}-nightly-db"  # what the action uploads it as
    page = {
        "artifacts": [
            {
                "id": 1,
                "name": name,
                "archive_download_url": "https://x",
                "workflow_run": {"head_repository_id": 7, "head_branch": "main"},
            }
        ]
    }
    (listed,) = parse_artifacts(page, 7, "main")
    assert listed.set_id == set_id  # the set restore and prune find in the repository's list


def test_unencrypted_artifacts_of_a_public_repository_are_refused_unless_allowed(
    cli, tree: Path, job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passphrase: str
) -> None:
    _event(tmp_path, monkeypatch, private=False, visibility="public")
    r = cli("backup", tree, "--to", "github-artifacts", "--no-encrypt")
    assert r.code == 2 and "this repository is public" in r.err
    assert cli("backup", tree, "--to", "github-artifacts").code == 0  # encrypted: fine
    r = cli("backup", tree, "--to", "github-artifacts", "--no-encrypt",
            "--allow-public-unencrypted")  # fmt: skip
    assert r.code == 0, r.err
    _event(tmp_path, monkeypatch, private=True, visibility="private")
    assert cli("backup", tree, "--to", "github-artifacts", "--no-encrypt").code == 0


def test_copying_an_unencrypted_set_into_a_public_repositorys_artifacts_is_refused_too(
    cli, tree: Path, job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """actions/upload ships a set an earlier step made: the same rule as backup's."""
    made = tmp_path / "made"
    assert cli("backup", tree, "--to", made, "--no-encrypt").code == 0
    _event(tmp_path, monkeypatch, private=False, visibility="public")
    r = cli("copy", made, "--to", "github-artifacts")
    assert r.code == 2 and "this repository is public" in r.err
    assert list(job.rglob("manifest.json")) == []  # nothing staged for the upload
    assert cli("copy", made, "--to", "github-artifacts", "--allow-public-unencrypted").code == 0
    assert len(list(job.rglob("manifest.json"))) == 1


def test_a_custom_named_artifact_downloaded_with_gh_run_download_restores(
    cli, tree: Path, job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passphrase: str
) -> None:
    """`gh run download RUN -D out` makes a folder per artifact, named as the artifact."""
    import shutil

    from tests.conftest import tree_content

    monkeypatch.setenv("OFFSITE_ARTIFACT_NAME", "backup-{id}-nightly-db")
    r = cli("backup", tree, "--to", "github-artifacts", "--json")
    assert r.code == 0, r.err
    set_id = json.loads(r.out)["manifest"]["id"]
    (staged,) = [p for p in job.rglob("manifest.json")]
    out = tmp_path / "out"
    shutil.copytree(staged.parent, out / f"backup-{set_id}-nightly-db")
    r = cli("restore", out, "--into", tmp_path / "restored")
    assert r.code == 0, r.err
    assert tree_content(tmp_path / "restored") == tree_content(tree)
