"""Backup throughput and peak memory: offsite against `tar | zstd | gpg`, same data, same run.

    .venv/bin/python bench/backup_throughput.py [--size-gb 1.0] [--rounds 3] [--work DIR]

Generates a folder of mixed data (about 40 % incompressible, 60 % text), then times
    baseline: tar -cf - | zstd -T0 -3 | gpg --symmetric --cipher-algo AES256 > file
    offsite:  offsite backup FOLDER --to DEST   (zstd level 3, same passphrase mode)
rounds alternating, and prints the median wall time, throughput, output size, and peak
RSS: of the largest single process (wait4) and of the whole process tree (sampled from
/proc every 20 ms).
Machines are noisy: read the ratios, which come from one run on one machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MB, measure

PASSPHRASE = "bench-passphrase"


def generate(root: Path, total: int) -> int:
    rnd = random.Random(1)
    words = [
        ("".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=rnd.randint(2, 10))))
        for _ in range(5000)
    ]
    lines = [" ".join(rnd.choices(words, k=rnd.randint(4, 16))) + "\n" for _ in range(80_000)]
    written, i = 0, 0
    root.mkdir(parents=True)
    while written < total:
        folder = root / f"d{i % 10}"
        folder.mkdir(exist_ok=True)
        size = min(rnd.choice([64 * 1024, MB, 8 * MB, 16 * MB]), total - written)
        path = folder / f"f{i:05d}"
        if i % 5 < 2:
            path.write_bytes(os.urandom(size))
        else:
            rnd.shuffle(lines)
            text = "".join(lines).encode()
            path.write_bytes((text * (size // len(text) + 1))[:size])
        written += size
        i += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="CPU seconds per process")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-", dir=args.work))
    try:
        data = work / "data"
        raw = generate(data, int(args.size_gb * 1024 * MB))
        subprocess.run(["sync"], check=False)
        env = {**os.environ, "OFFSITE_PASSPHRASE": PASSPHRASE, "GNUPGHOME": str(work / "gnupg")}
        (work / "gnupg").mkdir(mode=0o700)
        baseline_out = work / "baseline.tar.zst.gpg"
        script = (
            'set -euo pipefail; tar -cf - -C "$1" . | zstd -T0 -3 -q -c | '
            "gpg --batch --pinentry-mode loopback --passphrase-fd 3 --symmetric "
            '--cipher-algo AES256 --compress-algo none -o "$2" 3<<<"$OFFSITE_PASSPHRASE"'
        )
        offsite = [sys.executable, "-m", "offsite", "backup", str(data), "--to", str(work / "dest")]
        # Warm the page cache once so neither side pays for the first read.
        subprocess.run(["tar", "-cf", "/dev/null", "-C", str(data), "."], check=True)
        commands = {
            "tar|zstd|gpg": ["bash", "-c", script, "bash", str(data), str(baseline_out)],
            "offsite": offsite,
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                if name == "offsite":
                    shutil.rmtree(work / "dest", ignore_errors=True)
                else:
                    baseline_out.unlink(missing_ok=True)
                runs[name].append(measure(argv, env, [] if args.profile else None))
        results = {}
        for name, rs in runs.items():
            results[name] = {
                "wall": statistics.median(r["wall"] for r in rs),
                "peak_process_mb": max(r["peak_process_mb"] for r in rs),
                "peak_tree_mb": max(r["peak_tree_mb"] for r in rs),
            }
            print(f"{name}: rounds " + " ".join(f"{r['wall']:.2f}" for r in rs))
            if args.profile:
                middle = sorted(rs, key=lambda r: r["wall"])[len(rs) // 2]
                cpu = " ".join(f"{k} {v:.2f}" for k, v in middle["cpu"].items())
                print(f"  CPU s, the median round: {sum(middle['cpu'].values()):.2f}: {cpu}")
        results["tar|zstd|gpg"]["out"] = baseline_out.stat().st_size
        results["offsite"]["out"] = sum(p.stat().st_size for p in (work / "dest").rglob("*.gpg"))

        load = os.getloadavg()
        print(f"data: {raw / MB:.0f} MiB in {sum(1 for _ in data.rglob('*'))} paths; "
              f"load average after: {load[0]:.2f} {load[1]:.2f}")  # fmt: skip
        print(
            f"{'':14} {'wall s':>8} {'MiB/s':>8} {'out MiB':>9} "
            f"{'peak proc MiB':>14} {'peak tree MiB':>14}"
        )
        for name, r in results.items():
            print(
                f"{name:14} {r['wall']:8.2f} {raw / MB / r['wall']:8.1f} {r['out'] / MB:9.1f} "
                f"{r['peak_process_mb']:14.1f} {r['peak_tree_mb']:14.1f}"
            )
        base, ours = results["tar|zstd|gpg"], results["offsite"]
        print(
            f"ratio offsite/baseline: wall {ours['wall'] / base['wall']:.2f}x, "
            f"output {ours['out'] / base['out']:.3f}x"
        )
        limit = 150
        print(
            f"offsite peak RSS {ours['peak_process_mb']:.0f} MiB (goal < {limit} MiB): "
            f"{'OK' if ours['peak_process_mb'] < limit else 'OVER'}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
