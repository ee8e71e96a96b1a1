"""verify: presence and sizes; --read-data reads, hashes and decrypts every byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import only_set


@pytest.fixture
def backed_up(cli, tmp_path: Path, sqlite_db: Path, tree: Path, passphrase: str) -> Path:
    dest = tmp_path / "backups"
    assert cli("backup", f"sqlite:{sqlite_db}", tree, "--to", dest).code == 0
    return dest


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_good_set_passes(cli, backed_up: Path) -> None:
    r = cli("verify", backed_up)
    assert r.code == 0 and r.out.endswith("2 of 2 entries ok in 1 set\n")  # no "1 set(s)"
    r = cli("verify", backed_up, "--read-data", "--json")
    assert r.code == 0
    checks = json.loads(r.out)["checks"]
    assert [(c["entry"], c["read_data"], c["decrypted"]) for c in checks] == [
        ("app", True, True),
        ("files", True, True),
    ]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_one_flipped_byte_fails_naming_the_entry(
    cli, backed_up: Path, where: str, monkeypatch
) -> None:
    stored = only_set(backed_up) / "files.tar.zst.gpg"
    size = stored.stat().st_size
    _flip(stored, {"start": 0, "middle": size // 2, "end": size - 1}[where])
    r = cli("verify", backed_up, "--read-data")
    assert r.code == 1
    assert "checksum mismatch" in r.err and "'files'" in r.err
    assert "'app'" not in r.err
    # Even without the key, every byte is hashed.
    monkeypatch.delenv("OFFSITE_PASSPHRASE")
    r = cli("verify", backed_up, "--read-data")
    assert r.code == 1 and "'files'" in r.err


def test_flipped_byte_refuses_restore(cli, backed_up: Path, tmp_path: Path) -> None:
    _flip(only_set(backed_up) / "app.sqlite.zst.gpg", 200)
    r = cli("restore", backed_up, "--entry", "app", "--into", tmp_path / "out.db")
    assert r.code == 1
    assert "checksum mismatch" in r.err
    assert not (tmp_path / "out.db").exists()
    assert list(tmp_path.glob(".out.db*")) == []


def test_missing_or_truncated_file_fails_without_read_data(cli, backed_up: Path) -> None:
    stored = only_set(backed_up) / "files.tar.zst.gpg"
    stored.write_bytes(stored.read_bytes()[:-10])
    r = cli("verify", backed_up)
    assert r.code == 1 and "size mismatch" in r.err
    stored.unlink()
    r = cli("verify", backed_up)
    assert r.code == 1 and "missing" in r.err


def test_set_without_manifest_is_not_listed(cli, backed_up: Path) -> None:
    first = only_set(backed_up).name
    assert cli("backup", "--exec", "x=echo hi", "--to", backed_up).code == 0
    newest = max(p.name for p in backed_up.iterdir())
    (backed_up / newest / "manifest.json").unlink()

    listing = json.loads(cli("list", backed_up, "--json").out)
    assert [s["id"] for s in listing["sets"]] == [first]
    assert [i["prefix"] for i in listing["incomplete"]] == [newest + "/"]
    r = cli("list", backed_up)
    assert newest not in r.out and "1 incomplete set" in r.out
    r = cli("verify", backed_up, "--id", newest)
    assert r.code == 2 and f"no backup set {newest}" in r.err
    # latest means latest complete
    assert json.loads(cli("verify", backed_up, "--json").out)["checks"][0]["set_id"] == first


def test_read_data_subset_partitions_entries(cli, backed_up: Path) -> None:
    read = []
    for n in (1, 2):
        checks = json.loads(cli("verify", backed_up, "--read-data-subset", f"{n}/2", "--json").out)[
            "checks"
        ]
        read.append({c["entry"] for c in checks if c["read_data"]})
    assert read == [{"app"}, {"files"}]
    assert cli("verify", backed_up, "--read-data-subset", "3/2").code == 2
