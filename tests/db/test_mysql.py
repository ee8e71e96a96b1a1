"""MariaDB against a throwaway server: round trips, standard tools, secrets, failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import batch_gnupg_home
from tests.db.conftest import manifest_of, real_tool, run_watching_ps
from tests.servers import MY_PASSWORD, MariaDB

SCHEMA = """
CREATE TABLE customers (
    id INT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(200) CHARACTER SET utf8mb4 NOT NULL,
    avatar BLOB,
    fingerprint BINARY(16),
    created DATETIME(6) NOT NULL
) DEFAULT CHARSET = utf8mb4;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, note TEXT);
CREATE TABLE `empty ``odd`` name` (x INT);
CREATE TRIGGER customers_audit AFTER INSERT ON customers
    FOR EACH ROW INSERT INTO audit (customer_id, note) VALUES (NEW.id, 'created');
CREATE FUNCTION shout(s VARCHAR(200)) RETURNS VARCHAR(200) DETERMINISTIC RETURN UPPER(s);
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit WHERE id < 0;
SET SESSION max_recursive_iterations = 1000000;
INSERT INTO customers (name, avatar, fingerprint, created)
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {rows})
SELECT CONCAT('Zoë 😀 ', n, ' it''s a "quote", a \\\\ backslash and a ),( pair'),
       UNHEX(REPEAT(LPAD(HEX(n % 256), 2, '0'), 64)),
       UNHEX(MD5(n)),
       TIMESTAMP('2024-02-16 15:00:00') + INTERVAL n SECOND
FROM seq;
"""

CONTENT = """
CHECKSUM TABLE customers, audit, `empty ``odd`` name` EXTENDED;
SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS('|', id, name, HEX(avatar), HEX(fingerprint), created) ORDER BY id SEPARATOR '#')) FROM customers;
SELECT shout('ok');
SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE();
SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE();
"""


def make_db(server: MariaDB, rows: int = 1500) -> str:
    name = f"shop_{uuid.uuid4().hex[:8]}"
    server.root_sql(f"SET SESSION group_concat_max_len = 1 << 30; CREATE DATABASE {name};")
    server.root_sql(SCHEMA.format(rows=rows), name)
    return name


def content(server: MariaDB, database: str) -> list[str]:
    out = server.root_sql("SET SESSION group_concat_max_len = 1 << 30;" + CONTENT, database)
    # CHECKSUM TABLE names the table with its database: compare without it.
    return [line.replace(f"{database}.", "") for line in out.splitlines()]


@pytest.fixture(scope="module")
def source_db(mariadb: MariaDB) -> str:
    return make_db(mariadb)


def test_round_trip_into_a_new_database(
    cli, tmp_path: Path, mariadb: MariaDB, source_db: str, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", mariadb.url(source_db), "--to", dest)
    assert r.code == 0, r.err
    entry = manifest_of(dest)["entries"][0]
    assert entry["kind"] == "mysql" and entry["file"].endswith(".sql.zst.gpg")
    assert entry["stats"]["rows"] == {"audit": 1500, "customers": 1500, "empty `odd` name": 0}
    assert MY_PASSWORD not in json.dumps(entry)

    target = f"copy_{uuid.uuid4().hex[:8]}"
    r = cli("restore", dest, "--into", mariadb.url(target))
    assert r.code == 0, r.err
    assert content(mariadb, target) == content(mariadb, source_db)
    mariadb.root_sql("INSERT INTO customers (name, created) VALUES ('new', NOW());", target)
    assert mariadb.root_sql("SELECT COUNT(*) FROM audit", target) == "1501\n"


def test_standard_tools_restore(
    cli, tmp_path: Path, mariadb: MariaDB, source_db: str, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", mariadb.url(source_db), "--to", dest).code == 0
    stored = next(p for p in dest.iterdir() if p.is_dir())
    entry = manifest_of(dest)["entries"][0]
    mariadb.root_sql("CREATE DATABASE newdb_by_hand;")
    work = tmp_path / "by-hand"
    work.mkdir()
    shutil.copy(stored / entry["file"], work)
    shutil.copy(stored / "key.gpg", work)  # the set's data key, wrapped
    home = tmp_path / "home"
    home.mkdir()
    (home / ".my.cnf").write_text(
        f"[client]\nuser=root\nsocket={mariadb.socket}\ndefault-character-set=utf8mb4\n"
    )
    env = {**os.environ, "HOME": str(home), "GNUPGHOME": str(batch_gnupg_home(tmp_path, None))}
    hint = entry["restore_hint"].replace("newdb", "newdb_by_hand")
    done = subprocess.run(["bash", "-c", "set -euo pipefail; " + hint], cwd=work, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, (hint, done.stderr)
    assert content(mariadb, "newdb_by_hand") == content(mariadb, source_db)


def test_all_databases_counts_rows_per_database(
    cli, tmp_path: Path, mariadb: MariaDB, source_db: str, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", mariadb.url(""), "--to", dest).code == 0
    entry = manifest_of(dest)["entries"][0]
    assert entry["name"] == "all-databases"
    assert entry["stats"]["rows"][f"{source_db}.customers"] == 1500


def test_password_never_in_ps_log_or_manifest(tmp_path: Path, mariadb: MariaDB) -> None:
    big = make_db(mariadb, rows=40_000)
    dest = tmp_path / "backups"
    watched = run_watching_ps(
        mariadb.url(big), ["--to", str(dest)], MY_PASSWORD,
        ("mariadb-dump", "mysqldump"), {"OFFSITE_PASSPHRASE": "x"},
    )  # fmt: skip
    assert watched.code == 0, watched.err
    assert watched.tools_seen, "the watcher never saw the dump run"
    assert watched.leaks == []
    assert MY_PASSWORD not in watched.out + watched.err
    assert MY_PASSWORD not in (next(dest.iterdir()) / "manifest.json").read_text()


@pytest.mark.parametrize(
    ("url_args", "message"),
    [
        ({"password": "wrong-password"}, "Access denied"),
        ({"database": "no_such_db"}, "Unknown database"),
    ],
)
def test_connection_failures_are_exit_3(
    cli, tmp_path: Path, mariadb: MariaDB, source_db: str, passphrase: str, url_args, message
) -> None:
    dest = tmp_path / "backups"
    url = mariadb.url(url_args.get("database", source_db), url_args.get("password", MY_PASSWORD))
    r = cli("backup", url, "--to", dest)
    assert r.code == 3
    assert message in r.err and "wrong-password" not in r.err
    assert not dest.exists() or not any(dest.iterdir())


def test_dump_without_its_trailer_fails(
    cli, tmp_path: Path, mariadb: MariaDB, source_db: str, passphrase: str, fake_bin
) -> None:
    real = real_tool("mariadb-dump")
    # Exits 0, but the dump stops before "-- Dump completed": a truncated dump.
    fake_bin("mariadb-dump", f'{real} "$@" | head -n -3\n')
    dest = tmp_path / "backups"
    r = cli("backup", mariadb.url(source_db), "--to", dest)
    assert r.code == 3
    assert "completion line" in r.err
    assert not any(p.name == "manifest.json" for p in dest.rglob("*"))


def test_restore_refuses_a_non_empty_database(
    cli, tmp_path: Path, mariadb: MariaDB, source_db: str, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", mariadb.url(source_db), "--to", dest).code == 0
    r = cli("restore", dest, "--into", mariadb.url(source_db))
    assert r.code == 2 and "not empty" in r.err


def test_drill(cli, tmp_path: Path, mariadb: MariaDB, source_db: str, passphrase: str) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", mariadb.url(source_db), "--to", dest).code == 0
    r = cli("drill", dest, "--into", mariadb.url(f"scratch_{uuid.uuid4().hex[:8]}"), "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["entries"][0]["tables"] == 3
    assert report["entries"][0]["checks"] == ["rows per table", "CHECK TABLE"]


def test_force_over_data_applies_nothing_of_a_corrupt_entry(
    cli, tmp_path: Path, mariadb: MariaDB, source_db: str
) -> None:
    """SPEC §7: the SQL client runs statements as it reads them, so over a database that
    holds data the whole entry is checked before the first statement reaches it."""
    dest = tmp_path / "backups"
    assert cli("backup", mariadb.url(source_db), "--to", dest, "--no-encrypt",
               "--compress", "none").code == 0  # fmt: skip
    stored = next(p for p in next(dest.iterdir()).iterdir() if p.name.endswith(".sql"))
    data = bytearray(stored.read_bytes())
    data[len(data) * 3 // 4] ^= 0x20  # late in the dump: the DROP TABLEs come first
    stored.write_bytes(bytes(data))
    target = make_db(mariadb, rows=10)
    before = content(mariadb, target)
    r = cli("restore", dest, "--into", mariadb.url(target), "--force")
    assert r.code == 1 and "checksum mismatch" in r.err
    assert content(mariadb, target) == before  # not one statement ran


def test_an_unencrypted_entry_runs_no_statement_before_its_checksum_holds(
    cli, tmp_path: Path, mariadb: MariaDB, source_db: str
) -> None:
    """SPEC §7: into a new database too, an unencrypted entry is checked before the first
    statement: a dropped database would not undo what ran outside it."""
    dest = tmp_path / "backups"
    assert cli("backup", mariadb.url(source_db), "--to", dest, "--no-encrypt",
               "--compress", "none").code == 0  # fmt: skip
    (stored,) = dest.glob("*/*.sql")
    side = f"planted_{uuid.uuid4().hex[:8]}"
    stored.write_bytes(f"CREATE DATABASE {side};\n".encode() + stored.read_bytes())
    target = f"restored_{uuid.uuid4().hex[:8]}"
    r = cli("restore", dest, "--into", mariadb.url(target))
    assert r.code == 1 and "checksum mismatch" in r.err, r.err
    databases = mariadb.root_sql("SHOW DATABASES;").split()
    assert side not in databases, "a statement of the planted entry ran"
    assert target not in databases
