"""A 1 GB backup into an S3-compatible server: straight to the bucket, against the
usual two steps of dumping to a file and `aws s3 cp`-ing it, same data, same run.

    .venv/bin/python bench/s3_upload.py [--size-gb 1.0] [--rounds 2]

Starts moto's S3 server (tests/servers.py) on a free port and installs the AWS CLI from
PyPI into bench/work/awscli (its own venv: awscli pins botocore). The source is a
command printing ``--size-gb`` of random bytes from a file (a dump that compresses no
further, so the backup is as large as the data). Times, alternating, ``--rounds`` times:
    direct:  offsite backup --exec data='cat FILE' --to s3://bucket/…   (zstd, encrypted)
    to file: offsite backup --exec data='cat FILE' --to DIR             (the same backup)
    aws cp:  aws s3 cp DIR/<set>/data…gpg s3://bucket/…                (the same bytes)
Goal: direct no slower than "to file" + "aws cp". Machines are noisy: compare within
one run, and read the best round of each. With ``--link-mib-s N`` both uploads go through
a link of N MiB/s (``common.Link``), as to a store on other machines: moto shares this
machine's two cores with the backup, which hides what the direct path overlaps.
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
from common import MB, Link, measure, rounds_table  # noqa: E402
from tests.servers import MotoS3  # noqa: E402

PASSPHRASE = "bench-passphrase"
AWSCLI = ROOT / "bench" / "work" / "awscli"


def awscli() -> Path:
    aws = AWSCLI / "bin" / "aws"
    if not aws.exists():
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI)], check=True)
        subprocess.run([str(AWSCLI / "bin" / "pip"), "install", "-q", "awscli"], check=True)
    return aws


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--link-mib-s",
        type=float,
        default=0,
        help="put a link of this many MiB/s between the uploads and the store",
    )
    args = parser.parse_args()
    aws = awscli()
    version = subprocess.run([str(aws), "--version"], capture_output=True, text=True)
    work = Path(tempfile.mkdtemp(prefix="offsite-s3bench-"))
    moto = MotoS3()
    link = Link(moto.port, args.link_mib_s) if args.link_mib_s else None
    endpoint_url = f"http://127.0.0.1:{link.port}" if link else moto.endpoint
    try:
        size = int(args.size_gb * 1024 * MB)
        source = work / "dump.bin"
        with open(source, "wb") as fh:
            for _ in range(size // (64 * MB)):
                fh.write(os.urandom(64 * MB))
        subprocess.run(["cat", str(source)], stdout=subprocess.DEVNULL, check=True)  # cache it
        bucket = moto.bucket()
        env = {**os.environ, **moto.env, "AWS_DEFAULT_REGION": "us-east-1",
               "OFFSITE_PASSPHRASE": PASSPHRASE, "GNUPGHOME": str(work / "gnupg")}  # fmt: skip
        (work / "gnupg").mkdir(mode=0o700)
        backup = [sys.executable, "-m", "offsite", "backup", "--exec", f"data=cat {source}"]
        endpoint = ["--s3-endpoint-url", endpoint_url]
        rows: dict[str, list[dict[str, float]]] = {"direct": [], "to file": [], "aws cp": []}
        for n in range(args.rounds):
            rows["direct"].append(
                measure([*backup, "--to", f"s3://{bucket}/direct{n}", *endpoint], env)
            )
            local = work / f"local{n}"
            rows["to file"].append(measure([*backup, "--to", str(local)], env))
            (entry,) = local.glob("*/data.*")
            target = f"s3://{bucket}/cp{n}/{entry.name}"
            copy = [str(aws), "s3", "cp", "--only-show-errors", str(entry), target,
                    "--endpoint-url", endpoint_url]  # fmt: skip
            rows["aws cp"].append(measure(copy, env))
            out = entry.stat().st_size
            shutil.rmtree(local)
            client = moto.client()
            for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])  # moto holds them in memory
        print(f"data {size / MB:.0f} MiB, backup {out / MB:.0f} MiB; {version.stdout.strip()}")
        if link:
            print(f"through a link of {args.link_mib_s:g} MiB/s to the store")
        best = rounds_table(rows, out)
        two_step = best["to file"] + best["aws cp"]
        ratio = best["direct"] / two_step
        print(
            f"direct / (to file + aws cp) = {best['direct']:.2f} / {two_step:.2f} = {ratio:.2f}x "
            f"(goal <= 1): {'met' if ratio <= 1 else 'missed'}"
        )
        print(f"upload alone: aws cp {out / MB / best['aws cp']:.1f} MiB/s")
    finally:
        if link:
            link.close()
        moto.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
