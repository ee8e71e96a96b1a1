"""Incremental sets of files (issue 32): a diff against the full it is made from, every
figure a ratio from one run on one machine.

    .venv/bin/python bench/incremental.py [--files 20000] [--size-gb 2.0] [--work DIR]

Generates a folder of ``--files`` files (about 40 % incompressible, 60 % text), then:
    full:     offsite backup DIR --incremental --to A   (the base, with its index)
    plain:    offsite backup DIR --to P                 (a full without an index: today's)
    restic:   restic backup DIR                         (Debian's restic, if installed)
changes 1 % of the files wholly, adds 0.5 %, deletes 0.2 %, then:
    diff:     offsite backup DIR --incremental --to A   (against the full)
    restic:   restic backup DIR                         (its second backup)
    alone:    tar of the changed and added files | zstd -3 (what the change is, compressed)
    restore:  offsite restore A (full + diff) against a full of the same tree restored
and, on a second full of the changed tree, every mtime touched and no content changed
(a fresh checkout):
    touched:  offsite backup DIR --incremental --to B   against
    sha256sum: find DIR -type f -print0 | xargs -0 sha256sum
and, with ``--repos N`` (default 50), N repositories of 30 commits each, backed up whole,
then again after one new commit in each (both runs with the mirror cache, as the
template keeps it). Prints each goal's ratio and the load average beside it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MB, measure

PASSPHRASE = "bench-passphrase"


def generate(root: Path, files: int, total: int) -> None:
    rnd = random.Random(7)
    words = ["".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=rnd.randint(2, 10)))
             for _ in range(5000)]  # fmt: skip
    text = "".join(" ".join(rnd.choices(words, k=12)) + "\n" for _ in range(40_000)).encode()
    size = total // files
    for i in range(files):
        folder = root / f"d{i % 50:02d}" / f"s{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        write(folder / f"f{i:06d}", size, i, text)


def write(path: Path, size: int, i: int, text: bytes) -> None:
    if i % 5 < 2:
        path.write_bytes(os.urandom(size))
    else:
        start = random.randrange(0, len(text) - size) if len(text) > size else 0
        path.write_bytes((text[start:] * (size // max(1, len(text) - start) + 1))[:size])


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def newest_set(dest: Path) -> Path:
    return sorted(p for p in dest.iterdir() if p.is_dir())[-1]


def ratio(name: str, value: float, goal: str) -> None:
    load = os.getloadavg()
    print(f"{name:<58} {value:6.3f}  (goal {goal}; load {load[0]:.2f} {load[1]:.2f})")


def git(*argv: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
                        "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"})  # fmt: skip


def repositories(
    work: Path, count: int, offsite: list[str], env: dict[str, str], index_cache: bool,
    commits: int = 30,
) -> None:  # fmt: skip
    """N repositories, a full run, one new commit in each, a diff run: stored and wall
    (with ``index_cache``, the diff reads its base's ref lists from --index-cache)."""
    rnd = random.Random(3)
    urls = []
    for i in range(count):
        tree, bare = work / f"w{i:02d}", work / "remotes" / f"r{i:02d}.git"
        git("init", "-q", "-b", "main", str(tree))
        for c in range(commits):
            (tree / f"f{c % 7}.txt").write_bytes(rnd.randbytes(20_000).hex().encode())
            git("add", ".", cwd=tree)
            git("commit", "-q", "-m", f"commit {c}", cwd=tree)
        git("clone", "-q", "--bare", str(tree), str(bare))
        git("remote", "add", "origin", str(bare), cwd=tree)
        urls.append(f"git+file://{bare}")
    dest, cache = work / "G", work / "cache"
    argv = [*offsite, "backup", *urls, "--incremental", "--mirror-cache", str(cache), "--to",
            str(dest)]  # fmt: skip
    if index_cache:
        argv += ["--index-cache", str(work / "index-cache")]
    measure(argv, env)  # the base, and the mirror cache filled
    warm = [*offsite, "backup", *urls, "--mirror-cache", str(cache), "--to", str(work / "F")]
    full = measure(warm, env)  # a full run with the cache warm, as the template's would be
    for i in range(count):
        tree = work / f"w{i:02d}"
        (tree / "new.txt").write_bytes(rnd.randbytes(2_000).hex().encode())
        git("add", ".", cwd=tree)
        git("commit", "-q", "-m", "one more", cwd=tree)
        git("push", "-q", "origin", "main", cwd=tree)
    diff = measure(argv, env)
    full_set, diff_set = sorted(p for p in dest.iterdir() if p.is_dir())
    print(
        f"{count} repositories: full {full['wall']:.2f} s ({du(full_set) / MB:.2f} MiB), "
        f"diff {diff['wall']:.2f} s ({du(diff_set) / MB:.3f} MiB)"
    )
    ratio("repositories: diff set / full set (bytes)", du(diff_set) / du(full_set), "<= 0.03")
    kept = " (--index-cache)" if index_cache else ""
    ratio(f"repositories: diff wall / full wall{kept}", diff["wall"] / full["wall"], "<= 0.5")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--only-repos", action="store_true", help="skip the folder figures")
    parser.add_argument(
        "--index-cache", action="store_true", help="repositories: the runs keep --index-cache"
    )
    parser.add_argument("--commits", type=int, default=30, help="repositories: their history")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="offsite-incbench-", dir=args.work))
    restic = shutil.which("restic")
    env = {**os.environ, "OFFSITE_PASSPHRASE": PASSPHRASE, "RESTIC_PASSWORD": PASSPHRASE,
           "RESTIC_CACHE_DIR": str(work / "restic-cache")}  # fmt: skip
    offsite = [sys.executable, "-m", "offsite"]
    try:
        if args.repos:
            repositories(work, args.repos, offsite, env, args.index_cache, args.commits)
        if args.only_repos:
            return
        data = work / "data"
        generate(data, args.files, int(args.size_gb * 1024 * MB))
        time.sleep(1.1)  # every file older than the full's start second
        subprocess.run(["sync"], check=False)
        subprocess.run(["tar", "-cf", "/dev/null", "-C", str(data), "."], check=True)  # warm
        a, p, b = work / "A", work / "P", work / "B"
        full = measure([*offsite, "backup", str(data), "--incremental", "--to", str(a)], env)
        plain = measure([*offsite, "backup", str(data), "--to", str(p)], env)
        if restic:
            subprocess.run([restic, "-q", "-r", str(work / "repo"), "init"], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            measure([restic, "-q", "-r", str(work / "repo"), "backup", str(data)], env)
        grown_from = du(work / "repo") if restic else 0

        rnd = random.Random(11)
        paths = sorted(x for x in data.rglob("f*") if x.is_file())
        size = paths[0].stat().st_size
        changed = rnd.sample(paths, len(paths) // 100)
        rest = [x for x in paths if x not in set(changed)]
        deleted = rnd.sample(rest, len(paths) // 500)
        for x in changed:
            write(x, size, rnd.randrange(5), b"changed text " * 1000)
        added = [data / "new" / f"n{i:05d}" for i in range(len(paths) // 200)]
        (data / "new").mkdir()
        for i, x in enumerate(added):
            write(x, size, i, b"added text " * 1000)
        for x in deleted:
            x.unlink()
        listing = work / "changed.txt"
        listing.write_text("".join(str(x.relative_to(data)) + "\n" for x in changed + added))
        alone = subprocess.run(f'tar -cf - -C "{data}" -T "{listing}" | zstd -3 -q -c | wc -c',
                               shell=True, capture_output=True, text=True, check=True)  # fmt: skip
        subprocess.run(["sync"], check=False)

        diff = measure([*offsite, "backup", str(data), "--incremental", "--to", str(a)], env)
        stored = du(newest_set(a))
        if restic:
            second = measure([restic, "-q", "-r", str(work / "repo"), "backup", str(data)], env)
            grown = du(work / "repo") - grown_from

        final = work / "F"  # a full of the same tree, to restore side by side
        measure([*offsite, "backup", str(data), "--to", str(final)], env)
        subprocess.run(["sync"], check=False)
        restored = measure([*offsite, "restore", str(a), "--into", str(work / "r1")], env)
        shutil.rmtree(work / "r1")
        subprocess.run(["sync"], check=False)
        one = measure([*offsite, "restore", str(final), "--into", str(work / "r2")], env)
        shutil.rmtree(work / "r2")

        measure([*offsite, "backup", str(data), "--incremental", "--to", str(b)], env)
        time.sleep(1.1)
        for x in data.rglob("*"):
            os.utime(x, follow_symlinks=False)  # a fresh checkout: new mtimes, same content
        subprocess.run(["sync"], check=False)
        touched = measure([*offsite, "backup", str(data), "--incremental", "--to", str(b)], env)
        touched_stored = du(newest_set(b))
        hashing = measure(["bash", "-c", f'find "{data}" -type f -print0 | xargs -0 sha256sum '
                           '> /dev/null'], env)  # fmt: skip

        total = sum(x.stat().st_size for x in data.rglob("*") if x.is_file())
        print(f"{args.files} files, {total / MB:.0f} MiB; changed {len(changed)}, added "
              f"{len(added)}, deleted {len(deleted)}; full {full['wall']:.2f} s, plain "
              f"{plain['wall']:.2f} s, diff {diff['wall']:.2f} s ({stored / MB:.2f} MiB), "
              f"changed alone {int(alone.stdout) / MB:.2f} MiB")  # fmt: skip
        ratio("diff wall / full wall", diff["wall"] / full["wall"], "<= 0.15")
        ratio("diff stored / changed and added compressed alone", stored / int(alone.stdout),
              "<= 1.2")  # fmt: skip
        print(
            f"touched: stored {touched_stored / MB:.3f} MiB (goal <= 1 MiB), "
            f"{touched['wall']:.2f} s; sha256sum {hashing['wall']:.2f} s"
        )
        ratio("touched wall / find | xargs sha256sum", touched["wall"] / hashing["wall"], "<= 1.3")
        if restic:
            print(
                f"restic second backup {second['wall']:.2f} s, repository grew {grown / MB:.2f} MiB"
            )
            ratio("diff wall / restic's second backup", diff["wall"] / second["wall"], "<= 1.0")
            ratio("diff stored / restic's growth", stored / max(1, grown), "<= 1.5")
        else:
            print("restic is not installed (apt-get install restic): its rows are left out")
        ratio("full with index / full without (the index's cost)", full["wall"] / plain["wall"],
              "reported")  # fmt: skip
        ratio("restore full + diff / restore a full of the same tree",
              restored["wall"] / one["wall"], "<= 1.3")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
