"""One passphrase stretch per set: a passphrase-encrypted set of 40 small entries against
one of a single entry, in one run, rounds alternating, the median of each.

    .venv/bin/python bench/entries.py [--entries 40] [--rounds 5]

Each entry is a command's few bytes (``--exec eN=echo …``), so what the run costs beside
process start is the encryption set-up: the passphrase stretched for ``key.gpg`` once a
set, each entry encrypted with the set's data key (SPEC §2). Goal: 40 entries <= 2x one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offsite-entries-"))
    try:
        env = {**os.environ, "OFFSITE_PASSPHRASE": "bench-passphrase"}
        many = [f"--exec=e{i}=echo entry {i}" for i in range(args.entries)]
        argvs = {
            "1 entry": [sys.executable, "-m", "offsite", "backup", "--exec=e=echo entry",
                        "--to", str(work / "one")],
            f"{args.entries} entries": [sys.executable, "-m", "offsite", "backup", *many,
                                        "--to", str(work / "many")],
        }  # fmt: skip
        walls: dict[str, list[float]] = {name: [] for name in argvs}
        for _ in range(args.rounds):
            for name, argv in argvs.items():
                shutil.rmtree(work / "one", ignore_errors=True)
                shutil.rmtree(work / "many", ignore_errors=True)
                walls[name].append(measure(argv, env)["wall"])
        for name, times in walls.items():
            rounds = " ".join(f"{t:.2f}" for t in times)
            print(f"{name:12} rounds s: {rounds}   median {statistics.median(times):.2f} s")
        one, many_s = (statistics.median(t) for t in walls.values())
        print(f"{args.entries} entries / 1 entry: {many_s / one:.2f}x (goal <= 2x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
