"""PostgreSQL backup and restore: offsite against raw pg_dump, a hand-tuned pipeline and the
common script, in one run, rounds alternating, the median of each.

    .venv/bin/python bench/pg_backup.py [--scale 40] [--docs 3000000] [--rounds 3]

Starts a throwaway PostgreSQL server, generates pgbench tables (``--scale``) plus a table
of random text and jsonb (``--docs`` rows), then times, round after round:
    raw:     pg_dump -Fc -Z0 > /dev/null                                       (the limit)
    hand:    pg_dump -Fc -Z0 | zstd -T2 -3 | gpg --symmetric --compress-algo none > file
    script:  pg_dump | gzip | gpg --symmetric --cipher-algo AES256 > file
    offsite: offsite backup postgresql://… --to DEST         (zstd 3, encrypted, self-checked)
and for restore, into new databases:
    pg_restore --jobs 2 from an unencrypted local -Fc file
    offsite restore DEST --into postgresql://… --jobs 1      (streamed, one transaction)
    offsite restore DEST --into postgresql://… --jobs 2
The hand-tuned and script rows use a GNUPGHOME whose agent is already running, as a
user's shell would have. Before each command the server checkpoints and the machine
syncs (no command pays for the dirty pages the one before left), and each round runs the
commands in another order. Prints medians, output sizes, peak RSS and the goals' ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from common import MB, measure  # noqa: E402
from tests.servers import PG_PASSWORD, Postgres, pg_bin  # noqa: E402

PASSPHRASE = "bench-passphrase"
DOCS = """
CREATE TABLE docs AS
SELECT g AS id,
       md5(random()::text) || ' ' || repeat(md5(random()::text) || ' ', 6) AS body,
       jsonb_build_object('score', random(), 'tags', jsonb_build_array(md5(random()::text), g),
                          'when', now() - g * interval '1 second') AS meta
FROM generate_series(1, {rows}) AS g;
ALTER TABLE docs ADD PRIMARY KEY (id);
"""
GPG = "gpg --batch --pinentry-mode loopback --passphrase-fd 3 --symmetric"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=40)
    parser.add_argument("--docs", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print each command's CPU seconds per process (server's too)",
    )
    parser.add_argument("--only", default="",
                        help="run only the commands whose name contains one of these words "
                        "(comma-separated), for profiling")  # fmt: skip
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="offsite-pgbench-"))
    pg = Postgres()
    try:
        home = work / "gnupg"
        home.mkdir(mode=0o700)
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD, "OFFSITE_PASSPHRASE": PASSPHRASE,
               "GNUPGHOME": str(home)}  # fmt: skip
        subprocess.run(["gpgconf", "--launch", "gpg-agent"], env=env, check=True)
        pg.sql("postgres", "CREATE DATABASE bench;")
        conninfo = f"postgresql://{pg.user}@127.0.0.1:{pg.port}/bench"
        subprocess.run([pg_bin("pgbench") or "pgbench", "-i", "-q", "-s", str(args.scale),
                        "-d", conninfo], env=env, check=True, capture_output=True)  # fmt: skip
        pg.sql("bench", DOCS.format(rows=args.docs) + "VACUUM ANALYZE;")
        size = int(pg.sql("bench", "SELECT pg_database_size('bench');"))
        pg_dump, pg_restore = pg_bin("pg_dump") or "pg_dump", pg_bin("pg_restore") or "pg_restore"
        plain = work / "plain.pgdump"
        subprocess.run([pg_dump, "-Fc", "-Z0", "-d", conninfo, "-f", str(plain)], env=env,
                       check=True)  # the warm-up, and the restore baseline's input  # fmt: skip

        hand_out, script_out, dest = work / "hand.gpg", work / "script.gpg", work / "dest"
        hand = (f'set -euo pipefail; {pg_dump} -Fc -Z0 -d "$1" | zstd -q -T2 -3 | '
                f'{GPG} --compress-algo none -o "$2" 3<<<"$OFFSITE_PASSPHRASE"')  # fmt: skip
        script = (f'set -euo pipefail; {pg_dump} -d "$1" | gzip | {GPG} --cipher-algo AES256 '
                  f'-o "$2" 3<<<"$OFFSITE_PASSPHRASE"')  # fmt: skip
        backups = {
            "raw pg_dump -Fc -Z0": ["bash", "-c", f'{pg_dump} -Fc -Z0 -d "$1" > /dev/null',
                                    "bash", conninfo],
            "hand: pg_dump|zstd|gpg": ["bash", "-c", hand, "bash", conninfo, str(hand_out)],
            "script: pg_dump|gzip|gpg": ["bash", "-c", script, "bash", conninfo,
                                         str(script_out)],
            "offsite backup": [sys.executable, "-m", "offsite", "backup", pg.url("bench"),
                               "--to", str(dest)],
        }  # fmt: skip
        postmaster = int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
        also = [postmaster] if args.profile else None
        wanted = [w for w in args.only.split(",") if w]

        def chosen(name: str) -> bool:
            return not wanted or any(w in name for w in wanted)

        runs: dict[str, list[dict]] = {name: [] for name in backups}
        writes = {"hand: pg_dump|zstd|gpg": hand_out, "script: pg_dump|gzip|gpg": script_out}

        def settled() -> None:
            """Each command starts where the others did: the server's dirty pages
            written out and the machine's flushed, not left for the next command to pay."""
            pg.sql("postgres", "CHECKPOINT;")
            os.sync()

        for r in range(args.rounds):
            order = list(backups.items())
            for name, argv in order[r % len(order) :] + order[: r % len(order)]:
                if name in writes:
                    writes[name].unlink(missing_ok=True)
                if name == "offsite backup":
                    shutil.rmtree(dest, ignore_errors=True)
                elif not chosen(name):
                    continue
                settled()
                runs[name].append(measure(argv, env, also))
        outs = {name: path.stat().st_size for name, path in writes.items() if path.exists()}
        outs["offsite backup"] = sum(p.stat().st_size for p in dest.rglob("*.pgdump*"))

        restores = {
            "pg_restore -j2 (plain file)": lambda i: [
                pg_restore, "-j", "2", "--no-owner", "-d",
                conninfo.replace("/bench", f"/base_{i}"), str(plain)],
            "offsite restore (streamed)": lambda i: [
                sys.executable, "-m", "offsite", "restore", str(dest), "--into",
                pg.url(f"streamed_{i}"), "--jobs", "1", "--no-owner"],
            "offsite restore --jobs 2": lambda i: [
                sys.executable, "-m", "offsite", "restore", str(dest), "--into",
                pg.url(f"jobs_{i}"), "--jobs", "2", "--no-owner"],
        }  # fmt: skip
        runs.update({name: [] for name in restores})
        for i in range(args.rounds):  # each round in another order
            pg.sql("postgres", f"CREATE DATABASE base_{i};")
            order = list(restores.items())
            for name, argv in order[i % len(order) :] + order[: i % len(order)]:
                if chosen(name):
                    settled()
                    runs[name].append(measure(argv(i), env, also))
            for db in (f"base_{i}", f"streamed_{i}", f"jobs_{i}"):
                pg.sql("postgres", f"DROP DATABASE IF EXISTS {db};")

        def med(name: str) -> float:
            return statistics.median(r["wall"] for r in runs[name])

        dumped = plain.stat().st_size / MB
        load = os.getloadavg()
        print(f"database: {size / MB:.0f} MiB (pgbench scale {args.scale}, {args.docs} docs), "
              f"dump {dumped:.0f} MiB; median of {args.rounds} rounds; load average after: "
              f"{load[0]:.2f} {load[1]:.2f}")  # fmt: skip
        print(f"{'':30} {'rounds s':>20} {'median s':>9} {'out MiB':>8} {'peak proc MiB':>14} "
              f"{'peak tree MiB':>14}")  # fmt: skip
        for name, rs in runs.items():
            if not rs:
                continue
            walls = " ".join(f"{r['wall']:.2f}" for r in rs)
            out = f"{outs[name] / MB:8.1f}" if name in outs else f"{'':8}"
            print(f"{name:30} {walls:>20} {med(name):9.2f} {out} "
                  f"{max(r['peak_process_mb'] for r in rs):14.1f} "
                  f"{max(r['peak_tree_mb'] for r in rs):14.1f}")  # fmt: skip
        if args.profile:
            print("CPU seconds per process, the median round of each (server processes too):")
            for name, rs in runs.items():
                if rs:
                    middle = sorted(rs, key=lambda r: r["wall"])[len(rs) // 2]
                    cpu = " ".join(f"{k} {v:.2f}" for k, v in middle["cpu"].items())
                    print(f"  {name:30} {sum(middle['cpu'].values()):6.2f} total: {cpu}")
        goals = [
            ("offsite / hand-tuned:           ", "offsite backup", "hand: pg_dump|zstd|gpg",
             "<= 1.0x"),
            ("offsite / raw dump:             ", "offsite backup", "raw pg_dump -Fc -Z0",
             "<= 1.3x"),
            ("offsite restore --jobs 2 / base:", "offsite restore --jobs 2",
             "pg_restore -j2 (plain file)", "<= 1.2x"),
            ("offsite restore streamed / base:", "offsite restore (streamed)",
             "pg_restore -j2 (plain file)", "<= 1.5x"),
        ]  # fmt: skip
        for label, ours, theirs, goal in goals:
            if runs[ours] and runs[theirs]:
                print(f"{label} {med(ours) / med(theirs):.2f}x (goal {goal})")
        if runs["script: pg_dump|gzip|gpg"]:
            ratio = med("script: pg_dump|gzip|gpg") / med("offsite backup")
            print(f"script / offsite:                 {ratio:.2f}x (goal >= 2.5x)")
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
