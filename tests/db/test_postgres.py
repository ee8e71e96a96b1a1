"""PostgreSQL against a throwaway server: round trips, standard tools, secrets, failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import batch_gnupg_home, only_set
from tests.db.conftest import manifest_of, run_watching_ps
from tests.servers import PG_PASSWORD, Postgres, pg_bin

SCHEMA = """
CREATE SCHEMA sales;
CREATE SCHEMA "Audit Log";
CREATE TABLE sales.orders (
    id bigserial PRIMARY KEY,
    customer text NOT NULL,
    items jsonb,
    tags text[],
    receipt bytea,
    total numeric(12, 2),
    placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE "Audit Log"."order events" (id serial PRIMARY KEY, order_id bigint, note text);
CREATE TABLE public.empty_table (x int);
CREATE SEQUENCE sales.invoice_no START 1000;
CREATE VIEW sales.big_orders AS SELECT id, total FROM sales.orders WHERE total > 500;
CREATE FUNCTION sales.with_tax(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE
    AS 'SELECT round($1 * 1.2, 2)';
CREATE FUNCTION sales.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "Audit Log"."order events" (order_id, note) VALUES (NEW.id, 'created');
    RETURN NEW;
END $$;
CREATE TRIGGER orders_audit AFTER INSERT ON sales.orders
    FOR EACH ROW EXECUTE FUNCTION sales.audit();
"""

DATA = """
INSERT INTO sales.orders (customer, items, tags, receipt, total, placed_at)
SELECT 'customer ' || g || E' with \\ backslash, tab\\t and newline\\n',
       jsonb_build_object('sku', g, 'qty', g % 7, 'nested', jsonb_build_array(g, 'x')),
       ARRAY['tag' || g % 5, 'ünïcødé'],
       decode(md5(g::text), 'hex') || '\\x00ff'::bytea,
       (g * 13.37)::numeric(12, 2),
       timestamptz '2024-02-16 15:00:00+00' + g * interval '1 minute'
FROM generate_series(1, {rows}) AS g;
SELECT nextval('sales.invoice_no') FROM generate_series(1, 5);
SELECT lo_from_bytea(424242, convert_to('a large object: ' || repeat('x', 10000), 'UTF8'));
"""

TABLES = r"""
SELECT format('SELECT %L, md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), ''''))
               FROM %I.%I t', n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1 \gexec
"""
CONTENT = (
    TABLES
    + r"""
SELECT 'sequence', last_value FROM sales.invoice_no;
SELECT 'large object', md5(lo_get(424242));
SELECT 'view', count(*) FROM sales.big_orders;
SELECT 'function', sales.with_tax(100);
SELECT 'trigger', tgname FROM pg_trigger WHERE NOT tgisinternal;
"""
)


def make_db(pg: Postgres, rows: int = 2000) -> str:
    name = f"src_{uuid.uuid4().hex[:8]}"
    pg.sql("postgres", f"CREATE DATABASE {name};")
    pg.sql(name, SCHEMA + DATA.format(rows=rows))
    return name


def content(pg: Postgres, database: str) -> list[str]:
    return pg.sql(database, CONTENT).splitlines()


def new_name() -> str:
    return f"restored_{uuid.uuid4().hex[:8]}"


def exists(pg: Postgres, database: str) -> bool:
    return (
        pg.sql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{database}'")
        == "1\n"
    )


@pytest.fixture(scope="module")
def source_db(pg: Postgres) -> str:
    return make_db(pg)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_round_trip_into_a_new_database(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str, jobs: str
) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", pg.url(source_db), "--to", dest)
    assert r.code == 0, r.err
    entry = manifest_of(dest)["entries"][0]
    assert entry["kind"] == "postgresql" and entry["file"].endswith(".pgdump.zst.gpg")
    assert entry["stats"]["rows"] == {
        "Audit Log.order events": 2000, "public.empty_table": 0, "sales.orders": 2000,
    }  # fmt: skip
    assert PG_PASSWORD not in json.dumps(entry) and "***" in entry["source"]

    target = new_name()
    r = cli("restore", dest, "--into", pg.url(target), "--jobs", jobs)
    assert r.code == 0, r.err
    assert content(pg, target) == content(pg, source_db)
    # The trigger works in the restored database, not only exists.
    pg.sql(target, "INSERT INTO sales.orders (customer) VALUES ('after restore');")
    assert pg.sql(target, 'SELECT count(*) FROM "Audit Log"."order events"') == "2001\n"


def test_without_jobs_a_new_database_gets_a_worker_per_core_an_existing_one_a_transaction(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The backup records where each table's data starts (so a parallel restore walks no
    chunks to find it); a restore without --jobs loads a database it creates with one
    worker per core, and an existing one in one transaction, streamed."""
    from offsite.sources.postgres import dump as pg_dump

    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source_db), "--to", dest).code == 0
    offsets = manifest_of(dest)["entries"][0]["stats"]["data_offsets"]
    assert len(offsets) >= 3 and list(offsets.values()) == sorted(offsets.values())
    staged: list[int] = []
    real = pg_dump.StagedRestore

    def spy(*args: object, **kwargs: object) -> object:
        staged.append(int(args[4]))  # type: ignore[call-overload]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pg_dump, "StagedRestore", spy)
    monkeypatch.setattr(pg_dump, "default_jobs", lambda: 3)
    target = new_name()
    r = cli("restore", dest, "--into", pg.url(target))
    assert r.code == 0, r.err
    assert staged == [3] and content(pg, target) == content(pg, source_db)
    existing = new_name()
    pg.sql("postgres", f"CREATE DATABASE {existing};")
    r = cli("restore", dest, "--into", pg.url(existing))
    assert r.code == 0, r.err
    assert staged == [3] and content(pg, existing) == content(pg, source_db)
    r = cli("restore", "--help")
    assert "one per core into a database the restore creates" in " ".join(r.out.split())
    # a TMPDIR too small for the decoded dump: the default streams, saying why; --jobs N
    # is refused before anything is created
    full = shutil.disk_usage(tempfile.gettempdir())._replace(free=1 << 20)
    monkeypatch.setattr(pg_dump.shutil, "disk_usage", lambda _folder: full)
    small = new_name()
    r = cli("restore", dest, "--into", pg.url(small))
    assert r.code == 0, r.err
    assert staged == [3] and "in one transaction" in r.err and "1.0 MiB free" in r.err
    other = new_name()
    r = cli("restore", dest, "--into", pg.url(other), "--jobs", "2")
    assert r.code == 2 and "--jobs 1" in r.err.splitlines()[-1]
    assert (
        pg.sql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{other}'") == "0\n"
    )


def test_a_parallel_restore_gives_back_the_staged_bytes_its_loaders_have_sent(
    cli, tmp_path: Path, pg: Postgres, passphrase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """restore --jobs stages the decoded dump in TMPDIR, and the bytes every loader has
    sent are given back as it goes (holes punched): TMPDIR holds what the loaders have not
    reached, not the whole dump, and the restored tables are whole."""
    from offsite.sources.postgres import parallel, staging

    database = make_db(pg, rows=200_000)
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(database), "--to", dest).code == 0
    monkeypatch.setattr(staging, "BEHIND", 256 << 10)
    held: list[tuple[int, int]] = []
    real = parallel.StagedRestore.finish

    def finish(self: parallel.StagedRestore) -> None:
        st = os.stat(self.path)
        held.append((st.st_size, st.st_blocks * 512))
        real(self)

    monkeypatch.setattr(parallel.StagedRestore, "finish", finish)
    target = new_name()
    r = cli("restore", dest, "--into", pg.url(target), "--jobs", "2")
    assert r.code == 0, r.err
    assert content(pg, target) == content(pg, database)
    [(size, allocated)] = held
    assert size > 8 << 20 and allocated < size // 4, (size, allocated)


def test_standard_tools_restore(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source_db), "--to", dest).code == 0
    stored = next(p for p in dest.iterdir() if p.is_dir())
    entry = manifest_of(dest)["entries"][0]
    target = new_name()
    pg.sql("postgres", f"CREATE DATABASE {target};")
    work = tmp_path / "by-hand"
    work.mkdir()
    shutil.copy(stored / entry["file"], work)
    shutil.copy(stored / "key.gpg", work)  # the set's data key, wrapped
    env = {
        **os.environ,
        "GNUPGHOME": str(batch_gnupg_home(tmp_path, None)),
        "DATABASE_URL": pg.url(target),
        "PATH": f"{Path(pg_bin('pg_restore') or 'pg_restore').parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(["bash", "-c", "set -euo pipefail; " + entry["restore_hint"]],
                          cwd=work, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, (entry["restore_hint"], done.stderr)
    assert content(pg, target) == content(pg, source_db)


def test_password_never_in_ps_log_or_manifest(tmp_path: Path, pg: Postgres) -> None:
    big = make_db(pg, rows=150_000)
    dest = tmp_path / "backups"
    watched = run_watching_ps(
        pg.url(big), ["--to", str(dest)], PG_PASSWORD,
        ("pg_dump", "pg_restore"), {"OFFSITE_PASSPHRASE": "x"},
    )  # fmt: skip
    assert watched.code == 0, watched.err
    assert "pg_dump" in watched.tools_seen, "the watcher never saw the dump run"
    assert watched.leaks == []
    assert PG_PASSWORD not in watched.out + watched.err
    assert PG_PASSWORD not in (next(dest.iterdir()) / "manifest.json").read_text()


def test_wrong_password_is_exit_3_without_a_set(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", pg.url(source_db, password="not-the-password"), "--to", dest)
    assert r.code == 3
    assert "password authentication failed" in r.err
    assert "not-the-password" not in r.err
    assert not dest.exists() or not any(dest.iterdir())


def test_missing_database_is_exit_3(cli, tmp_path: Path, pg: Postgres, passphrase: str) -> None:
    dest = tmp_path / "backups"
    r = cli("backup", pg.url("no_such_db"), "--to", dest)
    assert r.code == 3
    assert 'database "no_such_db" does not exist' in r.err
    assert not dest.exists() or not any(dest.iterdir())


def test_truncated_dump_fails_the_self_check(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str, fake_bin
) -> None:
    real = pg_bin("pg_dump")
    # A pg_dump that exits 0 after writing only the first 20 kB of a good dump.
    fake_bin("pg_dump", f'case "$1" in --version) exec {real} --version;; esac\n'
                        f'{real} "$@" | head -c 20000\n')  # fmt: skip
    dest = tmp_path / "backups"
    r = cli("backup", pg.url(source_db), "--to", dest)
    assert r.code == 3
    assert "self-check failed: it ends inside" in r.err, r.err
    assert not any(p.name == "manifest.json" for p in dest.rglob("*"))


def test_older_pg_dump_than_server_is_exit_2_naming_the_package(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str, fake_bin
) -> None:
    # A server that says it is PostgreSQL 99, reached by a psql 99.
    fake_bin(
        "psql", 'case "$1" in --version) echo "psql (PostgreSQL) 99.0";; *) echo 990000;; esac\n'
    )
    r = cli("backup", pg.url(source_db), "--to", tmp_path / "backups")
    assert r.code == 2
    assert "postgresql-client-99" in r.err


@pytest.mark.slow  # starts and kills a server of its own
def test_server_killed_mid_dump_is_exit_3(cli, tmp_path: Path, passphrase: str) -> None:
    own = Postgres()  # this test kills its server
    try:
        big = make_db(own, rows=300_000)
        dest = tmp_path / "backups"

        def kill_when_dumping() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                # the dump's own file (key.gpg, the wrapped data key, comes before it)
                if any(p.stat().st_size > 0 for p in dest.rglob("*.pgdump*") if p.is_file()):
                    own.stop("immediate")
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_dumping)
        killer.start()
        r = cli("backup", own.url(big), "--to", dest)
        killer.join()
        assert r.code == 3, r.err
        assert "pg_dump" in r.err or "pg_restore" in r.err
        assert not any(p.name == "manifest.json" for p in dest.rglob("*"))
        assert not [p for p in dest.rglob("*") if p.is_file()], "a partial entry was left behind"
    finally:
        own.close()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_non_empty_target_needs_force(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str, jobs: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source_db), "--to", dest).code == 0
    target = new_name()
    pg.sql("postgres", f"CREATE DATABASE {target};")
    pg.sql(target, "CREATE TABLE precious (x int); INSERT INTO precious VALUES (1);")
    r = cli("restore", dest, "--into", pg.url(target))
    assert r.code == 2 and "not empty" in r.err
    assert pg.sql(target, "SELECT count(*) FROM precious") == "1\n"
    r = cli("restore", dest, "--into", pg.url(target), "--force", "--jobs", jobs)
    assert r.code == 0, r.err
    # What the backup holds replaces what was there; objects it does not hold stay.
    restored = [line for line in content(pg, target) if not line.startswith("public.precious|")]
    assert restored == content(pg, source_db)


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR for this test alone, to see what a restore leaves there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_failed_restore_drops_the_database_it_created(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str, jobs: str, staging: Path
) -> None:
    """With --jobs the data is loaded while the entry still arrives; a checksum that
    turns out wrong at its end drops the database all the same."""
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source_db), "--to", dest).code == 0
    stored = next(p for p in dest.iterdir() if p.is_dir())
    file = next(
        p
        for p in stored.iterdir()
        if p.name not in ("manifest.json", "key.gpg") and not p.name.startswith(".")
    )
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    target = new_name()
    r = cli("restore", dest, "--into", pg.url(target), "--jobs", jobs)
    assert r.code == 1 and "checksum mismatch" in r.err
    assert not exists(pg, target)
    assert list(staging.iterdir()) == []


def test_a_table_failing_to_load_in_parallel_fails_the_restore_cleanly(
    cli, tmp_path: Path, pg: Postgres, passphrase: str, staging: Path
) -> None:
    """One of the parallel loaders fails (here a domain check that refuses rows in a
    database of another name): one clear line, the new database dropped, nothing staged
    left behind."""
    source = make_db(pg)
    pg.sql(source, """
        CREATE DOMAIN local_only AS int CHECK (current_database() NOT LIKE 'doomed%');
        CREATE TABLE guarded (x local_only);
        INSERT INTO guarded SELECT generate_series(1, 5000);
    """)  # fmt: skip
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source), "--to", dest).code == 0
    target = "doomed_" + uuid.uuid4().hex[:8]
    r = cli("restore", dest, "--into", pg.url(target), "--jobs", "2")
    assert r.code == 3, r.err
    assert "local_only" in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not exists(pg, target)
    assert list(staging.iterdir()) == []


def test_many_tables_with_foreign_keys_restore_in_parallel(
    cli, tmp_path: Path, pg: Postgres, passphrase: str
) -> None:
    """Small tables are loaded several to a pg_restore, keys are built as soon as their
    table is loaded, and the foreign keys between them are added and valid at the end."""
    source = f"src_{uuid.uuid4().hex[:8]}"
    pg.sql("postgres", f"CREATE DATABASE {source};")
    tables = [
        "CREATE TABLE t0 (id int PRIMARY KEY, note text);",
        "INSERT INTO t0 SELECT g, md5(g::text) FROM generate_series(1, 300) g;",
    ]
    for n in range(1, 40):
        tables += [
            f"CREATE TABLE t{n} (id int PRIMARY KEY, up int REFERENCES t{n - 1}, note text);",
            f"CREATE INDEX t{n}_note ON t{n} (note);",
            f"INSERT INTO t{n} SELECT g, g, md5(g::text) FROM generate_series(1, 300) g;",
        ]
    pg.sql(source, "\n".join(tables))
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source), "--to", dest).code == 0
    target = new_name()
    r = cli("restore", dest, "--into", pg.url(target), "--jobs", "3")
    assert r.code == 0, r.err
    assert pg.sql(target, TABLES) == pg.sql(source, TABLES)
    constraints = (
        "SELECT contype, count(*), bool_and(convalidated) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace GROUP BY 1 ORDER BY 1"
    )
    assert pg.sql(target, constraints) == pg.sql(source, constraints) == "f|39|t\np|40|t\n"
    indexes = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
    assert pg.sql(target, indexes) == pg.sql(source, indexes) == "79\n"


def test_drill_passes_then_catches_a_row_count_mismatch(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str
) -> None:
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source_db), "--to", dest).code == 0
    r = cli("drill", dest, "--into", pg.url(new_name()))
    assert r.code == 0, r.err
    assert "drill passed" in r.out and "RTO" in r.out

    # the set's folder (the drill wrote its record beside it, under drills/)
    manifest = next(p / "manifest.json" for p in dest.iterdir() if (p / "manifest.json").exists())
    doc = json.loads(manifest.read_text())
    doc["entries"][0]["stats"]["rows"]["sales.orders"] = 2001
    manifest.write_text(json.dumps(doc))
    # the edit breaks the manifest's auth; accepted here to reach the drill's own check
    r = cli("drill", dest, "--into", pg.url(new_name()), "--json", "--allow-unauthenticated")
    assert r.code == 1
    report = json.loads(r.out)
    assert report["ok"] is False
    assert report["entries"][0]["mismatches"] == [
        "table sales.orders: 2000 rows, manifest says 2001"
    ]


def test_pg_globals_entry_brings_back_roles(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str
) -> None:
    pg.sql("postgres", "CREATE ROLE offsite_reader NOLOGIN;")
    dest = tmp_path / "backups"
    r = cli("backup", pg.url(source_db), "--pg-globals", "--to", dest)
    assert r.code == 0, r.err
    files = {e["name"]: e["file"] for e in manifest_of(dest)["entries"]}
    assert files == {source_db: f"{source_db}.pgdump.zst.gpg",
                     f"{source_db}-globals": f"{source_db}-globals.sql.zst.gpg"}  # fmt: skip

    pg.sql("postgres", "DROP ROLE offsite_reader;")
    r = cli("restore", dest, "--entry", f"{source_db}-globals", "--into", pg.url("postgres"))
    assert r.code == 0, r.err
    assert (
        pg.sql("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = 'offsite_reader'")
        == "1\n"
    )


def test_pg_globals_without_a_postgres_source_is_exit_2(
    cli, tmp_path: Path, sqlite_db: Path, passphrase: str
) -> None:
    r = cli("backup", f"sqlite:{sqlite_db}", "--pg-globals", "--to", tmp_path / "backups")
    assert r.code == 2 and "--pg-globals" in r.err


def test_requirements_names_the_client_matching_the_server(
    cli, pg: Postgres, source_db: str, fake_bin
) -> None:
    r = cli("requirements", pg.url(source_db))
    assert r.code == 0 and "postgresql-client" not in r.out, r.err  # this machine's is new enough
    fake_bin(
        "psql", 'case "$1" in --version) echo "psql (PostgreSQL) 99.0";; *) echo 990000;; esac\n'
    )
    r = cli("requirements", pg.url(source_db))
    assert r.code == 0 and r.out.split() == ["postgresql-client-99"]


def test_requirements_covers_what_backup_covers(
    cli, pg: Postgres, source_db: str, fake_bin, tmp_path: Path
) -> None:
    """--name, --exec, --pg-globals and --shard select as backup does (one selection)."""
    fake_bin(
        "psql", 'case "$1" in --version) echo "psql (PostgreSQL) 99.0";; *) echo 990000;; esac\n'
    )
    r = cli("requirements", "--name", f"shop={pg.url(source_db)}", "--exec", "v=echo 1")
    assert r.code == 0 and r.out.split() == ["postgresql-client-99"], r.err
    config = tmp_path / "offsite.yml"
    names = ["a", "b", "c", "d", "e", "f"]
    lines = [f"  - {{name: {n}, exec: 'echo {n}'}}" for n in names]
    lines.append(f"  - {{name: shop, url: '{pg.url(source_db)}', pg-globals: true}}")
    config.write_text("sources:\n" + "\n".join(lines) + "\n")
    from offsite.shards import share

    mine = next(i for i in (1, 2) if "shop" in share([*names, "shop"], i, 2))
    r = cli("requirements", "--config", config, "--shard", f"{mine}/2")
    assert r.code == 0 and r.out.split() == ["postgresql-client-99"], r.err
    r = cli("requirements", "--config", config, "--shard", f"{3 - mine}/2")
    assert r.code == 0 and r.out.split() == [], r.err  # the other share needs no client


def test_requirements_of_a_restore_name_the_client_of_the_server_the_dump_came_from(
    cli, pg: Postgres, source_db: str, tmp_path: Path
) -> None:
    """The actions install it before restore and drill: a dump of a newer server than the
    runner's client does not restore (issue 21)."""
    dest = tmp_path / "dest"
    assert cli("backup", "--name", f"shop={pg.url(source_db)}", "--to", dest,
               "--no-encrypt").code == 0  # fmt: skip
    r = cli("requirements", "--restore", dest)
    assert r.code == 0 and r.out.split() == [], r.err  # this machine's pg_restore will do
    manifest = only_set(dest) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["entries"][0]["stats"]["server_major"] = 99  # as if a PostgreSQL 99 made it
    manifest.write_text(json.dumps(data))
    r = cli("requirements", "--restore", dest, "--entry", "shop")
    assert r.code == 0 and r.out.split() == ["postgresql-client-99"], r.err
    r = cli("requirements", "--restore", dest, "--entry", "other")
    assert r.code == 0 and r.out.split() == []
    r = cli("requirements", "--restore", dest, "--id", "20000101T000000Z")
    assert r.code == 2 and "no set 20000101T000000Z" in r.err


@pytest.mark.parametrize("compress", ["none", "zlib"])
def test_a_plain_packet_in_place_of_the_entry_never_reaches_the_database(
    cli, tmp_path: Path, pg: Postgres, source_db: str, passphrase: str, compress: str
) -> None:
    """gpg --decrypt prints a literal packet (``gpg --store``) as if it had decrypted it.
    An entry replaced by a whole, valid dump packed that way must fail before pg_restore
    reads a byte: streamed into an existing empty database, it would be committed before
    the checksum's mismatch is known."""
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source_db), "--to", dest).code == 0
    (entry,) = dest.glob("*/*.pgdump.zst.gpg")
    dumped = subprocess.run(
        f"{pg_bin('pg_dump')} -Fc -Z0 -d '{pg.url(source_db)}' | zstd -q -c",
        shell=True, capture_output=True, check=True,
    ).stdout  # fmt: skip
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    entry.write_bytes(subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--store", "--compress-algo", compress,
         "-o", "-"], input=dumped, capture_output=True, check=True,
    ).stdout)  # fmt: skip
    target = new_name()
    pg.sql("postgres", f"CREATE DATABASE {target};")  # empty: no --force needed
    r = cli("restore", dest, "--into", pg.url(target))
    assert r.code != 0
    tables = pg.sql(target, "SELECT count(*) FROM pg_tables WHERE schemaname <> 'pg_catalog' "
                            "AND schemaname <> 'information_schema';")  # fmt: skip
    assert tables == "0\n", "the planted dump reached the database"


EVIL = """
CREATE FUNCTION public.evil(x int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_database() <> '{source}' THEN  -- only where the planted dump is restored
        EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch {marker}');
    END IF;
    RETURN true;
END $$;
CREATE TABLE public.victim (x int CHECK (public.evil(x)));
INSERT INTO public.victim VALUES (1), (2);
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_unencrypted_entry_runs_no_statement_before_its_checksum_holds(
    cli, tmp_path: Path, pg: Postgres, source_db: str, jobs: str, staging: Path
) -> None:
    """SPEC §7: an unencrypted entry's stored bytes are staged and checked before the
    first statement. A planted dump whose CHECK constraint runs a shell command (COPY …
    TO PROGRAM, as the server's superuser) in place of the real entry runs nothing."""
    dest = tmp_path / "backups"
    assert cli("backup", pg.url(source_db), "--to", dest, "--no-encrypt").code == 0
    (entry,) = dest.glob("*/*.pgdump.zst")
    marker = Path(tempfile.gettempdir()) / f"offsite-evil-{uuid.uuid4().hex}"
    evil = f"evil_{uuid.uuid4().hex[:8]}"
    pg.sql("postgres", f"CREATE DATABASE {evil};")
    pg.sql(evil, EVIL.format(source=evil, marker=marker))
    entry.write_bytes(subprocess.run(
        f"{pg_bin('pg_dump')} -Fc -Z0 -d '{pg.url(evil)}' | zstd -q -c",
        shell=True, capture_output=True, check=True,
    ).stdout)  # fmt: skip
    target = new_name()
    try:
        r = cli("restore", dest, "--into", pg.url(target), "--jobs", jobs)
        assert r.code == 1 and "checksum mismatch" in r.err, r.err
        assert not marker.exists(), "a statement of the planted dump ran"
        assert not exists(pg, target)
        assert list(staging.iterdir()) == []
    finally:
        marker.unlink(missing_ok=True)
