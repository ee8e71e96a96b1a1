"""One contract, every backend: the same cases run over each destination (conftest.py),
against a real server started by the tests."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from offsite.errors import ObjectMissing, OffsiteError, StorageError
from offsite.sets.manifest import MANIFEST_NAME
from offsite.sets.stored import scan
from offsite.storage.base import HasUploads, get_bytes, put_bytes
from tests.conftest import only_set, tree_content
from tests.faultproxy import TcpFaultProxy
from tests.storage.conftest import Backend

MiB = 1 << 20


class Generated:
    """``size`` bytes of a repeatable pseudo-random stream, read in odd-sized chunks."""

    def __init__(self, size: int, seed: bytes = b"offsite") -> None:
        self.left = size
        self.block = hashlib.sha256(seed).digest() * (MiB // 32)
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        n = min(self.left, 3 * MiB // 2 if size < 0 else size)
        data = (self.block * (n // len(self.block) + 1))[:n]
        self.left -= n
        self.sha.update(data)
        return data

    def close(self) -> None:
        pass


def test_put_list_open_stat_delete(backend: Backend) -> None:
    storage = backend.open()
    assert list(storage.list()) == []
    payload = os.urandom(9 * MiB) + b"end"  # more than one part or block of every backend
    assert storage.put("20240101T000000Z/db.sqlite.zst", io.BytesIO(payload)) == len(payload)
    put_bytes(storage, "20240101T000000Z/small.out", b"hello")
    put_bytes(storage, "20240102T000000Z/other.out", b"x")
    keys = sorted(o.key for o in storage.list("20240101T000000Z/"))
    assert keys == ["20240101T000000Z/db.sqlite.zst", "20240101T000000Z/small.out"]
    assert get_bytes(storage, "20240101T000000Z/db.sqlite.zst") == payload
    info = storage.stat("20240101T000000Z/small.out")
    assert info is not None and info.size == 5
    assert storage.stat("20240101T000000Z/absent") is None
    with pytest.raises(ObjectMissing):  # the backends' one not-found error, not OSError
        storage.open("20240101T000000Z/absent").read(1)
    storage.delete("20240101T000000Z/small.out")
    storage.delete("20240101T000000Z/never-there")  # absent: not an error
    assert sorted(o.key for o in storage.list()) == [
        "20240101T000000Z/db.sqlite.zst",
        "20240102T000000Z/other.out",
    ]


def test_a_stream_that_fails_leaves_no_object(backend: Backend) -> None:
    storage = backend.open()

    class Failing(Generated):
        def read(self, size: int = -1) -> bytes:
            if self.left < 12 * MiB:
                raise OSError("the dump died")
            return super().read(size)

    with pytest.raises(OSError, match="the dump died"):
        storage.put("set/entry.bin", Failing(30 * MiB))
    assert list(storage.list()) == []
    if isinstance(storage, HasUploads):
        assert storage.incomplete_uploads() == []


def test_a_set_is_visible_only_after_its_manifest(backend: Backend) -> None:
    storage = backend.open()
    put_bytes(storage, "20240301T020000Z/files.tar.zst", b"entry bytes")
    found = scan(storage)
    assert found.sets == [] and [i.prefix for i in found.incomplete] == ["20240301T020000Z/"]
    manifest = {
        "format": "offsite-manifest/1", "id": "20240301T020000Z",
        "created_at": "2024-03-01T02:00:00Z", "finished_at": "2024-03-01T02:00:01Z",
        "tool_version": "0", "labels": {}, "origin": None, "entries": [],
    }  # fmt: skip
    put_bytes(storage, f"20240301T020000Z/{MANIFEST_NAME}", json.dumps(manifest).encode())
    found = scan(storage)
    assert [s.id for s in found.sets] == ["20240301T020000Z"] and found.incomplete == []


def test_200_mb_stream_in_bounded_memory(backend: Backend, tmp_path: Path) -> None:
    """A separate process puts 200 MiB and reports its peak RSS growth."""
    script = f"""
import resource, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from tests.storage.test_contract import Generated
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings, S3Settings
storage = open_storage(sys.argv[1], StorageSettings(s3=S3Settings(endpoint_url=sys.argv[2] or None)))
list(storage.list())  # clients loaded before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
source = Generated(200 * 2**20)
n = storage.put("big/stream.bin", source)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, source.sha.hexdigest(), (after - before) // 1024)
"""
    endpoint = backend.settings.s3.endpoint_url or ""
    done = subprocess.run([sys.executable, "-c", script, backend.url, endpoint],
                          env={**os.environ, **backend.env}, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    size, sha, grew_mb = done.stdout.split()
    assert int(size) == 200 * MiB
    assert int(grew_mb) < 64, f"peak RSS grew by {grew_mb} MiB for a 200 MiB stream"
    storage = backend.open()
    digest = hashlib.sha256()
    with storage.open("big/stream.bin") as fh:
        while chunk := fh.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == sha


def test_transient_failures_are_ridden_out(backend: Backend) -> None:
    if backend.proxy is None:
        pytest.skip(f"{backend.name}: no network between offsite and the storage")
    storage = backend.open()
    payload = os.urandom(20 * MiB)
    if isinstance(backend.proxy, TcpFaultProxy):  # SSH: the connection drops
        backend.proxy.cut("up", after=12 * MiB)
        storage.put("set/entry.bin", io.BytesIO(payload))
        backend.proxy.cut("down", after=5 * MiB)
        assert get_bytes(storage, "set/entry.bin") == payload
        assert len(backend.proxy.cuts) == 2, backend.proxy.cuts
        assert [o.key for o in storage.list()] == ["set/entry.bin"]
        return
    assert backend.part is not None and backend.read is not None
    # uploads of parts: a 503 twice, then a dropped connection
    backend.proxy.fail(backend.part, times=2)
    backend.proxy.fail(backend.part, status=None)
    storage.put("set/entry.bin", io.BytesIO(payload))
    backend.proxy.fail(backend.read, times=2)
    assert get_bytes(storage, "set/entry.bin") == payload
    assert len(backend.proxy.failed) == 5, backend.proxy.failed


def test_bad_credentials_fail_at_once_with_one_line(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend.bad_env is None:
        pytest.skip(f"{backend.name}: no credentials")
    for key, value in backend.bad_env.items():
        monkeypatch.setenv(key, value)
    storage = backend.open()
    with pytest.raises(StorageError) as caught:
        put_bytes(storage, "set/x", b"x")
    message = caught.value.message()
    assert "\n" not in message and "denied" in message.lower(), message
    assert backend.bad_secret and backend.bad_secret not in message
    if backend.proxy is not None:  # permanent: not retried
        assert len(backend.proxy.requests) == 1, backend.proxy.requests


def test_missing_bucket_is_one_clear_line(backend: Backend) -> None:
    if backend.missing_url is None:
        pytest.skip(f"{backend.name}: a folder is created when missing")
    storage = backend.open(backend.missing_url)
    with pytest.raises(OffsiteError) as caught:
        put_bytes(storage, "set/x", b"x")
    assert "does not exist" in caught.value.message()
    with pytest.raises(OffsiteError):
        list(storage.list())
    if backend.proxy is not None:  # the failed upload leaves nothing that acts later
        time.sleep(0.5)  # requests already in flight on a loaded machine land first
        before = len(backend.proxy.requests)
        del caught  # the error's context holds the frames of the failed upload
        gc.collect()  # e.g. a writer whose finalizer would try the upload again
        time.sleep(0.5)
        assert backend.proxy.requests[before:] == []


def test_backup_list_verify_restore_prune_through_the_cli(
    cli, backend: Backend, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    opts = backend.options
    r = cli("backup", tree, "--to", backend.url, *opts)
    assert r.code == 0, r.err
    r = cli("backup", tree, "--to", backend.url, *opts)
    assert r.code == 0, r.err
    listed = cli("list", backend.url, "--json", *opts)
    assert listed.code == 0, listed.err
    ids = [s["id"] for s in json.loads(listed.out)["sets"]]
    assert len(ids) == 2
    assert cli("verify", backend.url, "--all", "--read-data", *opts).code == 0
    r = cli("restore", backend.url, "--latest", "--into", tmp_path / "back", *opts)
    assert r.code == 0, r.err
    assert tree_content(tmp_path / "back") == tree_content(tree)
    r = cli("prune", backend.url, "--keep-last", "1", *opts)
    assert r.code == 0, r.err
    listed = cli("list", backend.url, "--json", *opts)
    assert [s["id"] for s in json.loads(listed.out)["sets"]] == ids[1:]
    assert {o.key.split("/")[0] for o in backend.open().list()} == {ids[1]}


def test_the_same_bytes_in_two_destinations(
    cli, backend: Backend, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    local = tmp_path / "second"
    r = cli("backup", tree, "--to", backend.url, "--to", local, *backend.options)
    assert r.code == 0, r.err
    folder = only_set(local)
    storage = backend.open()
    for path in folder.iterdir():
        assert get_bytes(storage, f"{folder.name}/{path.name}") == path.read_bytes(), path.name


def test_create_if_absent_is_arbitrated_by_the_store(backend: Backend) -> None:
    if backend.name == "gcs":
        pytest.skip(
            "gcp-storage-emulator ignores ifGenerationMatch=0 (it overwrites): GCS itself "
            "answers 412, which GcsStorage.create reads as taken"
        )
    storage = backend.open()
    assert storage.create("20240101T000000Z/.offsite-set", b"first") is True
    assert storage.create("20240101T000000Z/.offsite-set", b"second") is False
    assert get_bytes(storage, "20240101T000000Z/.offsite-set") == b"first"


def test_eight_backups_started_in_the_same_second_write_eight_sets(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC §7: set ids are reserved atomically; 8 runs at one moment, 8 complete sets."""
    if backend.name == "gcs":
        pytest.skip("gcp-storage-emulator ignores ifGenerationMatch=0: it cannot arbitrate")
    import threading
    from datetime import datetime, timezone

    import offsite.backup
    from offsite.backup import BackupConfig, run_backup
    from offsite.crypto.keys import EncryptionConfig
    from offsite.restore import RestoreRequest, run_restore
    from offsite.sources.command import CommandSource

    moment = datetime(2024, 2, 16, 15, 0, 0, tzinfo=timezone.utc)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
            return moment

    monkeypatch.setattr(offsite.backup, "datetime", Frozen)
    start = threading.Barrier(8)
    results: list[object] = []

    def one(n: int) -> None:
        config = BackupConfig(
            sources=(CommandSource("run", f"echo run {n}"),),
            destinations=(backend.url,),
            encryption=EncryptionConfig("none"),
            storage=backend.settings,
        )
        start.wait()
        try:
            results.append(run_backup(config).manifest.id)
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, str) for r in results), results
    found = scan(backend.open())
    assert sorted(results) == sorted(s.id for s in found.sets)
    assert len(set(results)) == 8 and not found.incomplete
    outputs = set()
    for set_id in results:
        out = tmp_path / f"{set_id}.out"
        run_restore(
            RestoreRequest(backend.url, str(out), set_id=str(set_id), storage=backend.settings)
        )
        outputs.add(out.read_text())
    assert outputs == {f"run {n}\n" for n in range(8)}  # each its own run's entry


def test_a_store_that_ignores_create_if_absent_is_named(
    backend: Backend, cli, tmp_path: Path
) -> None:
    """gcp-storage-emulator overwrites where GCS answers 412: a backup there says so; the
    stores that arbitrate say nothing."""
    (tmp_path / "f").write_text("x")
    r = cli("backup", tmp_path / "f", "--to", backend.url, *backend.options, "--no-encrypt")
    assert r.code == 0, r.err
    named = "does not refuse to create an object that exists" in r.err
    assert named == (backend.name == "gcs")
