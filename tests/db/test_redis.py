"""Redis against a throwaway server: RDB round trip, the swap by hand, secrets, failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import batch_gnupg_home, only_set
from tests.db.conftest import manifest_of, real_tool, run_watching_ps
from tests.servers import REDIS_PASSWORD, Redis, free_port


@pytest.fixture(scope="module")
def loaded(redis: Redis) -> Redis:
    redis.cli("FLUSHALL")
    for i in range(30):
        redis.cli("SET", f"string:{i}", f"value {i} ünïcødé")
    redis.cli("HSET", "hash", "a", "1", "b", "2", "c", "three")
    redis.cli("RPUSH", "list", "x", "y", "z", "x")
    redis.cli("SADD", "set", "m1", "m2", "m3")
    redis.cli("ZADD", "zset", "1.5", "one", "2", "two", "-3", "minus")
    redis.cli("SET", "expiring", "soon", "EX", "86400")
    redis.cli("-n", "3", "SET", "in-db-3", "yes")
    redis.cli("-n", "3", "HSET", "h3", "k", "v")
    return redis


def dataset(redis: Redis, port: int | None = None) -> dict[str, object]:
    """Every key of databases 0 and 3 with its type, value and whether it expires."""
    found: dict[str, object] = {}
    for db in ("0", "3"):
        keys = redis.cli("-n", db, "--scan", port=port).split()
        for key in keys:
            kind = redis.cli("-n", db, "TYPE", key, port=port).strip()
            read = {
                "string": ["GET", key], "hash": ["HGETALL", key], "list": ["LRANGE", key, "0", "-1"],
                "set": ["SMEMBERS", key], "zset": ["ZRANGE", key, "0", "-1", "WITHSCORES"],
            }[kind]  # fmt: skip
            value = redis.cli("-n", db, *read, port=port).split("\n")
            ttl = int(redis.cli("-n", db, "TTL", key, port=port))
            found[f"{db}/{key}"] = (kind, sorted(value) if kind == "set" else value, ttl > 0)
    return found


def serve(redis: Redis, rdb: Path) -> tuple[int, object]:
    """A second redis-server that loads ``rdb``: the swap the README describes."""
    port = free_port()
    proc = redis.run(rdb.parent, port, rdb.name)
    return port, proc


def test_round_trip_through_an_rdb_file(
    cli, tmp_path: Path, loaded: Redis, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", loaded.url(), "--to", dest)
    assert r.code == 0, r.err
    entry = manifest_of(dest)["entries"][0]
    assert entry["kind"] == "redis" and entry["file"] == "redis.rdb.zst.gpg"
    assert entry["stats"] == {"keys": 37, "expires": 1}
    assert REDIS_PASSWORD not in json.dumps(entry)

    target = tmp_path / "restored" / "dump.rdb"
    r = cli("restore", dest, "--into", target)
    assert r.code == 0, r.err
    port, proc = serve(loaded, target)
    try:
        assert dataset(loaded, port) == dataset(loaded)
    finally:
        proc.terminate()  # type: ignore[attr-defined]
        proc.wait()  # type: ignore[attr-defined]


def test_standard_tools_restore(cli, tmp_path: Path, loaded: Redis, passphrase: str) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", loaded.url(), "--to", dest).code == 0
    stored = next(p for p in dest.iterdir() if p.is_dir())
    entry = manifest_of(dest)["entries"][0]
    work = tmp_path / "by-hand"
    work.mkdir()
    shutil.copy(stored / entry["file"], work)
    shutil.copy(stored / "key.gpg", work)  # the set's data key, wrapped
    env = {**os.environ, "GNUPGHOME": str(batch_gnupg_home(tmp_path, None))}
    done = subprocess.run(["bash", "-c", "set -euo pipefail; " + entry["restore_hint"]],
                          cwd=work, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, (entry["restore_hint"], done.stderr)
    port, proc = serve(loaded, work / "dump.rdb")
    try:
        assert dataset(loaded, port) == dataset(loaded)
    finally:
        proc.terminate()  # type: ignore[attr-defined]
        proc.wait()  # type: ignore[attr-defined]


def test_password_never_in_ps_log_or_manifest(tmp_path: Path, loaded: Redis) -> None:
    loaded.cli(
        "EVAL",
        "for i = 1, 200000 do local h = redis.sha1hex(tostring(i)) "
        "redis.call('SET', 'bulk:' .. i, h .. h .. h) end",
        "0",
    )  # ~30 MB to dump
    assert int(loaded.cli("DBSIZE")) > 200_000
    try:
        dest = tmp_path / "backups"
        watched = run_watching_ps(loaded.url(), ["--to", str(dest)], REDIS_PASSWORD,
                                  ("redis-cli",), {"OFFSITE_PASSPHRASE": "x"})  # fmt: skip
        assert watched.code == 0, watched.err
        assert watched.tools_seen, "the watcher never saw the dump run"
        assert watched.leaks == []
        assert REDIS_PASSWORD not in watched.out + watched.err
        assert REDIS_PASSWORD not in (next(dest.iterdir()) / "manifest.json").read_text()
    finally:
        loaded.cli("EVAL", "for _, k in ipairs(redis.call('KEYS', 'bulk:*')) do "
                   "redis.call('DEL', k) end", "0")  # fmt: skip


def test_wrong_password_is_exit_3(cli, tmp_path: Path, loaded: Redis, passphrase: str) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", loaded.url(password="wrong-password"), "--to", dest)
    assert r.code == 3
    assert "wrong-password" not in r.err
    assert not dest.exists() or not any(dest.iterdir())


def test_server_down_is_exit_3(cli, tmp_path: Path, passphrase: str) -> None:
    r = cli("backup", f"redis://127.0.0.1:{free_port()}/0", "--to", tmp_path / "backups")
    assert r.code == 3 and "Connection refused" in r.err


def test_truncated_rdb_fails_its_check(
    cli, tmp_path: Path, loaded: Redis, passphrase: str, fake_bin
) -> None:
    real = real_tool("redis-cli")
    fake_bin(
        "redis-cli",
        f'case "$*" in *--rdb*) {real} "$@" | head -c 300;; *) exec {real} "$@";; esac\n',
    )
    dest = tmp_path / "backups"
    r = cli("backup", loaded.url(), "--to", dest)
    assert r.code == 3
    assert "RDB check failed" in r.err
    assert not any(p.name == "manifest.json" for p in dest.rglob("*"))


def test_restore_into_a_server_url_explains_the_swap(
    cli, tmp_path: Path, loaded: Redis, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", loaded.url(), "--to", dest).code == 0
    r = cli("restore", dest, "--into", loaded.url())
    assert r.code == 2 and "file:///path/dump.rdb" in r.err


def test_drill_into_a_file(cli, tmp_path: Path, loaded: Redis, passphrase: str) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", loaded.url(), "--to", dest).code == 0
    r = cli("drill", dest, "--into", tmp_path / "scratch" / "dump.rdb")
    assert r.code == 0, r.err
    manifest = only_set(dest) / "manifest.json"  # drills/ sits beside it now
    doc = json.loads(manifest.read_text())
    doc["entries"][0]["stats"]["keys"] = 999
    manifest.write_text(json.dumps(doc))
    # the edit breaks the manifest's auth; accepted here to reach the drill's own check
    r = cli("drill", dest, "--into", tmp_path / "scratch2" / "dump.rdb", "--allow-unauthenticated")
    assert r.code == 1
    assert "keys: manifest says 999, the restored file holds 37" in r.err
