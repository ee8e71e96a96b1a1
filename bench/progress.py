"""What the progress display costs: the same backup with it off and with it live on a
terminal, rounds alternating, the median of each.

    .venv/bin/python bench/progress.py [--size-mb 768] [--rounds 5]

The source is a command printing ``--size-mb`` of random bytes from a cached file, so the
run is the pipeline itself (zstd, passphrase, SHA-256, a folder destination):
    off:  offsite backup --exec data='cat FILE' --to DIR --json  (no progress at all)
    live: the same without --json: the line is redrawn every second, as a person at a
          terminal sees it
both in a pseudo-terminal (``script``), so that only the progress line differs.
Goal: live no more than 1 % slower than off.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import MB, measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=768)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offsite-progress-"))
    try:
        source = work / "data.bin"
        with open(source, "wb") as fh:
            for _ in range(args.size_mb // 64):
                fh.write(os.urandom(64 * MB))
        (work / "gnupg").mkdir(mode=0o700)
        env = {**os.environ, "OFFSITE_PASSPHRASE": "bench", "GNUPGHOME": str(work / "gnupg")}
        backup = [sys.executable, "-m", "offsite", "backup", "--exec", f"data=cat {source}"]
        walls: dict[str, list[float]] = {"off": [], "live": []}
        for n in range(args.rounds):
            for name in walls:
                dest = work / f"{name}{n}"
                argv = [*backup, "--to", str(dest), *(["--json"] if name == "off" else [])]
                # both on a terminal: script gives the command a pseudo-terminal
                argv = ["script", "-qfec", shlex.join(argv), "/dev/null"]
                walls[name].append(measure(argv, env)["wall"])
                shutil.rmtree(dest)
        median = {name: statistics.median(runs) for name, runs in walls.items()}
        print(f"{args.size_mb} MiB, median of {args.rounds} rounds")
        for name, runs in walls.items():
            print(f"{name:5} {' '.join(f'{w:6.2f}' for w in runs)}  median {median[name]:.2f} s")
        ratio = median["live"] / median["off"]
        print(f"live / off: {ratio:.3f}x (goal <= 1.01x): {'met' if ratio <= 1.01 else 'missed'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
