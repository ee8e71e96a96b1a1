"""Each guide's commands, run as written (issue 34): the shell blocks of every page under
``docs/guides/`` and the Getting started page, against the real servers the tests start.
The addresses a guide writes as examples come in by the variables it names
(``$DATABASE_URL``, ``$REGISTRY``), as a reader's own would."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from tests.conftest import batch_gnupg_home, sqlite_content
from tests.db.test_pitr import Archiving, archiving, moment_between_writes
from tests.docs.pages import DOCS, blocks, run_page, runnable
from tests.servers import PG_PASSWORD, Postgres, _as_user, free_port, pg_bin

__all__ = ["archiving"]  # the fixture, shared with tests/db/test_pitr.py

# every page a reader follows step by step, and the test file that runs its commands
# (where a guide needs the fixtures of a folder of its own: the fake GitHub, a registry)
GUIDES = {
    "getting-started.md": "tests/docs/test_guides.py",
    "guides/databases.md": "tests/docs/test_guides.py",
    "guides/point-in-time.md": "tests/docs/test_guides.py",
    "guides/files.md": "tests/docs/test_guides.py",
    "guides/incremental.md": "tests/docs/test_guides.py",
    "guides/monitoring.md": "tests/docs/test_guides.py",
    "guides/server.md": "tests/docs/test_guides.py",
    "guides/actions.md": "tests/docs/test_guides.py",
    "guides/repositories.md": "tests/git/test_guides.py",
    "guides/restore-into-github.md": "tests/git/test_guides.py",
    "guides/images.md": "tests/oci/test_guides.py",
}


def test_every_guide_has_commands_a_test_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    pages = {"getting-started.md", *(p.relative_to(DOCS).as_posix()
                                     for p in (DOCS / "guides").glob("*.md"))}  # fmt: skip
    assert set(GUIDES) == pages, "a guide no test runs"
    for page in pages:
        assert runnable(page), f"{page}: not one block runs"
        assert f'"{page}"' in (root / GUIDES[page]).read_text(), (page, GUIDES[page])
        for block in blocks(page):
            if block.run_by:  # a test of its own runs it: that test names the page
                assert page in (root / block.run_by).read_text(), (page, block.run_by)


def test_getting_started(tmp_path: Path) -> None:
    run_page("getting-started.md", tmp_path)
    restored = tmp_path / "first" / "restored"
    with sqlite3.connect(restored / "app.sqlite") as db:
        assert db.execute("SELECT body FROM notes").fetchall() == [("hello",)]
    assert (restored / "uploads" / "readme.txt").read_text() == "a file worth keeping\n"


def test_databases(tmp_path: Path, pg: Postgres) -> None:
    for name in ("shop", "shop_restored", "shop_drill"):
        pg.sql("postgres", f"DROP DATABASE IF EXISTS {name};")
    pg.sql("postgres", "CREATE DATABASE shop;")
    pg.sql("shop", "CREATE TABLE orders (id int PRIMARY KEY, note text);"
                   "INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 500) g;")  # fmt: skip
    done = run_page("guides/databases.md", tmp_path, {
        "DATABASE_URL": pg.url("shop"), "RESTORE_URL": pg.url("shop_restored"),
        "DRILL_URL": pg.url("shop_drill"),
    })  # fmt: skip
    assert pg.sql("shop_restored", "SELECT count(*), max(note) FROM orders;").split() == [
        "500|order",
        "99",
    ]
    assert "drill passed; measured restore time (RTO)" in done.stdout


def test_point_in_time(tmp_path: Path, archiving: Archiving) -> None:
    """Base backup, restore to a moment as the data directory's owner, start beside
    production, read the rows of that moment; then the checks, and a WAL file by hand."""
    pg, dest, secret = archiving.pg, archiving.dest, archiving.secret
    examples = {"s3://backups/pitr": str(dest), "/etc/offsite/passphrase": str(secret)}
    pg.sql("postgres", "CREATE DATABASE shop;")
    pg.sql("shop", "CREATE TABLE orders (id int, note text);"
                   "INSERT INTO orders SELECT g, 'before the base backup' FROM generate_series(1, 100) g;")  # fmt: skip
    base = {"postgresql://backup@db.example.com/postgres": pg.url("postgres"), **examples}
    run_page("guides/point-in-time.md", tmp_path, replace=base, only=slice(0, 1))
    moment = moment_between_writes(pg)

    datadir, port = archiving.work / "restored", free_port()
    as_postgres = " ".join(_as_user("postgres")) or "env"  # sudo -u postgres, as root too
    cache = archiving.work / "guide-cache"  # the postgres user's offsite cache, not its home's
    try:
        done = run_page("guides/point-in-time.md", tmp_path, {
            "APP_PASSWORD": PG_PASSWORD, "XDG_CACHE_HOME": str(cache),
        }, replace={
            # root's offsite is out of the postgres user's reach here (a root-only Python):
            # the server runs the copy it can (the guide's --server-offsite)
            **examples, "sudo /opt/offsite/bin/offsite restore": f"offsite restore --server-offsite {archiving.program}",
            "sudo -u postgres /usr/lib/postgresql/15/bin/pg_ctl": f"{as_postgres} {pg_bin('pg_ctl')}",
            "/var/lib/postgresql/15/restored": str(datadir), "2026-11-26T14:05:00Z": moment,
            "5433": str(port), "PGUSER=app": "PGUSER=offsite",
        }, only=slice(1, 2))  # fmt: skip
        assert re.search(r"^\s*200$", done.stdout, re.M), done.stdout  # the rows of T
    finally:
        subprocess.run([*_as_user("postgres"), pg_bin("pg_ctl") or "pg_ctl", "-D", str(datadir),
                        "-m", "immediate", "-w", "stop"], capture_output=True)  # fmt: skip
    run_page("guides/point-in-time.md", tmp_path, replace=examples, only=slice(2, 3))

    system_id = next((dest / "wal").iterdir())
    segment = sorted(p.name for p in system_id.glob("0*.zst.gpg"))[0].split(".")[0]
    run_page("guides/point-in-time.md", tmp_path,
             {"GNUPGHOME": str(batch_gnupg_home(tmp_path, None))},
             replace={"wal/<system id>": str(system_id), "<file>": segment}, only=slice(3, 4))  # fmt: skip
    assert (tmp_path / segment).stat().st_size == 16 << 20  # a whole WAL segment


def test_files(tmp_path: Path) -> None:
    done = run_page("guides/files.md", tmp_path)
    assert (tmp_path / "restored" / "www" / "uploads" / "photo.jpg").read_text() == "a photo\n"
    assert "debug = false" in done.stdout and "left out, as asked" in done.stdout


def test_incremental(tmp_path: Path) -> None:
    done = run_page("guides/incremental.md", tmp_path)
    assert "diff of" in done.stdout
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == ["b.txt", "numbers.txt"]
    diff = sorted((tmp_path / "backups").iterdir())[-1]
    assert sum(p.stat().st_size for p in diff.iterdir()) < 20_000  # numbers.txt not again


def test_monitoring(tmp_path: Path) -> None:
    done = run_page("guides/monitoring.md", tmp_path)
    assert "drill passed" in done.stdout and "healthy" in done.stdout
    assert "offsite_drill_success" in done.stdout
    assert "passed, RTO" in (tmp_path / "status.html").read_text()  # the drill, against the RTO


def test_server(tmp_path: Path) -> None:
    done = run_page("guides/server.md", tmp_path)
    assert "1 kept" in done.stdout and "entries ok" in done.stdout
    assert "healthy" in done.stdout
    sets = [p for p in (tmp_path / "backups").iterdir() if p.name[0].isdigit()]
    assert len(sets) == 1


def test_actions(cli, tmp_path: Path, sqlite_db: Path, passphrase: str) -> None:
    """The runbook's commands on a folder laid out as ``gh run download -n backup-ID``
    writes it: the set's files, manifest.json at its root."""
    assert cli("backup", f"sqlite:{sqlite_db}", "--to", tmp_path / "sets").code == 0
    (only,) = (tmp_path / "sets").iterdir()
    shutil.copytree(only, tmp_path / "restore")
    run_page("guides/actions.md", tmp_path, {
        "OFFSITE_PASSPHRASE": passphrase, "RESTORE_URL": f"sqlite:///{tmp_path}/app.db",
    })  # fmt: skip
    assert sqlite_content(tmp_path / "app.db") == sqlite_content(sqlite_db)
