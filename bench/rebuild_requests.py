"""Restore into GitHub (SPEC §11): the requests a rebuild of a deleted repository makes,
per issue and pull request, and the time it takes at the default pace.

    .venv/bin/python bench/rebuild_requests.py [--issues 240] [--pulls 60] [--comments 300]

A repository on the fake GitHub (tests/fakegithub.py: GitHub's own shapes, its numbering,
its refusals) with that many issues, pull requests, comments, three reviews per pull
request and two releases is backed up with its metadata, deleted, and restored into a new
repository with ``--pace 0``; the requests are counted by the fake. The time at the
default pace (one write a second) is the writes the run made, one second each, plus the
run's own time: offsite waits out the pace before each write and nothing else.

Goal (issue 33): creation requests (POST) at most 1.2 per issue and pull request plus one
per comment. ``--issue-import`` is not built (the endpoint is not in GitHub's published
API description), so its figure is not measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
from tests.fakegithub import TOKEN, FakeGitHub, FakeMetadata  # noqa: E402
from tests.git.conftest import GIT_ENV, make_repo  # noqa: E402

from offsite.cli import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=240)
    parser.add_argument("--pulls", type=int, default=60)
    parser.add_argument("--comments", type=int, default=300)
    args = parser.parse_args()
    os.environ.update(GIT_ENV)
    with tempfile.TemporaryDirectory(prefix="offsite-bench-") as scratch:
        root = Path(scratch)
        fake = FakeGitHub()
        make_repo(root / "server" / "octo-org", "app", commits=3)
        fake.org_repos["octo-org"] = ["app"]
        fake.repo_attrs["octo-org/app"] = {"clone_url": f"file://{root}/server/octo-org/app.git"}
        fake.metadata["octo-org/app"] = FakeMetadata(
            issues=args.issues, pulls=args.pulls, reviews_per_pull=3,
            issue_comments=args.comments, review_comments=args.pulls, labels=8, milestones=4,
            releases={"v1.0": {"app.tar.gz": os.urandom(20000)}, "v1.1": {"a.zip": b"z" * 9000}},
            topics=["tools"], protected=["main"], rulesets=1, environments=["production"],
            variables=2, autolinks=1, hooks=1,
        )  # fmt: skip
        fake.metadata_page = 100
        os.environ.update(GITHUB_TOKEN=TOKEN, GITHUB_API_URL=fake.url, OFFSITE_PASSPHRASE="b",
                          GITHUB_SERVER_URL=f"file://{root}/server",
                          XDG_CACHE_HOME=str(root / "cache"))  # fmt: skip
        sets = root / "sets"
        code = run(["backup", "github://octo-org/app", "--include-metadata",
                    "--include-release-assets", "--to", str(sets)])  # fmt: skip
        assert code == 0, "the backup failed"
        fake.target.git_root = root / "server"
        fake.target.delete("octo-org/app")
        started = time.monotonic()
        code = run(["restore", str(sets), "--entry", "app", "--into", "github://octo-org/app",
                    "--pace", "0"])  # fmt: skip
        seconds = time.monotonic() - started
        assert code == 0, "the restore failed"
        made = fake.target.made["octo-org/app"]
        numbered = len(made.numbered)
        comments = sum(len(c) for c in made.comments.values())
        posts_items = fake.target.posts - comments
        fake.close()
    load = os.getloadavg()[0]
    writes = fake.target.writes
    print(f"load {load:.2f}; {numbered} issues and pull requests (placeholders included), "
          f"{comments} comments (reviews and review comments included)")  # fmt: skip
    print(f"POST requests: {fake.target.posts} = {posts_items} for items besides comments "
          f"+ {comments} comments")  # fmt: skip
    print(f"POST per issue and pull request, besides one per comment: "
          f"{posts_items / numbered:.3f} (goal <= 1.2; labels, milestones, releases, assets "
          "and settings counted in)")  # fmt: skip
    print(f"all writes (POST, PATCH, PUT): {writes}; all requests: {fake.api_requests()}")
    print(f"wall at --pace 0: {seconds:.1f} s; at the default pace (1 write/s): "
          f"about {writes + seconds:.0f} s ({(writes + seconds) / 60:.1f} min)")  # fmt: skip


if __name__ == "__main__":
    main()
