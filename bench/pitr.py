"""Continuous archiving: offsite's ``wal push`` against ``cp`` (the floor) and pgBackRest's
``archive-push`` (the peer), on the same server and the same segments, in one run.

    .venv/bin/python bench/pitr.py [--segments 20] [--seconds 30] [--clients 4]

Needs Debian's ``pgbackrest`` (apt-get install pgbackrest). Starts a throwaway PostgreSQL
server (tests/servers.py) and measures:
- per segment: real WAL segments (pgbench's), each pushed by a new process as PostgreSQL
  would with a backlog (``pg_wal/archive_status/*.ready``): ``offsite wal push --async``
  (zstd, passphrase-encrypted, key cached after the first; a process ahead pushes, each
  call confirms) and ``pgbackrest archive-push`` (zst, to a local repository, its
  default synchronous mode), one tool after the other: median of each, and the time
  for all of them;
- pgbench (``--clients``, ``--seconds``) with ``archive_command`` set to cp, to offsite and
  to pgBackRest, in turn: transactions per second, and the ``.ready`` files left behind
  (WAL waiting for archive_command) when the run ends.
Goals (issue 19): TPS with offsite >= 0.95x with cp; no backlog above 2; a push <= 1.5x
pgBackRest's.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from common import compile_offsite  # noqa: E402, F401  (offsite's modules compiled)
from tests.db.test_pitr import _own, server_offsite  # noqa: E402
from tests.servers import PG_PASSWORD, Postgres, _as_user, _workdir, pg_bin  # noqa: E402

PASSPHRASE = "bench-passphrase"


def _sql(pg: Postgres, sql: str) -> str:
    return pg.sql("postgres", sql).strip()


def _set_archive_command(pg: Postgres, command: str) -> None:
    _sql(pg, f"ALTER SYSTEM SET archive_command = '{command.replace(chr(39), chr(39) * 2)}';")
    _sql(pg, "SELECT pg_reload_conf();")
    time.sleep(0.5)


def _drain(pg: Postgres, data: Path, limit: float = 120) -> None:
    """Wait until no WAL file waits for archiving."""
    status = data / "pg_wal" / "archive_status"
    deadline = time.monotonic() + limit
    while any(p.suffix == ".ready" for p in status.iterdir()):
        if time.monotonic() > deadline:
            raise SystemExit("archiving did not catch up")
        time.sleep(0.2)


def _pgbench(pg: Postgres, clients: int, seconds: int) -> float:
    env = {**os.environ, "PGPASSWORD": PG_PASSWORD}
    done = subprocess.run(
        [pg_bin("pgbench") or "pgbench", "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user,
         "-c", str(clients), "-j", "2", "-T", str(seconds), "-n", "bench"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"tps = ([0-9.]+)", done.stdout)
    assert found, done.stdout
    return float(found.group(1))


def _restore_race(
    pg: Postgres, work: Path, push: str, rest: list[str], secret: Path, program: str, scale: int
) -> None:
    """Base backups by both, as much WAL again, then each restores to the same time and a
    server replays to it: wall time from the restore's start to the promoted server."""
    from tests.db.test_pitr import Recovered, _server_time

    dest = push.split(" --to ")[1].split()[0]
    _set_archive_command(pg, f"{push} && {' '.join(rest[-3:])} archive-push %p")
    env = {**os.environ, "PGPASSWORD": PG_PASSWORD, "OFFSITE_PASSPHRASE": PASSPHRASE}
    _sql(pg, "DROP DATABASE IF EXISTS race;")
    _sql(pg, "CREATE DATABASE race;")
    subprocess.run([pg_bin("pgbench") or "pgbench", "-i", "-q", "-s", str(scale), "-h",
                    "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "race"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    size = _sql(pg, "SELECT pg_size_pretty(pg_database_size('race'));")
    offsite = [sys.executable, "-m", "offsite"]
    subprocess.run([*offsite, "backup", pg.url("race"), "--physical", "--to", dest],
                   env=env, check=True, capture_output=True)  # fmt: skip
    subprocess.run([*rest, "--type=full", "backup"], check=True, capture_output=True)
    before = _sql(pg, "SELECT pg_current_wal_lsn();")
    subprocess.run([pg_bin("pgbench") or "pgbench", "-h", "127.0.0.1", "-p", str(pg.port),
                    "-U", pg.user, "-c", "4", "-j", "2", "-t", str(scale * 2500), "-n", "race"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    target = _server_time(pg, "race")
    time.sleep(1.1)
    # recovery knows it reached the time at the first commit after it
    pg.sql("race", "CREATE TABLE after_target (x int); INSERT INTO after_target VALUES (1);")
    _sql(pg, "SELECT pg_switch_wal();")
    _drain(pg, pg.dir / "data", limit=600)
    wal = _sql(pg, f"SELECT pg_size_pretty(pg_current_wal_lsn() - '{before}'::pg_lsn);")
    print(f"restore to a time: database {size}, then {wal} of WAL")
    walls = {}
    for name in ("offsite", "pgbackrest"):
        datadir = work / f"race-{name}"
        started = time.perf_counter()
        if name == "offsite":
            subprocess.run([*offsite, "restore", dest, "--into", str(datadir), "--to-time",
                            target, "--passphrase-file", str(secret), "--server-offsite",
                            program], env=env, check=True, capture_output=True)  # fmt: skip
        else:
            datadir.mkdir(mode=0o700)
            _own(datadir)
            when = target.replace("T", " ").replace("Z", "+00")  # pgBackRest's form
            done = subprocess.run([*rest, "--type=time", f"--target={when}",
                                   "--target-action=promote", f"--pg1-path={datadir}",
                                   "restore"], capture_output=True, text=True)  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"pgbackrest restore failed: {done.stdout[-800:]}{done.stderr}")
        server = Recovered(datadir)
        try:
            server.promoted()
            walls[name] = time.perf_counter() - started
        except AssertionError:
            log = (server.sockets / "log").read_text(errors="replace")
            raise SystemExit(f"{name}'s server did not recover:\n{log[-1500:]}") from None
        finally:
            server.close()
    ratio = walls["offsite"] / walls["pgbackrest"]
    print(f"restore + replay to the time: offsite {walls['offsite']:.1f} s, pgbackrest "
          f"{walls['pgbackrest']:.1f} s: {ratio:.2f}x (goal <= 1.2x)")  # fmt: skip


def _push_each(
    name: str,
    segments: list[Path],
    work: Path,
    data: Path,
    push: str,
    rest: list[str],
    as_pg: list[str],
) -> tuple[list[float], float]:
    """Each segment archived by a new process, in order, as PostgreSQL's archiver does
    with a backlog: every segment sits in a ``pg_wal`` with its ``.ready`` file, and its
    ``.done`` replaces it once the command succeeds. The wall time of each call, and of
    all of them."""
    wal = work / f"staged-{name.replace(' ', '-')}" / "pg_wal"
    (wal / "archive_status").mkdir(parents=True)
    for seg in segments:
        shutil.copy(seg, wal / seg.name)
        (wal / "archive_status" / f"{seg.name}.ready").touch()
    _own(wal.parent)

    def archive(n: int, seg: Path, command: str) -> float:
        staged = wal / seg.name
        if name.startswith("offsite"):
            argv = [*as_pg, *command.replace("%p", str(staged)).split()]
        else:
            argv = [*rest, "archive-push", str(staged)]
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=data, capture_output=True, text=True)
        took = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{name} failed on segment {n}: {done.stderr[-500:]}")
        status = wal / "archive_status" / seg.name
        status.with_suffix(".ready").rename(status.with_suffix(".done"))
        return took

    # the first segment archived before the backlog, untimed, as a running server's
    # archive has its key (offsite) and its stanza (pgBackRest) before its archiver falls
    # behind; the backlog's first call then starts the process ahead, timed
    archive(0, segments[0], push.replace(" --async", ""))
    begun = time.perf_counter()
    walls = [archive(n, seg, push) for n, seg in enumerate(segments[1:], 1)]
    return walls, time.perf_counter() - begun


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--restore-scale",
        type=int,
        default=0,
        help="also time a restore to a time: pgbench at this scale (60: ~1 GB), "
        "then as much WAL again, offsite against pgBackRest",
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    if not shutil.which("pgbackrest"):
        raise SystemExit("pgbackrest is not installed: apt-get install pgbackrest")
    work = _workdir("offsite-pitr-bench-", "postgres")
    collected, dest, repo = work / "collected", work / "dest", work / "repo"
    for folder in (collected, dest, repo, work / "keys", work / "log"):
        folder.mkdir()
    secret = work / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    program = server_offsite(work)
    if (work / "lib").is_dir():  # the copy the server's user runs: compiled, as installed
        compileall.compile_dir(work / "lib", quiet=1)
    _own(work)
    pg = Postgres(conf={"archive_mode": "on", "archive_command": f"cp %p {collected}/%f",
                        "wal_level": "replica", "max_wal_size": "4GB"})  # fmt: skip
    data = pg.dir / "data"

    def pgbackrest_conf(repo: Path) -> Path:
        conf = repo.parent / f"{repo.name}.conf"
        conf.write_text(
            f"[global]\nrepo1-path={repo}\ncompress-type=zst\nlog-path={work / 'log'}\n"
            f"lock-path={work / 'log'}\nspool-path={work / 'log'}\n"
            f"[bench]\npg1-path={data}\npg1-port={pg.port}\npg1-socket-path={pg.dir}\n"
            f"pg1-user={pg.user}\n"
        )
        return conf

    conf = pgbackrest_conf(repo)
    _own(work)
    # pgBackRest reaches the server through libpq: the password by environment (runuser
    # passes it on), never on a command line
    os.environ["PGPASSWORD"] = PG_PASSWORD
    rest = [*_as_user("postgres"), "pgbackrest", f"--config={conf}", "--stanza=bench"]

    def offsite_push(dest: Path, keys: Path) -> str:
        return (f"{program} wal push %p --to {dest} --passphrase-file {secret} "
                f"--key-cache {keys} --async --spool {work / 'spool'}")  # fmt: skip

    push = offsite_push(dest, work / "keys")
    try:
        subprocess.run([*rest, "stanza-create"], check=True, capture_output=True)
        _sql(pg, "CREATE DATABASE bench;")
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD}
        subprocess.run([pg_bin("pgbench") or "pgbench", "-i", "-q", "-s", "20", "-h",
                        "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "bench"],
                       env=env, check=True, capture_output=True)  # fmt: skip
        _sql(pg, "SELECT pg_switch_wal();")
        _drain(pg, data)
        segments = sorted(p for p in collected.iterdir() if re.fullmatch(r"[0-9A-F]{24}", p.name))
        segments = segments[: args.segments]
        print(f"{len(segments)} segments of pgbench -i -s 20 WAL; {args.rounds} rounds, "
              "each into a new archive and a new repository")  # fmt: skip
        as_pg = _as_user("postgres")
        calls: dict[str, list[float]] = {"offsite wal push": [], "pgbackrest archive-push": []}
        firsts: dict[str, list[float]] = {name: [] for name in calls}
        totals: dict[str, list[float]] = {name: [] for name in calls}
        for r in range(args.rounds):
            (work / f"keys-{r}").mkdir()
            round_conf = pgbackrest_conf(work / f"repo-{r}")
            (work / f"repo-{r}").mkdir()
            _own(work)
            round_rest = [*_as_user("postgres"), "pgbackrest", f"--config={round_conf}",
                          "--stanza=bench"]  # fmt: skip
            subprocess.run([*round_rest, "stanza-create"], check=True, capture_output=True)
            round_push = offsite_push(work / f"dest-{r}", work / f"keys-{r}")
            for name in calls:
                runs, total = _push_each(f"{name} {r}", segments, work, data, round_push,
                                         round_rest, as_pg)  # fmt: skip
                calls[name] += runs
                firsts[name].append(runs[0])
                totals[name].append(total)
        for name in calls:
            print(f"{name:26} median {statistics.median(calls[name]) * 1000:7.1f} ms, "
                  f"first (median) {statistics.median(firsts[name]) * 1000:7.1f} ms, "
                  f"all {len(segments) - 1} after the first: rounds "
                  + " ".join(f"{t:.2f}" for t in totals[name])
                  + f" s, median {statistics.median(totals[name]):.2f} s")  # fmt: skip
        ratio = statistics.median(calls["offsite wal push"]) / statistics.median(
            calls["pgbackrest archive-push"]
        )
        print(f"push: offsite / pgbackrest {ratio:.2f}x (goal <= 1.5x)")
        total = statistics.median(totals["offsite wal push"]) / statistics.median(
            totals["pgbackrest archive-push"]
        )
        print(f"all segments: offsite / pgbackrest {total:.2f}x (goal <= 1.3x)")

        commands = {
            "cp": f"cp %p {collected}/%f",
            "offsite": push,
            "pgbackrest": f"pgbackrest --config={conf} --stanza=bench archive-push %p",
        }
        tps: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds if args.seconds else 0):  # --seconds 0: no pgbench
            for name, command in commands.items():
                _set_archive_command(pg, command)
                tps[name].append(_pgbench(pg, args.clients, args.seconds))
                status = data / "pg_wal" / "archive_status"
                ready = sum(p.suffix == ".ready" for p in status.iterdir())
                failed = _sql(pg, "SELECT failed_count FROM pg_stat_archiver;")
                print(
                    f"pgbench with {name:10} archiving: {tps[name][-1]:8.1f} tps, "
                    f"{ready} .ready left at the end, archiver failures so far {failed}"
                )
                _drain(pg, data)
        middle = {name: statistics.median(values or [1.0]) for name, values in tps.items()}
        print(f"TPS offsite / cp: {middle['offsite'] / middle['cp']:.3f}x (goal >= 0.95x), "
              f"medians of {args.rounds} rounds")  # fmt: skip
        print(f"TPS pgbackrest / cp: {middle['pgbackrest'] / middle['cp']:.3f}x")
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f}")
        if args.restore_scale:
            _restore_race(pg, work, push, rest, secret, program, args.restore_scale)
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
