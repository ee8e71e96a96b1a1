"""A container image of 1 GiB in layers, from a registry into an encrypted backup: offsite
against `skopeo copy docker://… oci-archive:` followed by `gpg --symmetric`, same image,
same run.

    .venv/bin/python bench/images.py [--layers 8] [--layer-mib 128] [--rounds 2]

Starts Debian's docker-registry (distribution 2.8) on a free port (tests/servers.py),
builds a one-platform image of ``--layers`` layers of ``--layer-mib`` MiB of incompressible
bytes (what gzip-compressed layers are) and pushes it with skopeo. Times, alternating,
``--rounds`` times:
    offsite:    offsite backup oci+http://…/bench/app:1 --to DIR   (OCI layout tar, zstd, AES256)
    skopeo:     skopeo copy docker://… oci-archive:FILE
    gpg:        gpg --symmetric FILE                                (gpg's defaults: ZIP)
    gpg -z0:    gpg --symmetric --compress-algo none FILE           (as offsite encrypts)
Goal: offsite no slower than skopeo + gpg (<= 1.0x). Read the best round of each; the
ratio against skopeo + gpg -z0 is printed too, the fairer peer (offsite does not compress
twice). Machines are noisy: compare within one run.
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
from common import MB, measure, rounds_table  # noqa: E402
from tests.oci.images import build, push  # noqa: E402
from tests.servers import OciRegistry  # noqa: E402

PASSPHRASE = "bench-passphrase"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--layer-mib", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offsite-imgbench-"))
    registry = OciRegistry()
    try:
        made = build(work / "layout", tag="1", platforms=("linux/amd64",),
                     big_layer=args.layer_mib * MB, big_layers=args.layers)  # fmt: skip
        push(made, registry, "bench/app")
        shutil.rmtree(work / "layout")
        size = sum(p.stat().st_size for p in registry.storage.rglob("data"))
        secret = work / "passphrase"
        secret.write_text(PASSPHRASE)
        (work / "gnupg").mkdir(mode=0o700)
        env = {**os.environ, "OFFSITE_PASSPHRASE": PASSPHRASE, "GNUPGHOME": str(work / "gnupg")}
        gpg = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase-file",
               str(secret), "--symmetric", "--cipher-algo", "AES256"]  # fmt: skip
        rows: dict[str, list[dict[str, float]]] = {
            k: [] for k in ("offsite", "skopeo", "gpg", "gpg -z0")
        }
        for n in range(args.rounds):
            dest = work / f"dest{n}"
            rows["offsite"].append(measure(
                [sys.executable, "-m", "offsite", "backup", registry.url("bench/app:1"),
                 "--to", str(dest)], env))  # fmt: skip
            stored = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
            shutil.rmtree(dest)
            archive = work / "app.tar"
            pull = ["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                    f"docker://{registry.host}/bench/app:1", f"oci-archive:{archive}"]  # fmt: skip
            rows["skopeo"].append(measure(pull, env))
            pulled = archive.stat().st_size
            rows["gpg"].append(measure([*gpg, "-o", str(work / "a.gpg"), str(archive)], env))
            plain = [*gpg, "--compress-algo", "none", "-o", str(work / "b.gpg"), str(archive)]
            rows["gpg -z0"].append(measure(plain, env))
            for leftover in ("app.tar", "a.gpg", "b.gpg"):
                (work / leftover).unlink()
        version = subprocess.run(["skopeo", "--version"], capture_output=True, text=True)
        print(f"image {size / MB:.0f} MiB in {args.layers} layers; offsite stored "
              f"{stored / MB:.0f} MiB, skopeo's archive {pulled / MB:.0f} MiB; "
              f"{version.stdout.strip()}")  # fmt: skip
        best = rounds_table(rows, size, "peak_tree_mb")
        for peer in ("gpg", "gpg -z0"):
            two = best["skopeo"] + best[peer]
            ratio = best["offsite"] / two
            print(f"offsite / (skopeo + {peer}) = {best['offsite']:.2f} / {two:.2f} = "
                  f"{ratio:.2f}x (goal <= 1.0): {'met' if ratio <= 1 else 'missed'}")  # fmt: skip
    finally:
        registry.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
