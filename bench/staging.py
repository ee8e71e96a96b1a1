"""What checking an unencrypted entry before its first statement costs (issue 30): the
stored bytes staged in TMPDIR and hashed, then applied, against a restore of the same data
as an encrypted entry (which authenticates as it decrypts and streams), in one run.

    .venv/bin/python bench/staging.py [--scale 20] [--docs 1000000] [--rounds 3]

Starts a throwaway PostgreSQL server, generates pgbench tables (``--scale``) and a table
of random text and jsonb (``--docs`` rows, bench/pg_backup.py's), backs them
up twice (unencrypted, and encrypted), then times, round after round:
    stage:       the staging alone: the stored entry copied into TMPDIR and its SHA-256
    unencrypted: offsite restore DEST --into postgresql://…  (staged, checked, applied)
    encrypted:   offsite restore DEST --into postgresql://…  (streamed, decrypted)
Prints the medians and the staging's share of the unencrypted restore.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from common import MB, measure  # noqa: E402
from pg_backup import DOCS  # noqa: E402
from tests.servers import PG_PASSWORD, Postgres, pg_bin  # noqa: E402

STAGE = """
import hashlib, shutil, sys, tempfile
digest = hashlib.sha256()
with open(sys.argv[1], "rb") as src, tempfile.TemporaryFile() as staged:
    while chunk := src.read(1 << 20):
        digest.update(chunk)
        staged.write(chunk)
    staged.flush()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=20)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offsite-staging-"))
    pg = Postgres()
    try:
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD, "OFFSITE_PASSPHRASE": "bench",
               "TMPDIR": str(work), "XDG_CACHE_HOME": str(work / "cache")}  # fmt: skip
        pg.sql("postgres", "CREATE DATABASE bench;")
        conninfo = f"postgresql://{pg.user}@127.0.0.1:{pg.port}/bench"
        subprocess.run([pg_bin("pgbench") or "pgbench", "-i", "-q", "-s", str(args.scale),
                        "-d", conninfo], env=env, check=True, capture_output=True)  # fmt: skip
        pg.sql("bench", DOCS.format(rows=args.docs))  # random text: what zstd cannot shrink
        plain, sealed = work / "plain", work / "sealed"
        offsite = [sys.executable, "-m", "offsite"]
        subprocess.run([*offsite, "backup", pg.url("bench"), "--to", str(plain), "--no-encrypt"],
                       env=env, check=True, capture_output=True)  # fmt: skip
        subprocess.run([*offsite, "backup", pg.url("bench"), "--to", str(sealed)],
                       env=env, check=True, capture_output=True)  # fmt: skip
        (stored,) = plain.glob("*/*.pgdump.zst")
        runs: dict[str, list[float]] = {"stage": [], "unencrypted": [], "encrypted": []}
        for i in range(args.rounds):
            runs["stage"].append(measure([sys.executable, "-c", STAGE, str(stored)], env)["wall"])
            keyless = {k: v for k, v in env.items() if k != "OFFSITE_PASSPHRASE"}
            for name, dest, its_env in (("unencrypted", plain, keyless),
                                        ("encrypted", sealed, env)):  # fmt: skip
                into = pg.url(f"{name}_{i}")
                runs[name].append(measure([*offsite, "restore", str(dest), "--into", into,
                                           "--no-owner"], its_env)["wall"])  # fmt: skip
                pg.sql("postgres", f"DROP DATABASE {name}_{i};")
        med = {name: statistics.median(walls) for name, walls in runs.items()}
        stored_mib = stored.stat().st_size / MB
        print(f"pgbench scale {args.scale}, {args.docs} docs: entry {stored_mib:.0f} MiB stored "
              f"(zstd); median of {args.rounds} rounds")  # fmt: skip
        for name, walls in runs.items():
            print(f"{name:12} {' '.join(f'{w:.2f}' for w in walls):>24} {med[name]:8.2f} s")
        print(f"staging / unencrypted restore: {med['stage'] / med['unencrypted']:.2f}x")
        print(f"unencrypted (staged) / encrypted (streamed): "
              f"{med['unencrypted'] / med['encrypted']:.2f}x")  # fmt: skip
    finally:
        pg.close()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
