"""offsite rekey (SPEC §2): key.gpg re-wrapped to a new passphrase, no entry rewritten,
drill records sealed again, planted sets left alone, a run cut short resumable."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_authentication import PLANTED, _planted_by_attacker
from tests.conftest import PASSPHRASE, only_set, tree_content

NEW = "a brand new passphrase, long enough"


@pytest.fixture
def new_passphrase(tmp_path: Path) -> Path:
    path = tmp_path / "new-passphrase"
    path.write_text(NEW + "\n")
    return path


def _entries(dest: Path) -> dict[str, str]:
    return {str(p.relative_to(dest)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in dest.rglob("*.gpg") if p.name != "key.gpg"}  # fmt: skip


def test_rekey_rotates_the_passphrase_of_sets_and_their_drill_records(
    cli, tmp_path: Path, tree: Path, passphrase: str, new_passphrase: Path, monkeypatch
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    assert cli("drill", dest, "--into", tmp_path / "scratch").code == 0
    stored = _entries(dest)
    old_key = (only_set(dest) / "key.gpg").read_bytes()
    r = cli("rekey", dest, "--all", "--new-passphrase-file", new_passphrase)
    assert r.code == 0, r.err
    assert f"re-wrapped the key of set {only_set(dest).name}" in r.out
    assert "sealed the drill record drills/" in r.out
    assert (only_set(dest) / "key.gpg").read_bytes() != old_key
    assert _entries(dest) == stored  # no entry rewritten
    assert not list(dest.rglob("*.rekey"))
    monkeypatch.setenv("OFFSITE_PASSPHRASE", NEW)
    r = cli("restore", dest, "--into", tmp_path / "back")
    assert r.code == 0, r.err
    assert tree_content(tmp_path / "back") == tree_content(tree)
    r = cli("monitor", "--storage", dest, "--max-age", "1d", "--rto", "1h", "--json")
    assert r.code == 0 and json.loads(r.out)["targets"][0]["drill"]["verified"] is True, r.out
    monkeypatch.setenv("OFFSITE_PASSPHRASE", PASSPHRASE)  # the old one opens nothing now
    r = cli("restore", dest, "--into", tmp_path / "old")
    assert r.code != 0 and not (tmp_path / "old").exists()


def test_a_planted_set_is_left_alone(
    cli, tmp_path: Path, tree: Path, passphrase: str, new_passphrase: Path, monkeypatch
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    planted = _planted_by_attacker(cli, tmp_path, dest, monkeypatch)
    theirs = (planted / "key.gpg").read_bytes()
    r = cli("rekey", dest, "--all", "--new-passphrase-file", new_passphrase)
    assert r.code == 0, r.err
    assert f"left alone: set {PLANTED}" in r.err
    assert (planted / "key.gpg").read_bytes() == theirs
    r = cli("rekey", dest, "--id", PLANTED, "--new-passphrase-file", new_passphrase)
    assert r.code == 1 and PLANTED in r.err


def test_a_rekey_cut_short_is_resumed_and_a_foreign_spare_refused(
    cli, tmp_path: Path, tree: Path, passphrase: str, new_passphrase: Path, monkeypatch
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    folder = only_set(dest)
    (folder / "key.gpg.rekey").write_bytes(b"junk")  # planted, or another rotation's
    r = cli("rekey", dest, "--all", "--new-passphrase-file", new_passphrase)
    assert r.code == 2 and "key.gpg.rekey is there" in r.err
    assert cli("verify", dest, "--read-data").code == 0  # nothing changed
    (folder / "key.gpg.rekey").unlink()
    copy = tmp_path / "copy"  # the same set rekeyed elsewhere: its new key.gpg as a spare
    shutil.copytree(dest, copy)
    assert cli("rekey", copy, "--all", "--new-passphrase-file", new_passphrase).code == 0
    made = (only_set(copy) / "key.gpg").read_bytes()
    (folder / "key.gpg.rekey").write_bytes(made)  # as a run cut short after the spare left it
    r = cli("rekey", dest, "--all", "--new-passphrase-file", new_passphrase)
    assert r.code == 0, r.err
    assert (folder / "key.gpg").read_bytes() == made and not (folder / "key.gpg.rekey").exists()
    (folder / "key.gpg.rekey").write_bytes(made)  # a spare another rotation left behind
    monkeypatch.setenv("OFFSITE_PASSPHRASE", NEW)
    other = tmp_path / "third"
    other.write_text("yet another passphrase\n")
    r = cli("rekey", dest, "--all", "--new-passphrase-file", other)
    assert r.code == 2 and "does not open with the new passphrase" in r.err
    r = cli("rekey", dest, "--all", "--new-passphrase-file", new_passphrase)
    assert r.code == 2 and "the current one" in r.err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "choose what to re-wrap"),
        (("--id", "20240101T000000Z", "--all"), "choose one of --id and --all"),
    ],
)
def test_bad_input_is_one_line(
    cli, tmp_path: Path, passphrase: str, new_passphrase: Path, args, words
) -> None:
    r = cli("rekey", tmp_path, *args, "--new-passphrase-file", new_passphrase)
    assert r.code == 2 and words in r.err and "Traceback" not in r.err


def test_a_planted_spare_midway_leaves_nothing_unsealed_and_a_rerun_finishes(
    cli, tmp_path: Path, tree: Path, passphrase: str, new_passphrase: Path, monkeypatch
) -> None:
    """Issue 30 review: a junk key.gpg.rekey in the second set stopped rekey --all after the
    first set was re-wrapped, before its drill records were sealed again, and a second run
    left the first set alone (it no longer opened with the old passphrase)."""
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    first = only_set(dest)
    assert cli("drill", dest, "--into", tmp_path / "scratch").code == 0
    assert cli("backup", tree, "--to", dest).code == 0  # a second set (-2 in the same second)
    second = max(p for p in dest.iterdir() if (p / "manifest.json").exists())
    assert second != first
    (second / "key.gpg.rekey").write_bytes(b"junk")
    r = cli("rekey", dest, "--all", "--new-passphrase-file", new_passphrase)
    assert r.code == 2 and "key.gpg.rekey is there" in r.err
    (second / "key.gpg.rekey").unlink()
    r = cli("rekey", dest, "--all", "--new-passphrase-file", new_passphrase)
    assert r.code == 0 and "left alone" not in r.err, r.err
    monkeypatch.setenv("OFFSITE_PASSPHRASE", NEW)
    r = cli("monitor", "--storage", dest, "--max-age", "1d", "--rto", "1h", "--json")
    assert r.code == 0 and json.loads(r.out)["targets"][0]["drill"]["verified"] is True, r.out
    assert cli("verify", dest, "--all", "--read-data").code == 0


def test_a_junk_archive_key_does_not_stop_rekey_wal(
    cli, tmp_path: Path, tree: Path, passphrase: str, new_passphrase: Path
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    junk = dest / "wal" / "1000000000000000000"
    junk.mkdir(parents=True)
    (junk / "key.gpg").write_bytes(b"junk")
    r = cli("rekey", dest, "--all", "--wal", "--new-passphrase-file", new_passphrase)
    assert r.code == 0 and "left alone: the WAL archive wal/1000000000000000000" in r.err, r.err
    assert f"re-wrapped the key of set {only_set(dest).name}" in r.out
