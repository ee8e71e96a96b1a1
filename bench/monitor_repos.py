"""The monitor over 50 repositories: API requests per repository and wall time, the
concurrent checks against one repository at a time, same fake GitHub, same run.

    .venv/bin/python bench/monitor_repos.py [--repos 50] [--latency-ms 40]

The fake GitHub (tests/fakegithub.py, GitHub's own response shapes) answers after
``--latency-ms`` (GitHub's API typically takes tens of milliseconds and more), each
repository with a week of nightly runs and their backup-* artifacts. Goal: at most 3
requests per repository, checked concurrently.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
from tests.fakegithub import TOKEN, FakeGitHub  # noqa: E402

from offsite.monitor import github as reader_module  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=40)
    args = parser.parse_args()
    fake = FakeGitHub()
    handle = fake._handle

    def slow(h, method):  # type: ignore[no-untyped-def]
        time.sleep(args.latency_ms / 1000)
        return handle(h, method)

    fake._handle = slow  # type: ignore[method-assign]
    os.environ.update(GITHUB_TOKEN=TOKEN, GITHUB_API_URL=fake.url)
    now = datetime.now(timezone.utc)
    repos = [f"octo-org/svc-{i:03d}" for i in range(args.repos)]
    for repo in repos:
        flow = fake.workflow(repo)
        for night in range(7, 0, -1):
            fake.run(flow, "success", now - timedelta(days=night - 1, hours=2), backup_size=1000)
    results = {}
    for name, workers in (("one at a time", 1), ("concurrent", reader_module.WORKERS)):
        reader_module.WORKERS = workers
        reader = reader_module.GitHubReader()
        before = len(fake.log)
        start = time.perf_counter()
        seen = reader.observe_all(repos, "backup.yml", None, None)
        wall = time.perf_counter() - start
        assert all(s.error is None for s in seen), [s.error for s in seen if s.error]
        results[name] = (wall, len(fake.log) - before, sum(s.requests for s in seen))
    fake.close()
    print(f"{args.repos} repositories, {args.latency_ms:.0f} ms per API answer")
    for name, (wall, served, counted) in results.items():
        print(f"{name:14} {wall:6.2f} s  {served} requests served ({served / args.repos:.2f} "
              f"per repository), {counted} counted by offsite")  # fmt: skip
    serial, parallel = results["one at a time"][0], results["concurrent"][0]
    print(f"concurrent is {serial / parallel:.1f}x faster")
    worst = max(r[1] for r in results.values()) / args.repos
    print(f"requests per repository {worst:.2f} (goal <= 3): {'met' if worst <= 3 else 'missed'}")


if __name__ == "__main__":
    main()
