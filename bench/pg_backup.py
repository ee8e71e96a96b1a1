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
    offsite restore DEST --into postgresql://…               (streamed, one transaction)
    offsite restore DEST --into postgresql://… --jobs 2
The hand-tuned and script rows use a GNUPGHOME whose agent is already running, as a
user's shell would have. Prints medians, output sizes, peak RSS and the goals' ratios.
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
    args = parser.parse_args()
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
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in backups}
        writes = {"hand: pg_dump|zstd|gpg": hand_out, "script: pg_dump|gzip|gpg": script_out}
        for _ in range(args.rounds):
            for name, argv in backups.items():
                if name in writes:
                    writes[name].unlink(missing_ok=True)
                if name == "offsite backup":
                    shutil.rmtree(dest, ignore_errors=True)
                runs[name].append(measure(argv, env))
        outs = {
            "hand: pg_dump|zstd|gpg": hand_out.stat().st_size,
            "script: pg_dump|gzip|gpg": script_out.stat().st_size,
            "offsite backup": sum(p.stat().st_size for p in dest.rglob("*.pgdump*")),
        }

        restores = {
            "pg_restore -j2 (plain file)": lambda i: [
                pg_restore, "-j", "2", "--no-owner", "-d",
                conninfo.replace("/bench", f"/base_{i}"), str(plain)],
            "offsite restore (streamed)": lambda i: [
                sys.executable, "-m", "offsite", "restore", str(dest), "--into",
                pg.url(f"streamed_{i}"), "--no-owner"],
            "offsite restore --jobs 2": lambda i: [
                sys.executable, "-m", "offsite", "restore", str(dest), "--into",
                pg.url(f"jobs_{i}"), "--jobs", "2", "--no-owner"],
        }  # fmt: skip
        runs.update({name: [] for name in restores})
        for i in range(args.rounds):
            pg.sql("postgres", f"CREATE DATABASE base_{i};")
            for name, argv in restores.items():
                runs[name].append(measure(argv(i), env))
            for db in (f"base_{i}", f"streamed_{i}", f"jobs_{i}"):
                pg.sql("postgres", f"DROP DATABASE {db};")

        def med(name: str) -> float:
            return statistics.median(r["wall"] for r in runs[name])

        dumped = plain.stat().st_size / MB
        print(f"database: {size / MB:.0f} MiB (pgbench scale {args.scale}, {args.docs} docs), "
              f"dump {dumped:.0f} MiB; median of {args.rounds} rounds")  # fmt: skip
        print(f"{'':30} {'rounds s':>20} {'median s':>9} {'out MiB':>8} {'peak proc MiB':>14} "
              f"{'peak tree MiB':>14}")  # fmt: skip
        for name, rs in runs.items():
            walls = " ".join(f"{r['wall']:.2f}" for r in rs)
            out = f"{outs[name] / MB:8.1f}" if name in outs else f"{'':8}"
            print(f"{name:30} {walls:>20} {med(name):9.2f} {out} "
                  f"{max(r['peak_process_mb'] for r in rs):14.1f} "
                  f"{max(r['peak_tree_mb'] for r in rs):14.1f}")  # fmt: skip
        ours, raw = med("offsite backup"), med("raw pg_dump -Fc -Z0")
        hand_s, script_s = med("hand: pg_dump|zstd|gpg"), med("script: pg_dump|gzip|gpg")
        base = med("pg_restore -j2 (plain file)")
        print(f"offsite / hand-tuned:             {ours / hand_s:.2f}x (goal <= 1.0x)")
        print(f"offsite / raw dump:               {ours / raw:.2f}x (goal <= 1.3x)")
        print(f"script / offsite:                 {script_s / ours:.2f}x (goal >= 2.5x)")
        print(f"offsite restore --jobs 2 / base:  {med('offsite restore --jobs 2') / base:.2f}x "
              "(goal <= 1.2x)")  # fmt: skip
        print(f"offsite restore streamed / base:  {med('offsite restore (streamed)') / base:.2f}x "
              "(goal <= 1.5x)")  # fmt: skip
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
