"""Point-in-time recovery against a real PostgreSQL whose archive_command is offsite's
``wal push``: base backups, the archive's guarantees, and recovery to a time."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from offsite.sources.postgres.basecheck import BaseBackupCheck, TarError
from tests.conftest import PASSPHRASE
from tests.servers import (
    PG_PASSWORD,
    Postgres,
    _as_user,
    _workdir,
    free_port,
    pg_bin,
    server_env,
)

OFFSITE = Path(sys.executable).with_name("offsite")


def server_offsite(work: Path) -> str:
    """The offsite the postgres user can run: this one, or, where this interpreter or this
    checkout is out of its reach (a root-only pyenv, a clone in a private folder), a copy
    of what ``wal push`` and ``wal fetch`` import, run by the system's Python of the same
    version (the C extensions need it)."""
    if subprocess.run([*_as_user("postgres"), str(OFFSITE), "--version"],
                      capture_output=True).returncode == 0:  # fmt: skip
        return str(OFFSITE)
    system = shutil.which("python3", path="/usr/bin")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    same = f"import sys; assert '%d.%d' % sys.version_info[:2] == '{version}'"
    if system is None or subprocess.run([system, "-c", same], capture_output=True).returncode:
        pytest.skip(f"the postgres user cannot run {OFFSITE} nor a system Python {version}")
    lib = work / "lib"
    lib.mkdir()
    import click
    import gnupg
    import zstandard

    import offsite

    for module in (offsite, click, zstandard):
        source = Path(module.__file__ or "").parent
        shutil.copytree(source, lib / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(gnupg.__file__ or "", lib)
    wrapper = work / "offsite"
    # -P: never import from the current folder (the data directory PostgreSQL runs it in)
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={lib} exec {system} -P -m offsite "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@dataclass
class Archiving:
    pg: Postgres
    dest: Path  # the destination: sets and wal/
    secret: Path  # the passphrase file, as a database host keeps it
    work: Path
    program: str  # the offsite the server's user runs


def _own(path: Path) -> None:
    """Give ``path`` (recursively) to the postgres user the servers run as."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam("postgres")
    for folder, dirs, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


@pytest.fixture(scope="module")
def archiving() -> Iterator[Archiving]:
    """A server archiving every WAL file with ``offsite wal push`` into a folder."""
    if not pg_bin("initdb") or not pg_bin("pg_basebackup"):
        pytest.skip("PostgreSQL's server and pg_basebackup are not installed")
    work = _workdir("offsite-pitr-", "postgres")
    dest, keys = work / "dest", work / "keys"
    dest.mkdir()
    secret = work / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    program = server_offsite(work)
    _own(work)
    push = (f"{program} wal push %p --to {dest} --passphrase-file {secret} "
            f"--key-cache {keys} --async --spool {work / 'spool'}")  # fmt: skip
    pg = Postgres(conf={"archive_mode": "on", "archive_command": push, "wal_level": "replica"})
    try:
        yield Archiving(pg, dest, secret, work, program)
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)


def _archived_through(pg: Postgres, database: str) -> str:
    """Switch to a new WAL file and wait until the one just closed is archived; its name."""
    closed = pg.sql(database, "SELECT pg_walfile_name(pg_switch_wal());").strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = pg.sql(database, "SELECT last_archived_wal, failed_count FROM pg_stat_archiver;")
        last = row.strip().split("|")[0]
        if last and last >= closed:
            return closed
        time.sleep(0.2)
    raise AssertionError(f"{closed} was not archived: {row}")


def moment_between_writes(pg: Postgres) -> str:
    """Rows 101-200 of shop.orders written 'before T', then the server's time T, then rows
    201-300 'after T', archived: a restore to T holds the first 200 rows."""
    pg.sql("shop", "INSERT INTO orders SELECT g, 'before T' FROM generate_series(101, 200) g;")
    time.sleep(1.1)
    moment = _server_time(pg, "shop")
    time.sleep(1.1)
    pg.sql("shop", "INSERT INTO orders SELECT g, 'after T' FROM generate_series(201, 300) g;")
    _archived_through(pg, "shop")
    return moment


def _server_time(pg: Postgres, database: str) -> str:
    return pg.sql(
        database,
        """SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC',
                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');""",
    ).strip()


class Recovered:
    """A server started on a restored data directory, stopped and removed at the end."""

    def __init__(self, datadir: Path, archiving: bool = False) -> None:
        _own(datadir)
        self.datadir, self.port = datadir, free_port()
        self.sockets = _workdir("offsite-pitr-sock-", "postgres")
        opts = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        if not archiving:  # else it archives as the server it came from did
            opts += " -c archive_mode=off"
        done = subprocess.run(
            [*_as_user("postgres"), pg_bin("pg_ctl") or "pg_ctl", "-D", str(datadir), "-o", opts,
             "-l", str(self.sockets / "log"), "-w", "-t", "120", "start"],
            capture_output=True, text=True,
            env={**server_env(self.sockets), "OFFSITE_SPOOL": str(self.sockets / "spool")},
        )  # fmt: skip
        if done.returncode != 0:
            log = self.sockets / "log"
            said = log.read_text(errors="replace")[-3000:] if log.exists() else done.stderr
            raise AssertionError(f"the recovered server did not start:\n{said}")

    def sql(self, database: str, script: str) -> str:
        done = subprocess.run(
            [pg_bin("psql") or "psql", "-X", "-A", "-t", "-q", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", "offsite", "-d", database, "-c", script],
            env={**os.environ, "PGPASSWORD": PG_PASSWORD}, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def promoted(self) -> None:
        deadline = time.monotonic() + 120
        while self.sql("postgres", "SELECT pg_is_in_recovery();").strip() != "f":
            if time.monotonic() > deadline:
                raise AssertionError("recovery did not reach its target")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(
            [*_as_user("postgres"), pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.datadir),
             "-m", "immediate", "-w", "stop"], capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.sockets, ignore_errors=True)


def test_recovers_every_row_before_the_time_and_none_after(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    pg, dest = archiving.pg, archiving.dest
    pg.sql("postgres", "CREATE DATABASE shop;")
    pg.sql("shop", "CREATE TABLE orders (id int, note text);"
                   "INSERT INTO orders SELECT g, 'before the base backup' FROM generate_series(1, 100) g;")  # fmt: skip
    r = cli("backup", pg.url("shop"), "--physical", "--to", dest)
    assert r.code == 0, r.err
    target = moment_between_writes(pg)

    datadir = archiving.work / "recovered"  # where the postgres user may go
    r = cli("restore", dest, "--into", datadir, "--to-time", target,
            "--passphrase-file", archiving.secret,
            "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.err
    assert "pg_ctl -D" in r.out
    assert (datadir / "recovery.signal").exists()
    assert oct(datadir.stat().st_mode & 0o777) == "0o700"
    if os.geteuid() == 0:  # restored as root: the folder is its files' owner's, as they are
        owner = (datadir / "PG_VERSION").stat().st_uid
        assert datadir.stat().st_uid == owner == (datadir / "recovery.signal").stat().st_uid
        assert owner == pwd.getpwnam("postgres").pw_uid
    settings = (datadir / "postgresql.auto.conf").read_text()
    assert "recovery_target_time" in settings and PASSPHRASE not in settings
    server = Recovered(datadir)
    try:
        server.promoted()
        counts = server.sql("shop", "SELECT note, count(*) FROM orders GROUP BY 1 ORDER BY 1;")
        assert counts.splitlines() == ["before T|100", "before the base backup|100"]
    finally:
        server.close()


@pytest.fixture(scope="module")
def base_tar(archiving: Archiving) -> bytes:
    """A base backup as pg_basebackup writes it to standard output."""
    argv = [pg_bin("pg_basebackup") or "pg_basebackup", "-D", "-", "-Ft", "-X", "none",
            "--checkpoint=fast", "--manifest-checksums=SHA256", "-d",
            archiving.pg.url("postgres", password=None)]  # fmt: skip
    env = {**os.environ, "PGPASSWORD": PG_PASSWORD}
    return subprocess.run(argv, env=env, capture_output=True, check=True).stdout


def _checked(data: bytes, piece: int = 7777) -> dict[str, object]:
    check = BaseBackupCheck()
    for at in range(0, len(data), piece):
        check.feed(data[at : at + piece])
    return check.finish()


def test_the_base_backup_check_reads_the_whole_tar(base_tar: bytes, archiving: Archiving) -> None:
    stats = _checked(base_tar)
    sysid = archiving.pg.sql("postgres", "SELECT system_identifier FROM pg_control_system();")
    assert stats["system_id"] == int(sysid)
    assert stats["timeline"] == 1 and stats["wal_included"] is False
    assert 0 < stats["start_lsn"] <= stats["stop_lsn"]  # type: ignore[operator]
    assert abs(stats["stop_time"] - time.time()) < 300  # type: ignore[operator]
    other = _checked(base_tar, 512)  # fed in other pieces: the same but for the clock
    assert other == {**stats, "stop_time": other["stop_time"]}


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.9, 0.999])
def test_any_flipped_byte_or_cut_fails_the_base_backup_check(base_tar: bytes, where: float) -> None:
    at = int(len(base_tar) * where)
    flipped = bytearray(base_tar)
    flipped[at] ^= 0x20
    with pytest.raises(TarError):
        _checked(bytes(flipped))
    with pytest.raises(TarError):
        _checked(base_tar[:at])


def test_a_member_the_manifest_does_not_list_fails_the_check(base_tar: bytes) -> None:
    import io
    import tarfile

    extra = io.BytesIO()
    with tarfile.open(fileobj=extra, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("global/planted")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    member = extra.getvalue()[:1024]  # its header and data, without the end blocks
    with pytest.raises(TarError, match="not in its manifest"):
        _checked(member + base_tar)


def test_a_role_without_replication_is_told_what_to_grant(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    pg = archiving.pg
    pg.sql("postgres", "CREATE ROLE clerk LOGIN PASSWORD 'clerk-pw';")
    url = f"postgresql://clerk:clerk-pw@127.0.0.1:{pg.port}/postgres"
    r = cli("backup", url, "--physical", "--to", tmp_path / "dest")
    assert r.code == 2 and "ALTER ROLE clerk REPLICATION" in r.err


def _base_backup(cli, archiving: Archiving, database: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("backup", archiving.pg.url(database), "--physical", "--to", archiving.dest)
    assert r.code == 0, r.err


def test_verify_wal_prune_and_monitor_read_the_archive(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    pg = archiving.pg
    pg.sql("postgres", "CREATE DATABASE ledger;")
    pg.sql("ledger", "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 1000);")
    _base_backup(cli, archiving, "ledger")
    pg.sql("ledger", "INSERT INTO t SELECT generate_series(1, 1000);")
    _archived_through(pg, "ledger")
    _base_backup(cli, archiving, "ledger")
    pg.sql("ledger", "INSERT INTO t SELECT generate_series(1, 1000);")
    closed = _archived_through(pg, "ledger")  # the newest base backup needs it
    # a copy of the destination: the server keeps archiving into the real one
    copy = tmp_path / "copy"
    shutil.copytree(archiving.dest, copy)
    r = cli("verify", copy, "--wal", "--read-data")
    assert r.code == 0, r.err
    assert " ok" in r.out

    r = cli("monitor", "--storage", copy, "--max-age", "1d", "--max-wal-age", "1h")
    assert r.code == 0, r.out + r.err
    time.sleep(2)
    r = cli("monitor", "--storage", copy, "--max-age", "1d", "--max-wal-age", "1s")
    assert r.code == 1 and "over --max-wal-age" in r.out + r.err

    (archive,) = (copy / "wal").iterdir()
    segments = sorted(p for p in archive.iterdir() if len(p.name.split(".")[0]) == 24)
    before = len(segments)
    r = cli("prune", copy, "--keep-last", "1")
    assert r.code == 0, r.err
    assert "WAL files no kept base backup needs" in r.out
    left = sorted(p for p in archive.iterdir() if len(p.name.split(".")[0]) == 24)
    assert 0 < len(left) < before
    assert cli("verify", copy, "--wal", "--read-data").code == 0  # the kept one still reaches

    gap = copy.with_name("gap")  # a file in the middle of the chain gone
    shutil.copytree(copy, gap)
    first = left[0].name.split(".")[0]
    assert first != closed
    next(p for p in (gap / "wal").rglob(f"{first}.zst.gpg")).unlink()
    r = cli("verify", gap, "--wal")
    assert r.code == 1 and f"WAL file {first}, which the base backup" in r.err

    needed = archive / f"{closed}.zst.gpg"
    data = bytearray(needed.read_bytes())
    data[len(data) // 2] ^= 0x01
    needed.write_bytes(bytes(data))
    r = cli("verify", copy, "--wal", "--read-data")
    assert r.code == 1 and closed in r.err and "corrupt" in r.err


def test_archiving_stalled_then_back_loses_nothing(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    """The destination unwritable for a while: archive_command fails, PostgreSQL keeps the
    files and retries; once it is back, every file arrives and the chain is whole."""
    pg = archiving.pg
    pg.sql("postgres", "CREATE DATABASE outage;")
    pg.sql("outage", "CREATE TABLE t (x int);")
    _base_backup(cli, archiving, "outage")
    (archive,) = [p for p in (archiving.dest / "wal").iterdir() if p.is_dir()]
    failed = pg.sql("outage", "SELECT failed_count FROM pg_stat_archiver;").strip()
    archive.chmod(0o500)  # the server's user can no longer write there
    try:
        for _ in range(2):
            pg.sql("outage", "INSERT INTO t SELECT generate_series(1, 1000);")
            pg.sql("outage", "SELECT pg_switch_wal();")
        deadline = time.monotonic() + 30
        while pg.sql("outage", "SELECT failed_count FROM pg_stat_archiver;").strip() == failed:
            assert time.monotonic() < deadline, "archive_command never failed"
            time.sleep(0.2)
        # a base backup now would wait for the archiver forever: refused, saying why
        r = cli("backup", pg.url("outage"), "--physical", "--to", archiving.dest)
        assert r.code == 2 and "archiving is failing" in r.err, r.err
    finally:
        archive.chmod(0o755)
    _archived_through(pg, "outage")
    copy = tmp_path / "copy"
    shutil.copytree(archiving.dest, copy)
    r = cli("verify", copy, "--wal")
    assert r.code == 0, r.err


def test_recovery_follows_a_new_timeline(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    """A point-in-time restore that was promoted and kept archiving into the same
    destination (timeline 2); a later restore to a time on timeline 2 gets its rows."""
    pg, dest = archiving.pg, archiving.dest
    pg.sql("postgres", "CREATE DATABASE branch;")
    pg.sql("branch", "CREATE TABLE t (note text); INSERT INTO t VALUES ('timeline 1');")
    _base_backup(cli, archiving, "branch")
    pg.sql("branch", "INSERT INTO t VALUES ('timeline 1, after the base');")
    _archived_through(pg, "branch")
    first = archiving.work / "first"
    r = cli("restore", dest, "--into", first, "--passphrase-file", archiving.secret,
            "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.err
    promoted = Recovered(first, archiving=True)  # it archives into the same destination
    try:
        promoted.promoted()
        promoted.sql("branch", "INSERT INTO t VALUES ('timeline 2');")
        time.sleep(1.1)
        target = promoted.sql(
            "branch",
            """SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                           'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');""",
        ).strip()
        time.sleep(1.1)
        promoted.sql("branch", "INSERT INTO t VALUES ('timeline 2, after the target');")
        closed = promoted.sql("branch", "SELECT pg_walfile_name(pg_switch_wal());").strip()
        deadline = time.monotonic() + 60
        while (
            promoted.sql("branch", "SELECT last_archived_wal FROM pg_stat_archiver;").strip()
            < closed
        ):
            assert time.monotonic() < deadline, "timeline 2 was not archived"
            time.sleep(0.2)
        assert closed.startswith("00000002")
    finally:
        promoted.close()
    second = archiving.work / "second"
    r = cli("restore", dest, "--into", second, "--to-time", target,
            "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.err
    server = Recovered(second)
    try:
        server.promoted()
        rows = server.sql("branch", "SELECT note FROM t ORDER BY note;").splitlines()
        assert rows == ["timeline 1", "timeline 1, after the base", "timeline 2"]
    finally:
        server.close()
    # timeline 2's history deleted, or overwritten with junk: recovering without it would
    # silently take timeline 1 (issue 30 review); refused, saying which file to bring back
    for harm in ("delete", "junk"):
        copy = tmp_path / f"no-history-{harm}"
        shutil.copytree(dest, copy)
        (history,) = (copy / "wal").rglob("00000002.history.zst.gpg")
        if harm == "delete":
            history.unlink()
            # and junk under the first name of timeline 2: the check reads on past it
            (history.parent / "000000020000000000000001.zst.gpg").write_bytes(b"junk")
        else:
            history.write_bytes(b"junk")
        r = cli("restore", copy, "--into", archiving.work / f"third-{harm}", "--to-time", target,
                "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
        assert r.code == 1 and "no history file for it" in r.err, r.err


def test_targets_outside_what_is_kept_are_refused(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    _base_backup(cli, archiving, "postgres")
    into = tmp_path / "never"
    r = cli("restore", archiving.dest, "--into", into, "--to-time", "2001-01-01T00:00:00Z")
    assert r.code == 2 and "before the oldest base backup" in r.err
    r = cli("restore", archiving.dest, "--into", into, "--to-time", "2999-01-01T00:00:00Z")
    assert r.code == 2 and "after the newest archived WAL" in r.err
    r = cli("restore", archiving.dest, "--into", into, "--to-time", "2026-11-26 10:00")
    assert r.code == 2 and "no time zone" in r.err
    assert not into.exists()


def test_a_corrupt_archived_file_stops_recovery(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    """PostgreSQL ends recovery at the first file restore_command does not deliver, as if
    the archive ended there: a corrupt file must stop it instead, never promote early."""
    pg, dest = archiving.pg, archiving.dest
    pg.sql("postgres", "CREATE DATABASE tampered;")
    pg.sql("tampered", "CREATE TABLE t (x int);")
    _base_backup(cli, archiving, "tampered")
    pg.sql("tampered", "INSERT INTO t SELECT generate_series(1, 100);")
    closed = _archived_through(pg, "tampered")  # the rows after the base backup are in it
    copy = archiving.work / "tampered-copy"
    shutil.copytree(dest, copy)
    _own(copy)
    datadir = archiving.work / "tampered-data"
    r = cli("restore", copy, "--into", datadir, "--passphrase-file", archiving.secret,
            "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.err
    (archive,) = (copy / "wal").iterdir()
    needed = archive / f"{closed}.zst.gpg"
    data = bytearray(needed.read_bytes())
    data[len(data) // 2] ^= 0x01
    needed.write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="corrupt"):
        Recovered(datadir)


def test_a_drill_to_a_time_replays_checks_and_times_it(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    pg, dest = archiving.pg, archiving.dest
    pg.sql("postgres", "CREATE DATABASE drilled;")
    pg.sql("drilled", "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 10);")
    _base_backup(cli, archiving, "drilled")
    pg.sql("drilled", "INSERT INTO t SELECT generate_series(11, 30);")
    time.sleep(1.1)
    target = _server_time(pg, "drilled")
    time.sleep(1.1)
    pg.sql("drilled", "INSERT INTO t SELECT generate_series(31, 100);")
    closed = _archived_through(pg, "drilled")
    broken = archiving.work / "drill-broken"  # the same archive, the file T needs corrupt
    shutil.copytree(dest, broken)
    _own(broken)
    needed = next((broken / "wal").iterdir()) / f"{closed}.zst.gpg"
    needed.write_bytes(needed.read_bytes()[:-100])
    scratch = archiving.work / "drill-scratch"
    r = cli("drill", dest, "--into", scratch, "--to-time", target, "--json",
            "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.out + r.err
    report = json.loads(r.out)
    (entry,) = report["entries"]
    assert entry["kind"] == "pg-base" and entry["ok"]
    assert entry["recovery_seconds"] > 0 and report["restore_seconds"] >= entry["recovery_seconds"]
    assert any(c.startswith("last replayed transaction at 20") for c in entry["checks"])
    assert not scratch.exists()  # the throwaway server and its data are gone

    r = cli("drill", broken, "--into", scratch, "--to-time", target,
            "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 1 and "recovery did not reach its target" in r.err, r.out + r.err


def test_recovers_to_a_segment_switch_and_a_self_contained_backup_alone(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    """T right after a WAL switch: the rows before it, none after. And a base backup with
    its WAL inside (--with-wal) restores on its own to the end of the backup."""
    pg, dest = archiving.pg, archiving.dest
    pg.sql("postgres", "CREATE DATABASE switch;")
    pg.sql("switch", "CREATE TABLE t (note text); INSERT INTO t VALUES ('base');")
    _base_backup(cli, archiving, "switch")
    alone_dest = archiving.work / "alone"  # a destination the server's user can read
    r = cli("backup", pg.url("switch"), "--physical", "--with-wal", "--to", alone_dest)
    assert r.code == 0, r.err
    pg.sql("switch", "INSERT INTO t VALUES ('before the switch');")
    _archived_through(pg, "switch")
    time.sleep(1.1)
    target = _server_time(pg, "switch")  # at the start of a new segment
    time.sleep(1.1)
    pg.sql("switch", "INSERT INTO t VALUES ('after the switch');")
    _archived_through(pg, "switch")
    datadir = archiving.work / "switch-data"
    r = cli("restore", dest, "--into", datadir, "--to-time", target,
            "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.err
    server = Recovered(datadir)
    try:
        server.promoted()
        rows = server.sql("switch", "SELECT note FROM t ORDER BY note;").splitlines()
        assert rows == ["base", "before the switch"]
    finally:
        server.close()

    alone = archiving.work / "alone-data"
    _own(alone_dest)
    r = cli("restore", alone_dest, "--into", alone,
            "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.err
    assert any((alone / "pg_wal").iterdir())  # the WAL the backup needs is inside it
    server = Recovered(alone)
    try:
        server.promoted()
        assert server.sql("switch", "SELECT note FROM t;").splitlines() == ["base"]
    finally:
        server.close()


def test_a_base_backup_of_a_server_that_archives_nothing_is_refused(
    cli, tmp_path: Path, pg: Postgres, passphrase: str
) -> None:
    r = cli("backup", pg.url("postgres"), "--physical", "--to", tmp_path / "dest")
    assert r.code == 2 and "archive_mode is off" in r.err and "--with-wal" in r.err
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


def test_a_planted_next_segment_neither_stalls_archiving_nor_passes_for_healthy(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    """Issue 30, case 1: junk under the next segment's name made every archive_command
    fail (WAL piled up in pg_wal) while the monitor, counting any WAL-shaped name, said
    healthy. Archiving goes on beside it; verify --wal and the monitor name it; recovery
    takes the segment that authenticates."""
    pg = archiving.pg
    pg.sql("postgres", "CREATE DATABASE planted;")
    pg.sql("planted", "CREATE TABLE t (x int);")
    _base_backup(cli, archiving, "planted")
    closed = _archived_through(pg, "planted")
    (archive,) = [p for p in (archiving.dest / "wal").iterdir() if p.is_dir()]
    current = f"{closed[:16]}{int(closed[16:], 16) + 1:08X}"  # the next one archived
    assert not list(archive.glob(f"{current}*"))
    (archive / f"{current}.zst.gpg").write_bytes(b"junk\n")
    _own(archive)
    failed = pg.sql("planted", "SELECT failed_count FROM pg_stat_archiver;").strip()
    pg.sql("planted", "INSERT INTO t SELECT generate_series(1, 500);")
    assert _archived_through(pg, "planted") >= current
    assert pg.sql("planted", "SELECT failed_count FROM pg_stat_archiver;").strip() == failed
    assert (archive / f"{current}.1.zst.gpg").exists()
    assert (archive / f"{current}.zst.gpg").read_bytes() == b"junk\n"  # never overwritten

    copy = archiving.work / "copy-planted"  # where the recovered server's user may read
    shutil.copytree(archiving.dest, copy)
    _own(copy)
    (archive / f"{current}.zst.gpg").unlink()  # the module's other tests read the archive
    r = cli("verify", copy, "--wal")
    assert r.code == 1 and f"{current}.zst.gpg" in r.err and "planted" in r.err, r.err
    r = cli("monitor", "--storage", copy, "--max-age", "1d", "--max-wal-age", "1h")
    assert r.code == 1 and f"{current}.zst.gpg" in r.out + r.err, r.out + r.err

    datadir = archiving.work / "recovered-planted"
    r = cli("restore", copy, "--entry", "pg-base", "--into", datadir,
            "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.err
    server = Recovered(datadir)
    try:
        server.promoted()
        assert server.sql("planted", "SELECT count(*) FROM t;").strip() == "500"
    finally:
        server.close()


def test_an_archive_whose_key_is_gone_or_swapped_is_refused(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    """Issue 30, case 4: deleting wal/<id>/key.gpg made a point-in-time restore write
    --no-encrypt into restore_command, so planted plain files were replayed and recovery
    promoted early. The base backup records the archive's encryption and key id, with the
    set's auth; a restore holds the archive to them."""
    pg = archiving.pg
    pg.sql("postgres", "CREATE DATABASE keyed;")
    pg.sql("keyed", "CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
    _base_backup(cli, archiving, "keyed")
    _archived_through(pg, "keyed")
    newest = max((p for p in archiving.dest.iterdir() if (p / "manifest.json").exists()),
                 key=lambda p: p.name)  # fmt: skip
    (entry,) = json.loads((newest / "manifest.json").read_text())["entries"]
    assert entry["stats"]["wal_encrypted"] is True
    (key_id,) = entry["stats"]["wal_key_ids"]
    copy = archiving.work / "copy-keyed"
    shutil.copytree(archiving.dest, copy)
    _own(copy)
    (archive,) = [p for p in (copy / "wal").iterdir() if p.is_dir()]
    original = (archive / "key.gpg").read_bytes()

    (archive / "key.gpg").unlink()  # and a plain file planted in place of a segment
    r = cli("verify", copy, "--wal")
    assert r.code == 1 and "has no key.gpg" in r.err, r.err
    datadir = archiving.work / "recovered-keyless"
    r = cli("restore", copy, "--id", newest.name, "--entry", "pg-base", "--into", datadir,
            "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 1 and "has no key.gpg" in r.err and "refusing" in r.err, r.err
    assert not datadir.exists()

    # a key.gpg of another archive that the same passphrase opens: not this archive's key
    other = tmp_path / "other"
    segment = tmp_path / "000000010000000000000001"
    from tests.walfiles import segment as make_segment

    segment.write_bytes(make_segment(segment.name, 42))
    assert cli("wal", "push", str(segment), "--to", other, "--no-key-cache").code == 0
    (archive / "key.gpg").write_bytes((other / "wal" / "42" / "key.gpg").read_bytes())
    r = cli("restore", copy, "--id", newest.name, "--entry", "pg-base", "--into", datadir,
            "--passphrase-file", archiving.secret, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 1 and "another key" in r.err, r.err
    assert not datadir.exists()
    r = cli("verify", copy, "--wal", "--read-data")
    assert r.code == 1 and "another key" in r.err, r.err
    (archive / "key.gpg").write_bytes(original)
    r = cli("verify", copy, "--wal", "--read-data")
    assert r.code == 0 and len(key_id) == 32, r.err


def test_a_point_in_time_restore_after_rekey_works(
    cli, tmp_path: Path, archiving: Archiving, passphrase: str
) -> None:
    """rekey --all --wal re-wraps the sets' and the archive's key.gpg to a new passphrase;
    the data keys stay, so the base backup's archive key id still holds and recovery
    fetches every segment with the new passphrase alone."""
    pg = archiving.pg
    pg.sql("postgres", "CREATE DATABASE rotated;")
    pg.sql("rotated", "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 300);")
    _base_backup(cli, archiving, "rotated")
    pg.sql("rotated", "INSERT INTO t SELECT generate_series(301, 400);")
    _archived_through(pg, "rotated")
    copy = archiving.work / "copy-rotated"  # the server keeps archiving with the old one
    shutil.copytree(archiving.dest, copy)
    (copy / "wal").chmod(0o755)
    new = archiving.work / "new-passphrase"
    new.write_text("the rotated passphrase\n")
    new.chmod(0o600)
    r = cli("rekey", copy, "--all", "--wal", "--new-passphrase-file", new)
    assert r.code == 0, r.err
    assert "re-wrapped the key of the WAL archive wal/" in r.out
    _own(copy)
    if os.geteuid() == 0:  # the recovered server's restore_command reads it
        shutil.chown(new, "postgres", "postgres")
    newest = max(
        (p for p in copy.iterdir() if (p / "manifest.json").exists()), key=lambda p: p.name
    )
    datadir = archiving.work / "recovered-rotated"
    r = cli("restore", copy, "--id", newest.name, "--entry", "pg-base", "--into", datadir,
            "--passphrase-file", new, "--server-offsite", archiving.program)  # fmt: skip
    assert r.code == 0, r.err
    server = Recovered(datadir)
    try:
        server.promoted()
        assert server.sql("rotated", "SELECT count(*) FROM t;").strip() == "400"
    finally:
        server.close()
