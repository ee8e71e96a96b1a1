"""MongoDB with fake mongodump/mongorestore on PATH: no MongoDB server installs here.

What is tested is offsite's side: the arguments, the 0600 config file carrying the
secret, the stats from mongodump's log, failure paths, and the archive round trip.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.db.conftest import manifest_of

URL = "mongodb://app:m0ng0-s3cret@db.example.internal:27017/app?authSource=admin"
ARCHIVE = "fake mongodump archive bytes " * 1000

FAKE_DUMP = r"""
log="{log}"
for arg in "$@"; do printf '%s\n' "$arg" >> "$log.argv"; done
config=$(printf '%s\n' "$@" | sed -n 's/^--config=//p')
stat -c %a "$config" > "$log.mode"
cat "$config" > "$log.config"
printf '%s' "{archive}"
echo "2024-02-16T15:00:00.000+0000	writing app.users to archive on stdout" >&2
echo "2024-02-16T15:00:00.001+0000	done dumping app.users (3 documents)" >&2
echo "2024-02-16T15:00:00.002+0000	done dumping app.orders (1 document)" >&2
"""


def test_backup_keeps_the_secret_in_a_0600_config_file(
    cli, tmp_path: Path, passphrase: str, fake_bin
) -> None:
    log = tmp_path / "mongodump"
    fake_bin("mongodump", FAKE_DUMP.format(log=log, archive=ARCHIVE))
    dest = tmp_path / "backups"
    r = cli("backup", URL, "--to", dest)
    assert r.code == 0, r.err
    argv = (tmp_path / "mongodump.argv").read_text().split("\n")
    assert "--archive" in argv
    assert not any("m0ng0-s3cret" in a for a in argv)
    assert (tmp_path / "mongodump.mode").read_text().strip() == "600"
    assert json.loads((tmp_path / "mongodump.config").read_text().split(": ", 1)[1]) == URL
    entry = manifest_of(dest)["entries"][0]
    assert entry["kind"] == "mongodb" and entry["file"] == "app.archive.zst.gpg"
    assert entry["stats"] == {"rows": {"app.orders": 1, "app.users": 3}}
    assert "m0ng0-s3cret" not in json.dumps(entry) and entry["source"].startswith(
        "mongodb://app:***@"
    )
    assert not list(tmp_path.rglob("offsite-mongo-*")), "the config file was left behind"


def test_failing_mongodump_is_exit_3_with_its_error(
    cli, tmp_path: Path, passphrase: str, fake_bin
) -> None:
    fake_bin(
        "mongodump",
        "echo 'Failed: error connecting to db server: server selection timeout' >&2\nexit 1\n",
    )
    dest = tmp_path / "backups"
    r = cli("backup", URL, "--to", dest)
    assert r.code == 3
    assert "server selection timeout" in r.err
    assert not any(p.name == "manifest.json" for p in dest.rglob("*"))


def test_missing_mongodump_names_the_package(
    cli, tmp_path: Path, passphrase: str, monkeypatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    r = cli("backup", URL, "--to", tmp_path / "backups")
    assert r.code == 2 and "mongodb-database-tools" in r.err


def test_restore_needs_force_and_streams_the_archive(
    cli, tmp_path: Path, passphrase: str, fake_bin
) -> None:
    fake_bin("mongodump", FAKE_DUMP.format(log=tmp_path / "d", archive=ARCHIVE))
    received = tmp_path / "received.archive"
    fake_bin("mongorestore", f'cat > "{received}"\n')
    dest = tmp_path / "backups"
    assert cli("backup", URL, "--to", dest).code == 0
    target = "mongodb://app:m0ng0-s3cret@restore.example.internal:27017/"
    r = cli("restore", dest, "--into", target)
    assert r.code == 2 and "--force" in r.err and "m0ng0-s3cret" not in r.err
    r = cli("restore", dest, "--into", target, "--force")
    assert r.code == 0, r.err
    assert received.read_text() == ARCHIVE
