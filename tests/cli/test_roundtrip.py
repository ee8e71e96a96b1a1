"""backup → restore gives back identical data, encrypted by passphrase and by public key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Keyring, only_set, sqlite_content, tree_content


def _encryption_args(mode: str, keyring: Keyring) -> list[str]:
    if mode == "passphrase":
        return []
    if mode == "key-file":
        return ["--recipient", str(keyring.public_key_file)]
    return ["--recipient", keyring.fingerprint]


@pytest.mark.parametrize("mode", ["passphrase", "key-file", "fingerprint"])
def test_sqlite_and_folder_round_trip(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, passphrase: str, with_keyring: Keyring, mode
) -> None:
    dest = tmp_path / "backups"
    # a set made for recipients proves itself by a signature (SPEC §2)
    sign = ["--sign-key", with_keyring.fingerprint] if mode != "passphrase" else []
    trust = ["--trust-key", with_keyring.fingerprint] if mode != "passphrase" else []
    r = cli(
        "backup", f"sqlite://{sqlite_db}", tree, "--to", dest,
        *_encryption_args(mode, with_keyring), *sign,
    )  # fmt: skip
    assert r.code == 0, r.err

    r = cli("restore", dest, "--into", tmp_path / "restored", *trust)
    assert r.code == 0, r.err
    assert sqlite_content(tmp_path / "restored" / "app.sqlite") == sqlite_content(sqlite_db)
    assert tree_content(tmp_path / "restored" / "files") == tree_content(tree)

    manifest = json.loads((only_set(dest) / "manifest.json").read_text())
    modes = {e["encryption"]["mode"] for e in manifest["entries"]}
    assert modes == {"set-key"} and manifest["format"] == "offsite-manifest/2"
    assert manifest["auth"]["alg"] == "HMAC-SHA256" and (only_set(dest) / "key.gpg").is_file()
    assert (only_set(dest) / "manifest.json.sig").is_file() == (mode != "passphrase")
    if mode != "passphrase":
        assert manifest["entries"][0]["encryption"]["recipients"] == [with_keyring.fingerprint]
    assert passphrase not in json.dumps(manifest)


@pytest.mark.parametrize("compress", ["zstd", "gzip", "none"])
def test_compressions_round_trip(
    cli, tmp_path: Path, tree: Path, passphrase: str, compress
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", tree, "--to", dest, "--compress", compress).code == 0
    stored = next(
        p.name
        for p in only_set(dest).iterdir()
        if p.name not in ("manifest.json", "key.gpg", ".offsite-set")
    )
    assert (
        stored
        == {"zstd": "files.tar.zst.gpg", "gzip": "files.tar.gz.gpg", "none": "files.tar.gpg"}[
            compress
        ]
    )
    assert cli("restore", dest, "--into", tmp_path / "out").code == 0
    assert tree_content(tmp_path / "out") == tree_content(tree)


def test_unencrypted_single_entry_into_target(cli, tmp_path: Path, sqlite_db: Path) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", f"sqlite:{sqlite_db}", "--to", dest, "--no-encrypt").code == 0
    target = tmp_path / "restored.db"
    r = cli("restore", dest, "--latest", "--into", f"sqlite://{target}")
    assert r.code == 0, r.err
    assert sqlite_content(target) == sqlite_content(sqlite_db)


def test_exec_output_round_trip(cli, tmp_path: Path, passphrase: str) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", "--exec", "numbers=seq 1 100000", "--to", dest)
    assert r.code == 0, r.err
    assert cli("restore", dest, "--into", tmp_path / "numbers.txt").code == 0
    lines = (tmp_path / "numbers.txt").read_text().split()
    assert lines == [str(i) for i in range(1, 100001)]
    manifest = json.loads((only_set(dest) / "manifest.json").read_text())
    assert (
        manifest["entries"][0]["source"] == "exec:seq"
    )  # the command line itself may hold secrets


def test_one_entry_of_several_and_force(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, passphrase
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", f"sqlite:{sqlite_db}", tree, "--to", dest).code == 0
    target = tmp_path / "only-files"
    assert cli("restore", dest, "--entry", "files", "--into", target).code == 0
    assert tree_content(target) == tree_content(tree)

    (target / "nested" / "notes.txt").write_text("changed")
    (target / "extra").write_text("kept")
    assert cli("restore", dest, "--entry", "files", "--into", target).code == 2
    assert (target / "nested" / "notes.txt").read_text() == "changed"
    assert cli("restore", dest, "--entry", "files", "--into", target, "--force").code == 0
    restored = tree_content(target)
    assert restored.pop("extra")[0] == "file"  # --force restores over, it does not wipe
    assert restored == tree_content(tree)


def test_exclude_patterns(cli, tmp_path: Path, tree: Path) -> None:
    dest = tmp_path / "backups"
    r = cli(
        "backup",
        tree,
        "--to",
        dest,
        "--no-encrypt",
        "--exclude",
        "*.bin",
        "--exclude",
        "nested/notes.txt",
    )
    assert r.code == 0, r.err
    assert cli("restore", dest, "--into", tmp_path / "out").code == 0
    restored = tree_content(tmp_path / "out")
    assert "nested/deeper/deepest/data.bin" not in restored
    assert "nested/notes.txt" not in restored
    assert "nested/private.key" in restored


def test_destination_inside_source_is_not_archived(cli, tmp_path: Path, tree: Path) -> None:
    dest = tree / "backups"
    assert cli("backup", tree, "--to", dest, "--no-encrypt").code == 0
    assert cli("backup", tree, "--to", dest, "--no-encrypt").code == 0
    assert cli("restore", dest, "--into", tmp_path / "out").code == 0
    assert not (tmp_path / "out" / "backups").exists()


def test_several_destinations_get_identical_bytes(
    cli, tmp_path: Path, tree: Path, passphrase
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("backup", tree, "--to", a, "--to", f"file://{b}").code == 0
    set_a, set_b = only_set(a), only_set(b)
    assert set_a.name == set_b.name
    for name in ("files.tar.zst.gpg", "manifest.json"):
        assert (set_a / name).read_bytes() == (set_b / name).read_bytes()


def test_gh_run_download_folder_restores(cli, tmp_path: Path, tree: Path, passphrase) -> None:
    """`gh run download -n backup-<id> -D out` leaves the set's files at out/'s root."""
    dest = tmp_path / "backups"
    assert cli("backup", tree, "--to", dest).code == 0
    downloaded = only_set(dest)  # a folder with manifest.json at its root
    assert cli("verify", downloaded, "--read-data").code == 0
    assert cli("restore", downloaded, "--into", tmp_path / "out").code == 0
    assert tree_content(tmp_path / "out") == tree_content(tree)


def test_drill_of_sqlite_and_files(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", f"sqlite:{sqlite_db}", tree, "--to", dest).code == 0
    r = cli("drill", dest, "--into", tmp_path / "scratch", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    checks = {e["entry"]: e["checks"] for e in report["entries"]}
    assert checks == {
        "app": ["rows per table", "PRAGMA integrity_check"],
        "files": ["files and bytes"],
    }
    assert report["restore_seconds"] > 0

    # A restored folder that lost a file fails the drill.
    manifest = only_set(dest) / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["entries"][1]["stats"]["files"] += 1
    manifest.write_text(json.dumps(doc))
    r = cli("drill", dest, "--into", tmp_path / "scratch2")  # the edit breaks the auth
    assert r.code == 1 and "its manifest does not match its auth" in r.err
    r = cli("drill", dest, "--into", tmp_path / "scratch3", "--allow-unauthenticated")
    assert r.code == 1
    assert "files: manifest says" in r.err


def test_whole_set_restore_needs_force_over_a_folder_and_names_what_it_restored(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", f"sqlite:{sqlite_db}", tree, "--to", dest).code == 0
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    r = cli("restore", dest, "--into", busy)
    assert r.code == 2 and "is not empty; pass --force" in r.err
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    manifest = json.loads((only_set(dest) / "manifest.json").read_text())
    second = only_set(dest) / manifest["entries"][1]["file"]
    data = bytearray(second.read_bytes())
    data[-10] ^= 1
    second.write_bytes(bytes(data))
    r = cli("restore", dest, "--into", tmp_path / "fresh")
    assert r.code == 1 and "checksum mismatch" in r.err
    first = manifest["entries"][0]["name"]
    assert f"restored before the failure, and left in place: {first} (" in r.err
