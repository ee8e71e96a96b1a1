"""Backing up 50 repositories: offsite's parallel pool (full, then incremental from its
mirror cache) against a plain serial `git clone --mirror` loop, same repositories, same run.

    .venv/bin/python bench/git_repos.py [--repos 50] [--mib 3] [--jobs 4] [--rounds 3]

The repositories are generated under bench/work/git (a few MiB each: commits of random,
incompressible files, so git's packs are as big as the data) and served over `git://`
by a `git daemon` on loopback with a little latency per connection, as a remote server
would have. Each round: the serial loop clones all of them; offsite backs them all up
into a folder (zstd, encrypted) with an empty mirror cache (full); a few repositories get
a commit; offsite backs them up again from the cache (incremental). Goal: the
incremental run at least 1.7x faster than the serial loop. ``--encrypt`` none compares
like with like (git clone encrypts nothing); passphrase (the default) stretches the
passphrase once per set (``key.gpg``; each repository's entry is encrypted with the set's
data key); recipient encrypts to a public key.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work" / "git"
OFFSITE = str(Path(sys.executable).with_name("offsite"))
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}  # fmt: skip


def make_repo(path: Path, mib: float, rng: random.Random) -> None:
    """A bare repository of ~``mib`` MiB written with git fast-import: 12 commits."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    commits, stream = 12, []
    per_file = int(mib * (1 << 20) / commits)
    for c in range(commits):
        data = rng.randbytes(per_file)
        mark = c + 1
        stream.append(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
        message = f"commit {c}".encode()
        stream.append(
            b"commit refs/heads/main\ncommitter b <b@x> %d +0000\ndata %d\n%s\n"
            % (1700000000 + c, len(message), message)
            + b"M 100644 :%d file%d.bin\n\n" % (mark, c)
        )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(stream),
                   check=True, env=GIT_ENV)  # fmt: skip
    subprocess.run(["git", "tag", "v1", "main"], cwd=path, check=True, env=GIT_ENV)
    subprocess.run(["git", "gc", "-q"], cwd=path, check=True, env=GIT_ENV)


def add_commit(repo: Path, scratch: Path, rng: random.Random) -> None:
    work = scratch / repo.name
    subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True, env=GIT_ENV)
    (work / f"new-{rng.random()}.bin").write_bytes(rng.randbytes(64 << 10))
    subprocess.run(["git", "add", "-A"], cwd=work, check=True, env=GIT_ENV)
    subprocess.run(["git", "commit", "-q", "-m", "new"], cwd=work, check=True, env=GIT_ENV)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, check=True, env=GIT_ENV)
    shutil.rmtree(work)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env or GIT_ENV, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--mib", type=float, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changed", type=int, default=5, help="repositories changed between runs")
    parser.add_argument("--encrypt", choices=("passphrase", "recipient", "none"),
                        default="passphrase")  # fmt: skip
    args = parser.parse_args()
    rng = random.Random(7)
    remotes = WORK / "remotes"
    shutil.rmtree(WORK, ignore_errors=True)
    names = [f"svc-{i:03d}.git" for i in range(args.repos)]
    for name in names:
        make_repo(remotes / name, args.mib, rng)
    size = sum(f.stat().st_size for f in remotes.rglob("*") if f.is_file()) / (1 << 20)
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", f"--port={port}",
         f"--base-path={remotes}", str(remotes)], stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    urls = [f"git://127.0.0.1:{port}/{n}" for n in names]
    env = {**GIT_ENV, "OFFSITE_PASSPHRASE": "bench", "PATH": os.environ["PATH"]}
    encryption = {"none": ["--no-encrypt"], "passphrase": []}.get(args.encrypt, [])
    if args.encrypt == "recipient":
        home = WORK / "gnupg"
        home.mkdir(mode=0o700)
        env["GNUPGHOME"] = str(home)
        keygen = ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "bench@example",
                  "rsa3072", "encr", "never"]  # fmt: skip
        subprocess.run(keygen, env=env, check=True, capture_output=True)
        encryption = ["--recipient", "bench@example"]
    rows = []
    try:
        for r in range(args.rounds):
            clones = WORK / f"serial-{r}"
            serial = 0.0
            for url in urls:
                serial += timed(["git", "clone", "--mirror", "--quiet", url,
                                 str(clones / url.rsplit("/", 1)[1])])  # fmt: skip
            cache, sets = WORK / f"cache-{r}", WORK / f"sets-{r}"
            backup = [OFFSITE, "backup", *(f"git+{u}" for u in urls), "--to", str(sets),
                      "--mirror-cache", str(cache), "--jobs", str(args.jobs),
                      *encryption]  # fmt: skip
            full = timed(backup, env)
            for name in rng.sample(names, args.changed):
                add_commit(remotes / name, WORK, rng)
            incremental = timed(backup, env)
            rows.append((serial, full, incremental))
            shutil.rmtree(clones)
            shutil.rmtree(cache)
            shutil.rmtree(sets)
            print(f"round {r + 1}: serial clone --mirror {serial:.2f} s, offsite full "
                  f"{full:.2f} s, incremental {incremental:.2f} s", flush=True)  # fmt: skip
    finally:
        daemon.terminate()
    best = [min(col) for col in zip(*rows)]
    print(f"{args.repos} repositories, {size:.0f} MiB in all, --jobs {args.jobs}, "
          f"encryption {args.encrypt}, "
          f"{args.changed} changed between runs; {os.cpu_count()} cores")  # fmt: skip
    serial, full, incremental = best
    print(f"best of {args.rounds}: serial {serial:.2f} s, full {full:.2f} s "
          f"({serial / full:.2f}x), incremental {incremental:.2f} s "
          f"({serial / incremental:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
