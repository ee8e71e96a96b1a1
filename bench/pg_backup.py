"""PostgreSQL backup and restore: offsite against raw pg_dump and the common script.

    .venv/bin/python bench/pg_backup.py [--scale 40] [--docs 1200000]

Starts a throwaway PostgreSQL server, generates pgbench tables (``--scale``) plus a table
of random text and jsonb (``--docs`` rows), then times in one run:
    raw:     pg_dump -Fc -Z0 > /dev/null                                 (the limit)
    script:  pg_dump | gzip | gpg --symmetric --cipher-algo AES256 > file
    offsite: offsite backup postgresql://… --to DEST                    (zstd 3, encrypted)
and for restore, into new databases:
    pg_restore --jobs 2 from an unencrypted local -Fc file
    offsite restore DEST --into postgresql://… --jobs 2
Prints wall times, output sizes, peak RSS and the ratios the goals are stated in.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=40)
    parser.add_argument("--docs", type=int, default=1_200_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offsite-pgbench-"))
    pg = Postgres()
    try:
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD, "OFFSITE_PASSPHRASE": PASSPHRASE,
               "GNUPGHOME": str(work / "gnupg")}  # fmt: skip
        (work / "gnupg").mkdir(mode=0o700)
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

        script_out = work / "script.sql.gz.gpg"
        script = (
            f'set -euo pipefail; {pg_dump} -d "$1" | gzip | gpg --batch --pinentry-mode loopback '
            '--passphrase-fd 3 --symmetric --cipher-algo AES256 -o "$2" 3<<<"$OFFSITE_PASSPHRASE"'
        )
        dest = work / "dest"
        backups = {
            "raw pg_dump -Fc -Z0": ["bash", "-c", f'{pg_dump} -Fc -Z0 -d "$1" > /dev/null',
                                    "bash", conninfo],
            "pg_dump|gzip|gpg": ["bash", "-c", script, "bash", conninfo, str(script_out)],
            "offsite backup": [sys.executable, "-m", "offsite", "backup", pg.url("bench"),
                               "--to", str(dest)],
        }  # fmt: skip
        results = {name: measure(argv, env) for name, argv in backups.items()}
        results["pg_dump|gzip|gpg"]["out"] = script_out.stat().st_size
        results["offsite backup"]["out"] = sum(p.stat().st_size for p in dest.rglob("*.gpg"))

        pg.sql("postgres", "CREATE DATABASE baseline_restore;")
        restores = {
            "pg_restore -j2 (plain file)": [pg_restore, "-j", "2", "--no-owner", "-d",
                                            conninfo.replace("/bench", "/baseline_restore"),
                                            str(plain)],
            "offsite restore --jobs 2": [sys.executable, "-m", "offsite", "restore", str(dest),
                                         "--into", pg.url("offsite_restore"), "--jobs", "2",
                                         "--no-owner"],
        }  # fmt: skip
        results.update({name: measure(argv, env) for name, argv in restores.items()})

        print(f"database: {size / MB:.0f} MiB (pgbench scale {args.scale}, {args.docs} docs)")
        print(f"{'':28} {'wall s':>8} {'out MiB':>9} {'peak proc MiB':>14} {'peak tree MiB':>14}")
        for name, r in results.items():
            out = f"{r['out'] / MB:9.1f}" if "out" in r else f"{'':9}"
            print(f"{name:28} {r['wall']:8.2f} {out} {r['peak_process_mb']:14.1f} "
                  f"{r['peak_tree_mb']:14.1f}")  # fmt: skip
        raw, script_r, ours = (results[k] for k in backups)
        base_restore, our_restore = (results[k] for k in restores)
        print(f"offsite / raw dump wall:        {ours['wall'] / raw['wall']:.2f}x (goal <= 1.3x)")
        print(
            f"script / offsite wall:          {script_r['wall'] / ours['wall']:.2f}x (goal >= 2.5x)"
        )
        print(f"offsite / script output:        {ours['out'] / script_r['out']:.3f}x (goal <= 1)")
        print(f"offsite / pg_restore -j2 wall:  {our_restore['wall'] / base_restore['wall']:.2f}x "
              "(goal <= 1.2x)")  # fmt: skip
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
