"""Incremental sets of files (SPEC §10): diffs against a full base, restored whole, and
every chain check a user relies on: a diff without its base is never a restore point."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import zstandard

from offsite.sets.manifest import Manifest


def tree(root: Path) -> dict[str, object]:
    """What a restore must give back: each path's type, content or target, and mode."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", oct(st.st_mode & 0o777))
        else:
            found[rel] = ("file", path.read_bytes(), oct(st.st_mode & 0o777))
    return found


def sets(dest: Path) -> list[Manifest]:
    return [Manifest.from_json((p / "manifest.json").read_bytes()) for p in sorted(dest.iterdir())
            if (p / "manifest.json").exists()]  # fmt: skip


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "docs" / "old").mkdir(parents=True)
    (src / "keep.txt").write_text("kept\n")
    (src / "change.txt").write_text("before\n")
    (src / "docs" / "old" / "a.md").write_text("a\n")
    (src / "docs" / "old" / "b.md").write_text("b\n")
    (src / "becomes-dir").write_text("a file first\n")
    (src / "big.bin").write_bytes(os.urandom(200_000))
    os.symlink("keep.txt", src / "link")
    return src


def backup(cli, src: Path, dest: Path, *more: str):  # type: ignore[no-untyped-def]
    r = cli("backup", src, "--incremental", "--to", dest, *more)
    assert r.code == 0, r.err
    return r


def change(src: Path) -> None:
    (src / "change.txt").write_text("after, longer\n")
    (src / "new.txt").write_text("new\n")
    shutil.rmtree(src / "docs" / "old")
    (src / "becomes-dir").unlink()
    (src / "becomes-dir").mkdir()
    (src / "becomes-dir" / "inside.txt").write_text("in\n")
    (src / "link").unlink()
    os.symlink("new.txt", src / "link")


def test_a_diff_stores_what_changed_and_restores_the_tree_of_its_time(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    first = tree(source)
    change(source)
    r = backup(cli, source, dest)
    assert "a diff of set" in r.out
    full, diff = sets(dest)
    assert full.base is None and full.format == "offsite-manifest/3"
    assert full.entries[0].delta == "full" and full.entries[0].companion("index")
    raw = (dest / full.id / "manifest.json").read_bytes()
    assert diff.base is not None and diff.base.id == full.id
    assert diff.base.manifest_sha256 == hashlib.sha256(raw).hexdigest()
    entry = diff.entries[0]
    assert entry.delta == "diff" and entry.companion("deleted") is not None
    assert entry.raw_size < 50_000  # not the 200 kB file that did not change
    assert entry.stats["deleted"] == 2  # docs/old (once, whole) and becomes-dir (retyped)
    assert cli("restore", dest, "--into", tmp_path / "latest").code == 0
    assert tree(tmp_path / "latest") == tree(source)
    assert cli("restore", dest, "--id", full.id, "--into", tmp_path / "first").code == 0
    assert tree(tmp_path / "first") == first
    listed = cli("list", dest).out
    assert f"diff of {full.id}" in listed and "full" in listed
    assert json.loads(cli("list", dest, "--json").out)["sets"][1]["delta"] == "diff"
    r = cli("verify", dest, "--all", "--read-data")
    assert r.code == 0, r.out + r.err


def test_a_fresh_checkout_with_new_mtimes_and_the_same_content_stores_nothing(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    for path in source.rglob("*"):  # every mtime new, as a fresh clone of the same commit
        os.utime(path, follow_symlinks=False)
    backup(cli, source, dest)
    diff = sets(dest)[1].entries[0]
    assert diff.delta == "diff" and diff.stats["deleted"] == 0
    assert diff.raw_size < 20_000  # the folders' and the link's headers: no file's bytes
    assert cli("restore", dest, "--into", tmp_path / "out").code == 0
    assert tree(tmp_path / "out") == tree(source)
    restored, original = (
        p.stat().st_mtime_ns for p in (tmp_path / "out" / "docs", source / "docs")
    )
    assert abs(restored - original) < 1_000_000  # a folder's mtime, as tar keeps it


def test_a_tree_that_did_not_change_at_all_is_an_unchanged_entry(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    time.sleep(1.1)  # its files older than the base run's start, as they would be
    backup(cli, source, dest)
    time.sleep(1.1)
    backup(cli, source, dest)
    diff = sets(dest)[2]
    assert diff.base is not None and diff.base.id == sets(dest)[0].id
    assert diff.entries[0].delta == "unchanged" and diff.entries[0].file == ""
    assert sorted(p.name for p in (dest / diff.id).iterdir()) == [
        ".offsite-set", "key.gpg", "manifest.json"
    ]  # fmt: skip
    assert cli("restore", dest, "--into", tmp_path / "out").code == 0
    assert tree(tmp_path / "out") == tree(source)


def test_a_file_changed_in_the_second_of_its_base_is_read_again(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    """Size and mtime equal to the index, but not older than the base run's start: read."""
    dest = tmp_path / "dest"
    target = source / "change.txt"
    backup(cli, source, dest)
    started = datetime.fromisoformat(sets(dest)[0].created_at.replace("Z", "+00:00"))
    stamp = int(started.timestamp()) * 10**9 + 500_000_000  # within the base's first second
    os.utime(target, ns=(stamp, stamp))
    backup(cli, source, dest)  # the index now holds this mtime, taken at that second
    target.write_text("BEFORE\n")  # the same size, the same mtime: only its content moved
    os.utime(target, ns=(stamp, stamp))
    backup(cli, source, dest)
    assert cli("restore", dest, "--into", tmp_path / "out").code == 0
    assert (tmp_path / "out" / "change.txt").read_text() == "BEFORE\n"


def test_a_run_turns_full_when_its_diff_is_too_large_or_its_base_too_old(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    (source / "big.bin").write_bytes(os.urandom(200_000))
    r = backup(cli, source, dest)
    assert "over 50% of its base" in r.err and "a full run" in r.out
    time.sleep(1.1)
    r = backup(cli, source, dest, "--full-after", "1s")
    assert "is older than 0:00:01 (--full-after)" in r.out
    assert [m.base for m in sets(dest)] == [None, None, None]
    (source / "new.txt").write_text("small\n")
    backup(cli, source, dest)
    assert sets(dest)[-1].base is not None


def test_without_incremental_a_files_backup_is_as_before(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", source, "--to", dest).code == 0
    only = sets(dest)[0]
    assert only.format == "offsite-manifest/2" and only.entries[0].companions == ()


# -- chains: a diff without its base ------------------------------------------------------
@pytest.fixture
def chain(cli, passphrase: str, source: Path, tmp_path: Path) -> tuple[Path, str, str]:
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    change(source)
    backup(cli, source, dest)
    full, diff = sets(dest)
    return dest, full.id, diff.id


def test_a_diff_whose_base_is_gone_is_no_restore_point(cli, chain, tmp_path: Path) -> None:
    dest, base, diff = chain
    older = tmp_path / "older"
    older.mkdir()
    shutil.move(dest / base, older / base)
    r = cli("restore", dest, "--id", diff, "--into", tmp_path / "out")
    assert r.code == 1 and f"set {diff} is a diff of set {base}, which" in r.err
    assert not (tmp_path / "out").exists()
    r = cli("verify", dest, "--id", diff)
    assert r.code == 1 and "(base)" in r.out
    r = cli("restore", dest, "--into", tmp_path / "out")  # the latest: none is left
    assert r.code == 1 and "is not there" in r.err
    r = cli("prune", dest, "--keep-last", "5")
    assert r.code == 0 and f"removed set {diff} is a diff of set {base}" in r.err
    assert not (dest / diff).exists()


@pytest.mark.parametrize("encrypted", [True, False])
def test_a_base_swapped_under_its_id_breaks_the_chain(
    cli, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encrypted: bool
) -> None:
    """Another real set moved under the base's id: encrypted, its auth no longer holds;
    unencrypted (no auth to break), its manifest is not the one the diff names."""
    if encrypted:
        monkeypatch.setenv("OFFSITE_PASSPHRASE", "pass")
    plain = () if encrypted else ("--no-encrypt",)
    dest, other = tmp_path / "dest", tmp_path / "other"
    backup(cli, source, dest, *plain)
    change(source)
    backup(cli, source, dest, *plain)
    base, diff = (m.id for m in sets(dest))
    (source / "new.txt").write_text("another tree\n")
    backup(cli, source, other, *plain)
    made = sets(other)[0].id
    shutil.rmtree(dest / base)
    shutil.copytree(other / made, dest / base)
    text = (dest / base / "manifest.json").read_text().replace(made, base)
    (dest / base / "manifest.json").write_text(text)
    r = cli("restore", dest, "--id", diff, "--into", tmp_path / "out")
    # encrypted, made in another second: its auth breaks; in the same second (its id is the
    # base's already): it proves itself, and is not the manifest the diff names
    whys = ["another manifest than the diff names", "does not prove it was made"]
    assert r.code == 1 and f"is a diff of set {base}" in r.err
    assert any(why in r.err for why in (whys if encrypted else whys[:1]))
    assert not (tmp_path / "out").exists()


def test_a_diff_naming_another_base_fails_its_auth(cli, chain, tmp_path: Path) -> None:
    dest, _base, diff = chain
    path = dest / diff / "manifest.json"
    data = json.loads(path.read_text())
    data["base"]["manifest_sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    r = cli("restore", dest, "--id", diff, "--into", tmp_path / "out")
    assert r.code == 1 and "does not prove it was made with your key" in r.err
    r = cli("restore", dest, "--into", tmp_path / "out")  # the latest passes over it
    assert r.code == 0 and f"passing over set {diff}" in r.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[:2] == ["becomes-dir", "big.bin"]


def test_a_diff_downloaded_without_its_base_names_the_artifact(cli, chain, tmp_path: Path) -> None:
    dest, base, diff = chain
    r = cli("restore", dest / diff, "--into", tmp_path / "out")
    assert r.code == 1 and f"download the artifact backup-{base} beside it" in r.err
    both = tmp_path / "download"  # `gh run download` without -n: a folder per artifact
    shutil.copytree(dest / base, both / f"backup-{base}")
    shutil.copytree(dest / diff, both / f"backup-{diff}")
    assert cli("restore", both, "--into", tmp_path / "out").code == 0


def test_copy_takes_a_diffs_base_first(cli, chain, source: Path, tmp_path: Path) -> None:
    dest, base, diff = chain
    r = cli("copy", dest, "--id", diff, "--to", tmp_path / "copy")
    assert r.code == 0, r.err
    assert sorted(m.id for m in sets(tmp_path / "copy")) == [base, diff]
    assert cli("restore", tmp_path / "copy", "--into", tmp_path / "out").code == 0
    assert tree(tmp_path / "out") == tree(source)


def test_prune_keeps_the_base_of_a_kept_diff(cli, chain, tmp_path: Path) -> None:
    dest, base, diff = chain
    r = cli("prune", dest, "--keep-last", "1", "--json")
    assert r.code == 0, r.err
    reasons = {s["id"]: s["reasons"] for s in json.loads(r.out)["sets"]}
    assert reasons == {diff: ["last 1/1"], base: [f"base of {diff}"]}
    assert (dest / base / "manifest.json").exists()


# -- hostile deleted lists ----------------------------------------------------------------
def _plant_deleted(dest: Path, diff: str, paths: list[str]) -> None:
    """Rewrite an unencrypted diff's deleted list, and its manifest to match (what anyone
    who can write to the destination can do to a set that carries no auth)."""
    data = zstandard.ZstdCompressor().compress("\0".join(paths).encode())
    manifest = json.loads((dest / diff / "manifest.json").read_text())
    companion = manifest["entries"][0]["companions"][0]
    assert companion["role"] == "deleted"
    (dest / diff / companion["file"]).write_bytes(data)
    companion.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (dest / diff / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "planted",
    [["../outside/victim.txt"], ["/abs/victim.txt"], ["escape/victim.txt"], ["."]],
    ids=["climbing", "absolute", "through-a-symlink", "the-target"],
)
def test_a_deleted_list_cannot_remove_outside_the_target(
    cli, source: Path, tmp_path: Path, planted: list[str]
) -> None:
    victim_dir = tmp_path / "outside"
    victim_dir.mkdir()
    (victim_dir / "victim.txt").write_text("precious\n")
    os.symlink(victim_dir, source / "escape")
    dest = tmp_path / "dest"
    backup(cli, source, dest, "--no-encrypt")
    (source / "change.txt").unlink()
    backup(cli, source, dest, "--no-encrypt")
    diff = sets(dest)[1].id
    planted = [p.replace("/abs", str(victim_dir)) if p.startswith("/abs") else p
               for p in planted]  # fmt: skip
    _plant_deleted(dest, diff, planted)
    out = tmp_path / "restored" / "out"
    r = cli("restore", dest, "--into", out)
    assert r.code == 1 and "refusing the archive member '(deleted)" in r.err
    assert (victim_dir / "victim.txt").read_text() == "precious\n"
    assert not out.exists()


# -- after a hostile review -----------------------------------------------------------------
def test_a_diff_goes_into_a_read_only_folder_and_folders_keep_their_mtimes(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    """A file edited inside a 0555 folder (a module cache) restores without the rights of
    root too, and a folder whose listing did not change keeps its mtime."""
    locked = source / "locked"
    locked.mkdir()
    (locked / "f").write_text("one\n")
    locked.chmod(0o555)
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    locked.chmod(0o755)
    (locked / "f").write_text("two, longer\n")
    locked.chmod(0o555)
    os.utime(locked, ns=(1_600_000_000_000_000_000,) * 2)  # the folder's own: unchanged
    backup(cli, source, dest)
    out = tmp_path / "restored" / "out"
    if os.geteuid() == 0 and shutil.which("setpriv"):  # without CAP_DAC_OVERRIDE
        run = subprocess.run(["setpriv", "--bounding-set=-all", sys.executable, "-m", "offsite",
                              "restore", str(dest), "--into", str(out)],
                             capture_output=True, text=True, env=os.environ)  # fmt: skip
        assert run.returncode == 0, run.stderr
    else:
        assert cli("restore", dest, "--into", out).code == 0
    assert tree(out) == tree(source)
    assert abs((out / "locked").stat().st_mtime_ns - locked.stat().st_mtime_ns) < 1_000_000


def test_a_new_hardlink_to_an_unchanged_file_stays_a_link(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    os.link(source / "keep.txt", source / "also-keep.txt")
    backup(cli, source, dest)
    assert cli("restore", dest, "--into", tmp_path / "out").code == 0
    first, second = (tmp_path / "out" / n for n in ("keep.txt", "also-keep.txt"))
    assert first.stat().st_ino == second.stat().st_ino and first.read_text() == "kept\n"


def test_an_unreadable_base_index_makes_the_run_full_not_failed(
    cli, source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    backup(cli, source, dest, "--no-encrypt")
    full = sets(dest)[0]
    index = full.entries[0].companion("index")
    assert index is not None
    data = zstandard.ZstdCompressor().compress(b"not an index\n")
    (dest / full.id / index.file).write_bytes(data)
    doc = json.loads((dest / full.id / "manifest.json").read_text())
    doc["entries"][0]["companions"][0].update(
        size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    (dest / full.id / "manifest.json").write_text(json.dumps(doc))
    r = backup(cli, source, dest, "--no-encrypt")
    assert "is not readable" in r.err and sets(dest)[-1].base is None


def test_a_signed_run_never_takes_an_unsigned_set_for_its_base(
    cli, source: Path, tmp_path: Path, with_keyring
) -> None:  # type: ignore[no-untyped-def]
    dest, fpr = tmp_path / "dest", with_keyring.fingerprint
    backup(cli, source, dest, "--no-encrypt", "--sign-key", fpr)
    signed = sets(dest)[0].id
    time.sleep(1.1)
    backup(cli, source, dest, "--no-encrypt")  # newer, unsigned: anyone could have put it
    (source / "new.txt").write_text("new\n")
    backup(cli, source, dest, "--no-encrypt", "--sign-key", fpr)
    newest = sets(dest)[-1]
    assert newest.base is not None and newest.base.id == signed


def test_a_broken_diff_only_a_flag_lets_in_is_passed_over_too(
    cli, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", source, "--no-encrypt", "--to", dest).code == 0  # an older full
    older = sets(dest)[0].id
    time.sleep(1.1)
    backup(cli, source, dest, "--no-encrypt")
    change(source)
    backup(cli, source, dest, "--no-encrypt")
    _, base, diff = (m.id for m in sets(dest))
    shutil.rmtree(dest / base)
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "a key is configured")
    r = cli("restore", dest, "--into", tmp_path / "out", "--allow-unencrypted")
    assert r.code == 0, r.err
    assert f"restored set {older}" in r.out and f"passing over set {diff}" in r.err


def test_a_folder_replaced_by_a_symlink_never_carries_a_mode_out_of_the_target(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    """The base's d/sub (0700, old) gets its mode and mtime back only where d is still a
    folder: d is now a symlink to a folder outside, whose sub must stay as it is."""
    sub = source / "d" / "sub"
    sub.mkdir(parents=True)
    sub.chmod(0o700)
    os.utime(sub, ns=(10**18, 10**18))
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    (elsewhere / "sub").chmod(0o755)
    before = (elsewhere / "sub").stat()
    shutil.rmtree(source / "d")
    os.symlink(elsewhere, source / "d")
    backup(cli, source, dest)
    assert cli("restore", dest, "--into", tmp_path / "out").code == 0
    after = (elsewhere / "sub").stat()
    assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)
    assert tree(tmp_path / "out") == tree(source)


def test_a_base_index_gone_or_damaged_makes_the_run_full(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    backup(cli, source, dest)
    full = sets(dest)[0]
    index = full.entries[0].companion("index")
    assert index is not None
    (dest / full.id / index.file).unlink()  # anyone who can delete an object can do this
    r = backup(cli, source, dest)
    assert "cannot be read" in r.err and sets(dest)[-1].base is None


def test_restore_force_over_a_folder_from_a_read_only_tree(
    cli, passphrase: str, source: Path, tmp_path: Path
) -> None:
    """A tree whose top folder is 0555, restored with --force into a folder that holds
    files, without root's rights: every file comes back, none is lost on the way."""
    (source / "ro").mkdir()
    (source / "ro" / "f").write_text("in a read-only folder\n")
    (source / "ro").chmod(0o555)
    source.chmod(0o555)
    dest = tmp_path / "dest"
    try:
        backup(cli, source, dest)
    finally:
        source.chmod(0o755)
    target = tmp_path / "restored" / "out"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("the user's, replaced by the backup's\n")
    argv = ["restore", str(dest), "--into", str(target), "--force"]
    if os.geteuid() == 0 and shutil.which("setpriv"):  # without CAP_DAC_OVERRIDE
        run = subprocess.run(["setpriv", "--bounding-set=-all", sys.executable, "-m", "offsite",
                              *argv], capture_output=True, text=True, env=os.environ)  # fmt: skip
        assert run.returncode == 0, run.stderr
    else:
        assert cli(*argv).code == 0
    assert (target / "keep.txt").read_text() == "kept\n"
    assert (target / "ro" / "f").read_text() == "in a read-only folder\n"


def test_the_latest_set_of_an_entry_is_the_newest_that_holds_it(
    cli, passphrase: str, tmp_path: Path, source: Path
) -> None:
    """The hourly sets hold the files alone: --entry of the database takes the night's."""
    import sqlite3

    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (x)")
        conn.execute("insert into t values (42)")
    dest = tmp_path / "sets"
    assert cli("backup", "--name", f"app=sqlite:///{db}", source, "--to", dest,
               "--incremental").code == 0  # fmt: skip
    (source / "hourly.txt").write_text("an hour later\n")
    assert cli("backup", source, "--to", dest, "--incremental").code == 0
    nightly, hourly = sets(dest)
    assert hourly.entry("app") is None and hourly.base is not None
    r = cli("restore", dest, "--entry", "app", "--into", tmp_path / "back.db")
    assert r.code == 0, r.err
    assert nightly.id in r.out + r.err
    with sqlite3.connect(tmp_path / "back.db") as conn:
        assert conn.execute("select x from t").fetchall() == [(42,)]
    r = cli("drill", dest, "--entry", "src", "--into", tmp_path / "scratch", "--json")
    assert r.code == 0, r.out + r.err
    assert json.loads(r.out)["set_id"] == hourly.id  # the newest diff, with its base
    r = cli("restore", dest, "--entry", "nothing", "--into", tmp_path / "x")
    assert r.code == 2 and "nothing" in r.err and "src" in r.err


def test_a_run_for_recipients_diffs_against_the_indexes_its_cache_kept(
    cli, tmp_path: Path, source: Path, with_keyring
) -> None:
    """The backup host holds no secret key: it cannot read its base's index back. With
    --index-cache it keeps them (under the base manifest's SHA-256): a set planted at the
    destination, whose manifest the cache does not know, is never its base."""
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    key = str(with_keyring.public_key_file)
    assert cli("backup", source, "--to", dest, "--recipient", key, "--incremental").code == 0
    r = cli("backup", source, "--to", dest, "--recipient", key, "--incremental")
    assert r.code == 0 and "--index-cache" in r.out  # full, saying how a diff could be
    args = ("--to", dest, "--recipient", key, "--incremental", "--index-cache", cache)
    assert cli("backup", source, *args).code == 0
    full = sets(dest)[-1]
    assert full.base is None and len([p for p in cache.iterdir() if p.is_dir()]) == 1

    planted = tmp_path / "planted"  # a newer full set with an index, made by another
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "keep.txt").write_text("not yours\n")
    time.sleep(1.1)  # a set id of a later second: newer than the full set
    assert cli("backup", "--name", f"src={evil}", "--to", planted, "--recipient", key,
               "--incremental").code == 0  # fmt: skip
    for folder in planted.iterdir():
        shutil.copytree(folder, dest / folder.name)

    (source / "change.txt").write_text("after\n")
    assert cli("backup", source, *args).code == 0
    diff = sets(dest)[-1]
    assert diff.base is not None and diff.base.id == full.id
    assert diff.entries[0].delta == "diff"
    r = cli("restore", dest, "--id", diff.id, "--into", tmp_path / "back")
    assert r.code == 0, r.err
    assert tree(tmp_path / "back") == tree(source)


def test_a_planted_set_holding_an_entry_no_set_of_yours_holds_is_not_taken(
    cli, passphrase: str, tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--entry takes the newest set holding it among those that prove themselves; a set
    only --allow-unencrypted lets in is taken only where no set at all proves itself."""
    import sqlite3

    dest = tmp_path / "sets"
    assert cli("backup", source, "--to", dest).code == 0  # yours: the files alone
    evil = tmp_path / "evil.db"
    with sqlite3.connect(evil) as conn:
        conn.execute("create table pwn (x)")
    time.sleep(1.1)
    monkeypatch.delenv("OFFSITE_PASSPHRASE")
    assert cli("backup", "--name", f"app=sqlite:///{evil}", "--to", dest, "--no-encrypt").code == 0
    monkeypatch.setenv("OFFSITE_PASSPHRASE", passphrase)
    r = cli("restore", dest, "--entry", "app", "--into", tmp_path / "out.db",
            "--allow-unencrypted")  # fmt: skip
    assert r.code == 2 and "no entry 'app'" in r.err, r.err
    assert not (tmp_path / "out.db").exists()


def test_a_poisoned_index_cache_is_read_from_the_destination_instead(
    cli, passphrase: str, tmp_path: Path, source: Path
) -> None:
    """Whoever writes the cache (actions/cache) cannot make a diff leave a file out: each
    cached index is checked against the SHA-256 the base's proven manifest records."""
    dest, cache = tmp_path / "sets", tmp_path / "cache"
    args = ("--to", dest, "--incremental", "--index-cache", cache)
    assert cli("backup", source, *args).code == 0
    full = sets(dest)[-1]
    assert all(c.raw_sha256 for e in full.entries for c in e.companions)
    (index,) = cache.glob("*/*.index")
    new = source / "precious.txt"
    new.write_text("new and precious\n")
    st = new.lstat()
    digest = hashlib.sha256(new.read_bytes()).hexdigest()
    with open(index, "ab") as fh:  # "precious.txt is in the base already, unchanged"
        fh.write(json.dumps(["precious.txt", "f", st.st_size, st.st_mtime_ns, st.st_mode & 0o7777,
                             st.st_uid, st.st_gid, digest, ""]).encode() + b"\n")  # fmt: skip
    r = cli("backup", source, *args)
    assert r.code == 0 and "is not the one set" in r.err, r.err
    assert cli("restore", dest, "--into", tmp_path / "back").code == 0
    assert tree(tmp_path / "back") == tree(source)
    (tmp_path / "a-file").write_text("")
    r = cli("backup", source, "--incremental", "--to", dest, "--index-cache", tmp_path / "a-file")
    assert r.code == 2 and "--index-cache" in r.err
