"""The WAL archive on S3 (moto) behaves as on a folder: just objects under wal/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_wal import SEGMENT, datadir
from tests.servers import MotoS3
from tests.walfiles import segment


def test_push_fetch_and_refuse_on_s3(
    cli, tmp_path: Path, moto: MotoS3, monkeypatch: pytest.MonkeyPatch, passphrase: str
) -> None:
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    folder = datadir(tmp_path, 4242)
    (folder / "pg_wal" / SEGMENT).write_bytes(segment(SEGMENT, 4242))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bucket = moto.bucket()
    dest = f"s3://{bucket}/archive"
    endpoint = ("--s3-endpoint-url", moto.endpoint)
    assert cli("wal", "push", f"pg_wal/{SEGMENT}", "--to", dest, *endpoint).code == 0
    assert cli("wal", "push", f"pg_wal/{SEGMENT}", "--to", dest, *endpoint).code == 0
    keys = sorted(o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"archive/wal/4242/{SEGMENT}.zst.gpg", "archive/wal/4242/key.gpg"]
    r = cli("wal", "fetch", SEGMENT, "pg_wal/RECOVERYXLOG", "--from", dest, *endpoint)
    assert r.code == 0, r.err
    assert (folder / "pg_wal" / "RECOVERYXLOG").read_bytes() == (
        folder / "pg_wal" / SEGMENT
    ).read_bytes()
    missing = "000000010000000000000099"
    r = cli("wal", "fetch", missing, "pg_wal/RECOVERYXLOG", "--from", dest, *endpoint)
    assert r.code == 1
    (folder / "pg_wal" / SEGMENT).write_bytes(segment(SEGMENT, 4242, b"different"))
    r = cli("wal", "push", f"pg_wal/{SEGMENT}", "--to", dest, *endpoint)
    assert r.code == 1 and "refusing to overwrite" in r.err
