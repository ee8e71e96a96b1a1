"""``wal push`` and ``wal fetch`` as PostgreSQL runs them: in a data directory, with the
exit codes recovery depends on (SPEC §8). The data directory here is a stand-in with a
``global/pg_control`` (its first field is the system identifier); tests/db/test_pitr.py
runs them under a real server."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from pathlib import Path

import pytest

from tests.walfiles import segment

SEGMENT = "000000010000000000000003"


def datadir(root: Path, system_id: int) -> Path:
    folder = root / f"data-{system_id}"
    (folder / "global").mkdir(parents=True)
    (folder / "pg_wal").mkdir()
    (folder / "global" / "pg_control").write_bytes(struct.pack("<Q", system_id) + bytes(100))
    return folder


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passphrase: str) -> Path:
    """A data directory as the current folder (PostgreSQL runs the commands there), with
    one segment of WAL-like bytes in pg_wal/."""
    folder = datadir(tmp_path, 7312345678901234567)
    (folder / "pg_wal" / SEGMENT).write_bytes(segment(SEGMENT, 7312345678901234567))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return folder


def push(cli, dest: Path, name: str = SEGMENT, *extra: str):  # type: ignore[no-untyped-def]
    return cli("wal", "push", f"pg_wal/{name}", "--to", dest, *extra)


def fetch(cli, dest: Path, name: str = SEGMENT, *extra: str):  # type: ignore[no-untyped-def]
    return cli("wal", "fetch", name, "pg_wal/RECOVERYXLOG", "--from", dest, *extra)


def test_pushed_then_fetched_byte_for_byte(cli, tmp_path: Path, cluster: Path) -> None:
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    stored = sorted(p.name for p in (dest / "wal" / "7312345678901234567").iterdir())
    assert stored == [f"{SEGMENT}.zst.gpg", "key.gpg"]
    r = fetch(cli, dest)
    assert r.code == 0, r.err
    assert (cluster / "pg_wal" / "RECOVERYXLOG").read_bytes() == (
        cluster / "pg_wal" / SEGMENT
    ).read_bytes()


def test_the_archive_key_is_unwrapped_once_and_kept_in_a_private_file(
    cli, tmp_path: Path, cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    kept = sorted((tmp_path / "cache" / "offsite" / "keys").iterdir())
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in kept)
    (cached,) = [p for p in kept if not p.name.startswith("wal-archive-")]  # by its key.gpg
    (pinned,) = [p for p in kept if p.name.startswith("wal-archive-")]  # by archive: pushes
    pinned.unlink()
    monkeypatch.delenv("OFFSITE_PASSPHRASE")
    assert fetch(cli, dest).code == 0  # the key kept on this host is enough
    cached.chmod(0o644)  # a key file others can read is not taken as ours
    r = fetch(cli, dest)
    assert r.code == 2 and "give its passphrase" in r.err


def test_the_same_file_again_is_success_other_content_is_refused(
    cli, tmp_path: Path, cluster: Path
) -> None:
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    assert push(cli, dest).code == 0  # PostgreSQL retries what it did not see succeed
    (cluster / "pg_wal" / SEGMENT).write_bytes(segment(SEGMENT, 7312345678901234567, b"other"))
    r = push(cli, dest)
    assert r.code == 1 and "refusing to overwrite" in r.err
    assert fetch(cli, dest).code == 0
    assert (cluster / "pg_wal" / "RECOVERYXLOG").read_bytes() != b"other content"


def test_fetch_tells_missing_from_corrupt(cli, tmp_path: Path, cluster: Path) -> None:
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    r = fetch(cli, dest, "000000010000000000000009")
    assert r.code == 1 and "not in the archive" in r.err
    # the end of recovery, every time a restore ends (a timeline's .history asked for
    # too): said, never logged as an error
    assert "error" not in r.err
    stored = dest / "wal" / "7312345678901234567" / f"{SEGMENT}.zst.gpg"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    r = fetch(cli, dest)
    assert r.code == 3 and "corrupt" in r.err
    assert not (cluster / "pg_wal" / "RECOVERYXLOG").exists()


def test_a_planted_file_is_never_replayed(cli, tmp_path: Path, cluster: Path) -> None:
    """Someone who can write to the destination but has no key: a plain packet in place of
    the encrypted file (gpg would print it as if decrypted), or the key deleted and plain
    files put beside it."""
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    folder = dest / "wal" / "7312345678901234567"
    plain = subprocess.run(["zstd", "-q", "-c", f"pg_wal/{SEGMENT}"], capture_output=True,
                           check=True).stdout  # fmt: skip
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    stored = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--store", "-o", "-"],
                            input=plain, capture_output=True, check=True).stdout  # fmt: skip
    (folder / f"{SEGMENT}.zst.gpg").write_bytes(stored)
    assert fetch(cli, dest).code == 3
    (folder / "key.gpg").unlink()
    (folder / f"{SEGMENT}.zst.gpg").unlink()
    (folder / f"{SEGMENT}.zst").write_bytes(plain)
    r = fetch(cli, dest)
    assert r.code == 3 and "key.gpg is gone" in r.err
    os.environ.pop("OFFSITE_PASSPHRASE")  # no passphrase, the key cached: still refused
    assert fetch(cli, dest).code == 3
    assert not (cluster / "pg_wal" / "RECOVERYXLOG").exists()


def test_a_stored_file_under_another_name_or_key_is_refused(
    cli, tmp_path: Path, cluster: Path
) -> None:
    """A valid encrypted file copied under the next segment's name would be replayed as
    that segment; a key.gpg swapped for one the restore did not see would decrypt files
    someone else made."""
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    folder = dest / "wal" / "7312345678901234567"
    nxt = "000000010000000000000004"
    (folder / f"{nxt}.zst.gpg").write_bytes((folder / f"{SEGMENT}.zst.gpg").read_bytes())
    r = fetch(cli, dest, nxt)
    assert r.code == 3 and f"it is {SEGMENT}" in r.err
    pinned = hashlib.sha256((folder / "key.gpg").read_bytes()).hexdigest()
    assert fetch(cli, dest, SEGMENT, "--key-sha256", pinned).code == 0
    r = fetch(cli, dest, SEGMENT, "--key-sha256", "0" * 64)
    assert r.code == 3 and "not the one the restore saw" in r.err
    r = fetch(cli, dest, SEGMENT, "--no-encrypt")
    assert r.code == 3 and "unencrypted archive holds a key.gpg" in r.err


def test_two_clusters_never_mix(cli, tmp_path: Path, cluster: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    other = datadir(tmp_path, 42)
    monkeypatch.chdir(other)
    assert fetch(cli, dest).code == 1  # the other cluster's file is not this one's
    (other / "pg_wal" / SEGMENT).write_bytes(segment(SEGMENT, 42, b"the other cluster's wal"))
    assert push(cli, dest).code == 0
    assert sorted(p.name for p in (dest / "wal").iterdir()) == ["42", "7312345678901234567"]


def test_names_that_are_not_wal_files_are_refused(cli, tmp_path: Path, cluster: Path) -> None:
    dest = tmp_path / "dest"
    for name in ("../../etc/passwd", "pg_control", f"{SEGMENT}/../x", "00000001.history.x"):
        r = cli("wal", "fetch", name, "pg_wal/RECOVERYXLOG", "--from", dest)
        assert r.code == 2 and "not the name of a WAL file" in r.err, name
    assert not (tmp_path / "dest").exists()


def test_nothing_stored_is_readable_without_the_key(cli, tmp_path: Path, cluster: Path) -> None:
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    marker = b"wal record "
    for path in (dest / "wal").rglob("*"):
        if path.is_file():
            assert marker not in path.read_bytes()
            zstd = subprocess.run(["zstd", "-d", "-c"], input=path.read_bytes(),
                                  capture_output=True)  # fmt: skip
            assert marker not in zstd.stdout


def test_an_archive_for_recipients_is_read_with_their_secret_key(
    cli,
    tmp_path: Path,
    cluster: Path,
    keyring,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """The database host holds only the public key; the restoring host the secret one."""
    dest = tmp_path / "dest"
    monkeypatch.delenv("OFFSITE_PASSPHRASE")
    r = push(cli, dest, SEGMENT, "--recipient", str(keyring.public_key_file), "--no-key-cache")
    assert r.code == 0, r.err
    r = fetch(cli, dest, SEGMENT, "--no-key-cache")
    assert r.code == 2 and "secret key" in r.err  # no passphrase, no secret key here
    monkeypatch.setenv("GNUPGHOME", str(keyring.home))
    r = fetch(cli, dest, SEGMENT, "--no-key-cache")
    assert r.code == 0, r.err
    assert (cluster / "pg_wal" / "RECOVERYXLOG").read_bytes() == (
        cluster / "pg_wal" / SEGMENT
    ).read_bytes()


NOT_THE_NAMED_SEGMENT = [
    pytest.param(
        lambda: os.urandom(2) + bytes(2) + os.urandom((1 << 20) - 4),
        "long page header",
        id="random-bytes",
    ),
    pytest.param(
        lambda: b"\x10\xd1\x02\x00" + os.urandom((1 << 20) - 4),
        "",
        id="random-with-long-header-flag",
    ),
    pytest.param(
        lambda: segment(SEGMENT, SYSTEM_ID, timeline=2), "timeline 2", id="other-timeline"
    ),
    pytest.param(
        lambda: segment(SEGMENT, SYSTEM_ID, address=0), "starts at WAL address", id="other-address"
    ),
    pytest.param(
        lambda: segment(SEGMENT, SYSTEM_ID)[: 1 << 19], "bytes; its header says", id="truncated"
    ),
    pytest.param(lambda: segment(SEGMENT, 42), "belongs to the cluster 42", id="other-cluster"),
    pytest.param(lambda: segment(SEGMENT, SYSTEM_ID, size=3 << 20), "segment size", id="odd-size"),
]
SYSTEM_ID = 7312345678901234567


@pytest.mark.parametrize(("made", "why"), NOT_THE_NAMED_SEGMENT)
def test_a_segment_whose_header_is_not_its_name_is_refused(
    cli, tmp_path: Path, cluster: Path, made, why: str
) -> None:
    """SPEC §8: timeline, page address, size and system identifier must be those the name
    and the data directory say; anything else is exit 2 and nothing is stored."""
    (cluster / "pg_wal" / SEGMENT).write_bytes(made())
    dest = tmp_path / "dest"
    r = push(cli, dest)
    assert r.code == 2 and why in r.err and "Traceback" not in r.err, r.err
    assert not dest.exists() or not list(dest.rglob("*.zst*"))


def test_outside_a_data_directory_the_header_names_the_cluster_once_it_matches(
    cli, tmp_path: Path, passphrase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pushed from anywhere (no pg_control, no --system-id), random bytes carrying the
    long-header flag once made a new "cluster" folder per push; now only a segment whose
    header matches its name is taken, under the cluster it names."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dest = tmp_path / "dest"
    planted = tmp_path / SEGMENT
    planted.write_bytes(b"\x10\xd1\x02\x00" + os.urandom((1 << 20) - 4))
    r = cli("wal", "push", str(planted), "--to", dest)
    assert r.code == 2 and not (dest / "wal").exists(), r.err
    planted.write_bytes(segment(SEGMENT, 99))
    r = cli("wal", "push", str(planted), "--to", dest)
    assert r.code == 0, r.err
    assert sorted(p.name for p in (dest / "wal").iterdir()) == ["99"]


def test_an_unknown_page_magic_is_a_warning_not_a_refusal(
    cli, tmp_path: Path, cluster: Path
) -> None:
    """A newer server's WAL must never stall archiving on offsite's list of magics."""
    (cluster / "pg_wal" / SEGMENT).write_bytes(segment(SEGMENT, SYSTEM_ID, magic=0xD1FF))
    dest = tmp_path / "dest"
    r = push(cli, dest)
    assert r.code == 0, r.err
    assert "page magic 0xd1ff" in r.err
    assert fetch(cli, dest).code == 0


@pytest.mark.parametrize("planted", ["junk", "another-segment"])
def test_a_planted_next_segment_never_stalls_archiving(
    cli, tmp_path: Path, cluster: Path, planted: str
) -> None:
    """SPEC §8: junk (or a real stored file copied) under the next segment's name made
    every archive_command fail until pg_wal filled the disk. The file goes beside it, and
    fetch takes the one that authenticates."""
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    folder = dest / "wal" / str(SYSTEM_ID)
    nxt = "000000010000000000000004"
    planted_bytes = b"junk\n" if planted == "junk" else (folder / f"{SEGMENT}.zst.gpg").read_bytes()
    (folder / f"{nxt}.zst.gpg").write_bytes(planted_bytes)
    (cluster / "pg_wal" / nxt).write_bytes(segment(nxt, SYSTEM_ID))
    r = push(cli, dest, nxt)
    assert r.code == 0, r.err
    assert f"stored beside it as {nxt}.1.zst.gpg" in r.err
    assert (folder / f"{nxt}.zst.gpg").read_bytes() == planted_bytes  # never overwritten
    again = push(cli, dest, nxt)  # PostgreSQL's retry: the same content, found beside
    assert again.code == 0 and not (folder / f"{nxt}.2.zst.gpg").exists(), again.err
    r = fetch(cli, dest, nxt)
    assert r.code == 0 and f"took {nxt}.1.zst.gpg" in r.err, r.err
    assert (cluster / "pg_wal" / "RECOVERYXLOG").read_bytes() == (
        cluster / "pg_wal" / nxt
    ).read_bytes()


def test_a_junk_history_file_is_passed_over_not_fatal(cli, tmp_path: Path, cluster: Path) -> None:
    """One planted ``.history`` must not deny every point-in-time restore: it is taken as
    not there (exit 1, the end of recovery's search for timelines), named in a warning."""
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    folder = dest / "wal" / str(SYSTEM_ID)
    (folder / "00000009.history.zst.gpg").write_bytes(b"junk\n")
    r = fetch(cli, dest, "00000009.history")
    assert r.code == 1 and "does not authenticate" in r.err, r.err
    assert not (cluster / "pg_wal" / "RECOVERYXLOG").exists()


@pytest.mark.parametrize("planted", ["folder", "fifo", "flood"])
def test_nothing_planted_under_a_name_stops_a_push(
    cli, tmp_path: Path, cluster: Path, planted: str
) -> None:
    """Issue 30 review: a folder, a FIFO (which blocked the push for ever) or 70 junk
    objects under the next name and the names beside it made every push fail."""
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    folder = dest / "wal" / str(SYSTEM_ID)
    nxt = "000000010000000000000004"
    if planted == "folder":
        (folder / f"{nxt}.zst.gpg").mkdir()
    elif planted == "fifo":
        os.mkfifo(folder / f"{nxt}.zst.gpg")
    else:
        (folder / f"{nxt}.zst.gpg").write_bytes(b"junk")
        for n in range(1, 70):
            (folder / f"{nxt}.{n}.zst.gpg").write_bytes(b"junk")
    (cluster / "pg_wal" / nxt).write_bytes(segment(nxt, SYSTEM_ID))
    r = push(cli, dest, nxt)
    assert r.code == 0 and "stored beside it" in r.err, r.err
    assert fetch(cli, dest, nxt).code == 0
    assert (cluster / "pg_wal" / "RECOVERYXLOG").read_bytes() == (
        cluster / "pg_wal" / nxt
    ).read_bytes()


@pytest.mark.parametrize("done", ["replaced", "deleted"])
def test_a_key_gpg_replaced_or_deleted_never_stops_archiving(
    cli, tmp_path: Path, cluster: Path, done: str
) -> None:
    """The host archives with the key it pinned: junk over key.gpg is passed over (with a
    warning, the segments still encrypted with the archive's key), a deleted key.gpg is
    made again from it, so the archive stays whole."""
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    folder = dest / "wal" / str(SYSTEM_ID)
    original = (folder / "key.gpg").read_bytes()
    if done == "replaced":
        (folder / "key.gpg").write_bytes(b"junk")
    else:
        (folder / "key.gpg").unlink()
    nxt = "000000010000000000000004"
    (cluster / "pg_wal" / nxt).write_bytes(segment(nxt, SYSTEM_ID))
    r = push(cli, dest, nxt)
    assert r.code == 0 and "key.gpg" in r.err, r.err
    if done == "replaced":
        assert (folder / "key.gpg").read_bytes() == b"junk"  # never overwritten
        (folder / "key.gpg").write_bytes(original)  # put back from another destination
    for name in (SEGMENT, nxt):
        assert fetch(cli, dest, name, "--no-key-cache").code == 0, name


def test_a_recipients_archive_key_swapped_after_the_base_backup_is_refused(
    tmp_path: Path, keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 30 review: where the backup host holds no secret key, the base backup records
    the SHA-256 of each key.gpg it saw; a key.gpg wrapped to the same public key by
    someone else (anyone can) is not one of them."""
    from offsite.crypto.keys import EncryptionConfig
    from offsite.crypto.modes import Encryption
    from offsite.errors import ArchiveRefused
    from offsite.sets.manifest import Entry
    from offsite.storage.local import LocalStorage
    from offsite.wal.archive import Archive, archive_facts
    from offsite.wal.verify import check_archive_key

    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "empty-home"))  # no secret key here
    (tmp_path / "empty-home").mkdir(mode=0o700)
    config = EncryptionConfig("recipients", recipients=(str(keyring.public_key_file),))
    storage = LocalStorage(str(tmp_path / "dest"))
    archive = Archive(storage, "42", None)
    key = archive.key_for_push(config)
    from offsite.wal.packed import pack

    archive.push(SEGMENT, pack(b"wal", SEGMENT, "42"), key)
    stats = archive_facts([storage], "42", config)
    assert (
        stats["wal_encrypted"] is True and "wal_key_sha256" in stats and "wal_key_ids" not in stats
    )
    entry = Entry("pg-base", "pg-base", "postgresql://…", "pg-base.tar.zst.gpg", 1, "0" * 64, 1,
                  "zstd", Encryption("set-key"), {"system_id": 42, **stats})  # fmt: skip
    check_archive_key(Archive(storage, "42", None), entry, None)  # the one it saw
    other = Archive(LocalStorage(str(tmp_path / "theirs")), "42", None)
    other.key_for_push(config)  # the attacker's own data key, wrapped to your public key
    (tmp_path / "dest" / "wal" / "42" / "key.gpg").write_bytes(
        (tmp_path / "theirs" / "wal" / "42" / "key.gpg").read_bytes()
    )
    with pytest.raises(ArchiveRefused, match="did not see"):
        check_archive_key(Archive(storage, "42", None), entry, None)


def test_the_monitor_judges_wal_by_the_push_time_sealed_inside(
    cli, tmp_path: Path, cluster: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 30 review: old WAL bytes written again look fresh by the store's time; the
    push time sealed in each file's record does not move. And with a key given, a key.gpg
    gone beside encrypted files is named, not taken as an archive that cannot be checked
    (which --allow-unverified-wal would have passed)."""
    import offsite.wal.packed as packed

    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    three_days_ago = packed.time.time() - 3 * 86400
    with monkeypatch.context() as pushed_then:  # the push three days ago
        pushed_then.setattr(packed.time, "time", lambda: three_days_ago)
        assert push(cli, dest).code == 0
    stored = dest / "wal" / str(SYSTEM_ID) / f"{SEGMENT}.zst.gpg"
    os.utime(stored)  # written again just now: the store says fresh
    r = cli("monitor", "--storage", dest, "--max-age", "1d", "--max-wal-age", "1h")
    assert r.code == 1 and "3d old, over --max-wal-age" in r.out + r.err, r.out
    (stored.parent / "key.gpg").unlink()
    (stored.parent / "000000010000000000000009.zst").write_bytes(b"plain junk")
    r = cli("monitor", "--storage", dest, "--max-age", "1d", "--max-wal-age", "1h",
            "--allow-unverified-wal")  # fmt: skip
    assert r.code == 1 and "key.gpg is gone" in r.out + r.err, r.out


def test_folders_no_listing_shows_never_stop_a_push(cli, tmp_path: Path, cluster: Path) -> None:
    """Second review: empty folders under a name and 1,000 names beside it (a listing shows
    none of them) used up the push's tries."""
    dest = tmp_path / "dest"
    assert push(cli, dest).code == 0
    folder = dest / "wal" / str(SYSTEM_ID)
    nxt = "000000010000000000000004"
    (folder / f"{nxt}.zst.gpg").mkdir()
    for n in range(1, 1002):
        (folder / f"{nxt}.{n}.zst.gpg").mkdir()
    (cluster / "pg_wal" / nxt).write_bytes(segment(nxt, SYSTEM_ID))
    r = push(cli, dest, nxt)
    assert r.code == 0 and f"{nxt}.1002.zst.gpg" in r.err, r.err


def test_a_key_gpg_gone_on_a_host_that_pins_none_is_not_replaced_by_a_new_key(
    cli, tmp_path: Path, cluster: Path
) -> None:
    """Second review: a new host (cold key cache) made a new key where key.gpg was deleted,
    and the archive's earlier files could no longer be read."""
    dest = tmp_path / "dest"
    assert push(cli, dest, SEGMENT, "--no-key-cache").code == 0
    folder = dest / "wal" / str(SYSTEM_ID)
    (folder / "key.gpg").unlink()
    nxt = "000000010000000000000004"
    (cluster / "pg_wal" / nxt).write_bytes(segment(nxt, SYSTEM_ID))
    r = push(cli, dest, nxt, "--no-key-cache")
    assert r.code == 3 and "copy it back" in r.err, r.err
    assert not (folder / "key.gpg").exists()


def test_a_wal_file_without_a_sealed_push_time_leaves_the_age_unverified(
    cli, tmp_path: Path, cluster: Path, tree: Path
) -> None:
    """Second review: an older offsite's records have no push time, and the store's time
    can be renewed by writing the same bytes again."""
    import json as _json
    import struct as _struct

    import zstandard

    from offsite.crypto.keys import EncryptionConfig
    from offsite.storage.local import LocalStorage
    from offsite.wal.archive import Archive
    from offsite.wal.packed import SKIPPABLE, TAG

    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    plain = segment(SEGMENT, SYSTEM_ID)
    record = TAG + _json.dumps({"sha256": hashlib.sha256(plain).hexdigest(), "size": len(plain),
                                "name": SEGMENT, "system_id": str(SYSTEM_ID)}).encode()  # fmt: skip
    legacy = _struct.pack("<II", SKIPPABLE, len(record)) + record
    legacy += zstandard.ZstdCompressor(level=3, write_checksum=True).compress(plain)
    archive = Archive(LocalStorage(str(dest)), str(SYSTEM_ID), None)
    key = archive.key_for_push(
        EncryptionConfig("passphrase", passphrase=os.environ["OFFSITE_PASSPHRASE"])
    )
    archive.push(SEGMENT, legacy, key)
    r = cli("monitor", "--storage", dest, "--max-age", "1d", "--max-wal-age", "1h")
    assert r.code == 1 and "unverified" in r.out + r.err, r.out


def test_a_base_backup_where_archiving_runs_records_the_pinned_key_not_a_swapped_one(
    tmp_path: Path, keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second review: a key.gpg swapped (wrapped to your public key by someone else)
    before the base backup was recorded as the archive's. Where archive_command runs, the
    key it pinned is what the base backup records; a restore whose key.gpg opens to
    another key is refused."""
    from offsite.crypto.keys import EncryptionConfig
    from offsite.crypto.modes import Encryption
    from offsite.errors import ArchiveRefused
    from offsite.sets.manifest import Entry
    from offsite.storage.local import LocalStorage
    from offsite.wal.archive import Archive, archive_facts
    from offsite.wal.keycache import default_cache
    from offsite.wal.packed import pack
    from offsite.wal.verify import check_archive_key

    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "empty-home"))  # no secret key here
    (tmp_path / "empty-home").mkdir(mode=0o700)
    config = EncryptionConfig("recipients", recipients=(str(keyring.public_key_file),))
    storage = LocalStorage(str(tmp_path / "dest"))
    pusher = Archive(storage, "42", default_cache())
    pusher.push(SEGMENT, pack(b"wal", SEGMENT, "42"), pusher.key_for_push(config))
    other = Archive(LocalStorage(str(tmp_path / "theirs")), "42", None)
    other.key_for_push(config)  # the attacker's own key, wrapped to your public key
    (tmp_path / "dest" / "wal" / "42" / "key.gpg").write_bytes(
        (tmp_path / "theirs" / "wal" / "42" / "key.gpg").read_bytes()
    )
    stats = archive_facts([storage], "42", config)  # the base backup, on this host
    assert "wal_key_ids" in stats and "wal_key_sha256" not in stats
    entry = Entry("pg-base", "pg-base", "postgresql://…", "pg-base.tar.zst.gpg", 1, "0" * 64, 1,
                  "zstd", Encryption("set-key"), {"system_id": 42, **stats})  # fmt: skip
    monkeypatch.setenv("GNUPGHOME", str(keyring.home))  # the restoring host: the secret key
    with pytest.raises(ArchiveRefused, match="opens to another key"):
        check_archive_key(Archive(storage, "42", None), entry, None)
