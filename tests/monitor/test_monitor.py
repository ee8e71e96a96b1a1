"""The monitor against a fake GitHub that serves (and validates) GitHub's REST shapes:
one scenario per way a backup goes wrong, each with its exit code and its alert."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.fakegithub import FakeGitHub
from tests.monitor.conftest import Hooks

REPO = "octo-org/app"
MB = 1 << 20


def ago(**kw: float) -> datetime:
    """A moment that long before now (now when called: a test's runs are as old as it says)."""
    return datetime.now(timezone.utc).replace(microsecond=0) - timedelta(**kw)


def nightly(github: FakeGitHub, nights: int = 5, size: int = 3 * MB, **last: object) -> None:
    """A workflow that succeeded every night, the last one 2 hours ago."""
    flow = github.workflow(REPO)
    for n in range(nights, 0, -1):
        github.run(flow, "success", ago(hours=2, days=n - 1), backup_size=size)


def check(cli, tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    r = cli("monitor", "--repo", REPO, "--max-age", "26h", "--json",
            "--state-file", tmp_path / "state.json", *extra)  # fmt: skip
    return r, json.loads(r.out) if r.out.strip() else None


def test_fresh(cli, github: FakeGitHub, hooks: Hooks, tmp_path: Path) -> None:
    nightly(github)
    r, report = check(cli, tmp_path, "--webhook", hooks.url + "/json")
    assert r.code == 0, r.err
    (target,) = report["targets"]
    assert target["status"] == "healthy" and target["age_seconds"] == pytest.approx(7200, abs=120)
    assert target["sizes"] == [3 * MB] * 5
    assert target["url"].startswith("https://github.com/octo-org/app/actions/runs/")
    assert hooks.received == []  # --notify-on change: nothing changed
    assert report["api_requests"] == 3


@pytest.mark.parametrize(
    ("scenario", "says"),
    [
        ("stale", "last success 3d ago, over --max-age 26h"),
        ("failing", "3 failed runs in a row"),
        ("never", "no successful run"),
        ("disabled", "the workflow is disabled_inactivity"),
        ("expired", "has expired"),
        ("shrunk", "10% of the median of the 1 before it"),
        ("no-artifact", "stored no backup-* artifact"),
        ("tiny", "under --min-size"),
    ],
)
def test_unhealthy(
    cli, github: FakeGitHub, hooks: Hooks, tmp_path: Path, scenario: str, says: str
) -> None:
    flow = github.workflow(
        REPO, state="disabled_inactivity" if scenario == "disabled" else "active"
    )
    if scenario == "stale":
        github.run(flow, "success", ago(days=4), backup_size=MB)
        github.run(flow, "success", ago(days=3), backup_size=MB)
    elif scenario == "failing":
        github.run(flow, "success", ago(hours=8), backup_size=MB)
        for h in (6, 4, 2):
            github.run(flow, "failure", ago(hours=h))
        github.run(flow, None, ago(minutes=5))  # in progress: not counted either way
    elif scenario == "never":
        for h in (30, 6):
            github.run(flow, "failure", ago(hours=h))
    elif scenario in ("disabled", "expired", "no-artifact", "tiny"):
        github.run(flow, "success", ago(hours=2),
                   backup_size={"tiny": 10, "no-artifact": None}.get(scenario, MB),
                   expired=scenario == "expired")  # fmt: skip
    elif scenario == "shrunk":
        github.run(flow, "success", ago(hours=26), backup_size=10 * MB)
        github.run(flow, "success", ago(hours=2), backup_size=MB)
    extra = ["--max-failures", "2"] if scenario == "failing" else []
    if scenario == "tiny":
        extra = ["--min-size", "1024"]
    r, report = check(cli, tmp_path, "--webhook", hooks.url + "/json", *extra)
    assert r.code == 1, r.err
    (target,) = report["targets"]
    assert target["status"] == "unhealthy"
    assert any(says in reason for reason in target["reasons"]), target["reasons"]
    (_path, alert), = hooks.received  # fmt: skip
    assert alert["targets"][0]["reasons"] == target["reasons"]
    assert "::error::" not in r.out + r.err


def test_failures_within_the_allowance_are_healthy(cli, github: FakeGitHub, tmp_path: Path) -> None:
    flow = github.workflow(REPO)
    github.run(flow, "success", ago(hours=8), backup_size=MB)
    github.run(flow, "failure", ago(hours=2))
    assert check(cli, tmp_path, "--max-failures", "1")[0].code == 0
    assert check(cli, tmp_path)[0].code == 1  # the default tolerates none


def test_api_5xx_then_recovery(cli, github: FakeGitHub, tmp_path: Path) -> None:
    nightly(github)
    github.fail_next = 2
    r, _ = check(cli, tmp_path)
    assert r.code == 0, r.err
    assert github.fail_next == 0


def test_secondary_rate_limit_waits_for_retry_after(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    nightly(github)
    github.throttle_next = 1
    r, _ = check(cli, tmp_path)
    assert r.code == 0, r.err
    assert github.throttle_next == 0


def test_bad_token_is_could_not_check(
    cli, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nightly(github)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_revoked")
    r, report = check(cli, tmp_path)
    assert r.code == 3, r.err
    assert report["targets"][0]["status"] == "unknown"
    assert "401 Bad credentials" in report["targets"][0]["reasons"][0]
    assert "ghp_revoked" not in r.out + r.err


@pytest.mark.slow  # PyGithub retries the refused connection before it gives up
def test_unreachable_api_is_could_not_check(
    cli, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.close()
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # discard: nothing listens
    r, report = check(cli, tmp_path)
    assert r.code == 3 and "unreachable" in report["targets"][0]["reasons"][0]


def test_unknown_workflow(cli, github: FakeGitHub, tmp_path: Path) -> None:
    nightly(github)
    r, report = check(cli, tmp_path, "--workflow", "nightly.yml")
    assert r.code == 3 and "nightly.yml not found" in report["targets"][0]["reasons"][0]


def test_pagination_over_300_runs(cli, github: FakeGitHub, tmp_path: Path) -> None:
    """The last success lies on the third page of runs: the monitor pages back to it."""
    flow = github.workflow(REPO)
    github.run(flow, "success", ago(hours=30), backup_size=MB)
    github.run(flow, "success", ago(hours=25), backup_size=MB)
    for m in range(300, 0, -1):
        github.run(flow, "failure", ago(minutes=m))
    r, report = check(cli, tmp_path, "--max-failures", "1000")
    assert r.code == 0, r.err
    assert report["targets"][0]["age_seconds"] == pytest.approx(25 * 3600, abs=120)
    assert report["api_requests"] == 1 + 4 + 1  # the workflow, 4 pages of runs, artifacts
    r, report = check(cli, tmp_path)
    assert r.code == 1 and "300 failed runs" in report["targets"][0]["reasons"][0]


def test_several_repositories_cost_three_requests_each(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    names = [f"svc-{i}" for i in range(6)]
    github.org_repos["octo-org"] = [*names, "svc-legacy", "website"]  # svc-legacy: no workflow
    for name in names:
        flow = github.workflow(f"octo-org/{name}")
        github.run(flow, "success", ago(hours=3), backup_size=MB)
    r = cli("monitor", "--repo", "octo-org/svc-*", "--max-age", "26h", "--json",
            "--state-file", tmp_path / "s.json")  # fmt: skip
    report = json.loads(r.out)
    assert r.code == 0, r.err
    assert sorted(t["target"] for t in report["targets"]) == [
        f"octo-org/{n} backup.yml" for n in names
    ]
    before = len(github.log)
    r = cli("monitor", *[x for n in names for x in ("--repo", f"octo-org/{n}")],
            "--max-age", "26h", "--json", "--state-file", tmp_path / "s.json")  # fmt: skip
    assert json.loads(r.out)["api_requests"] == 3 * len(names) == len(github.log) - before


def test_notify_on_change_alerts_once_and_once_on_recovery(
    cli, github: FakeGitHub, hooks: Hooks, tmp_path: Path
) -> None:
    flow = github.workflow(REPO)
    github.run(flow, "success", ago(days=3), backup_size=MB)
    for _ in range(3):
        assert check(cli, tmp_path, "--webhook", hooks.url + "/json")[0].code == 1
    assert len(hooks.received) == 1
    github.run(flow, "success", ago(minutes=30), backup_size=MB)
    assert check(cli, tmp_path, "--webhook", hooks.url + "/json")[0].code == 0
    assert check(cli, tmp_path, "--webhook", hooks.url + "/json")[0].code == 0
    assert [a["targets"][0]["status"] for _, a in hooks.received] == ["unhealthy", "healthy"]
    assert "recovered" in hooks.received[1][1]["title"]


def test_failure_and_always_modes(cli, github: FakeGitHub, hooks: Hooks, tmp_path: Path) -> None:
    flow = github.workflow(REPO)
    github.run(flow, "success", ago(days=3), backup_size=MB)
    for _ in range(2):
        check(cli, tmp_path, "--webhook", hooks.url, "--notify-on", "failure")
    assert len(hooks.received) == 2
    github.run(flow, "success", ago(minutes=3), backup_size=MB)
    check(cli, tmp_path, "--webhook", hooks.url, "--notify-on", "failure")
    assert len(hooks.received) == 2
    check(cli, tmp_path, "--webhook", hooks.url, "--notify-on", "always")
    assert len(hooks.received) == 3


@pytest.mark.slow  # the retries' backoff is waited out
def test_a_failing_webhook_is_retried_then_reported(
    cli, github: FakeGitHub, hooks: Hooks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = github.workflow(REPO)
    github.run(flow, "failure", ago(hours=1))
    hooks.fail_next = 2
    r, report = check(cli, tmp_path, "--webhook", hooks.url + "/T000/B000/secret-path")
    assert r.code == 1 and len(hooks.received) == 1  # delivered on the third attempt
    assert report["webhooks"][0]["ok"] is True
    hooks.fail_next = 100
    r, report = check(
        cli, tmp_path, "--webhook", hooks.url + "/secret-path", "--notify-on", "failure"
    )
    assert r.code == 1
    assert "webhook http://127.0.0.1/… failed: HTTP 500" in r.err and "secret-path" not in r.err
    github.run(flow, "success", ago(minutes=5), backup_size=MB)
    # healthy now, but the recovery message cannot be delivered: exit 3, and the step's
    # one `healthy` output (written by offsite alone) says what the backups are: healthy
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    r, _ = check(cli, tmp_path, "--webhook", hooks.url + "/x")
    assert r.code == 3
    written = outputs.read_text()
    assert written.count("healthy<<") == 1 and "\ntrue\n" in written.split("healthy<<")[1]
    assert written.count("report<<") == 1


def test_storage_targets(cli, tree: Path, tmp_path: Path, passphrase: str) -> None:
    dest = tmp_path / "dest"
    r = cli("monitor", "--storage", dest, "--max-age", "1h", "--state-file", tmp_path / "s")
    # mistyped, or a disk not mounted: unhealthy (the alert goes out), and said so
    assert r.code == 1 and "does not exist or is not a folder (mistyped, or not mounted?)" in r.out
    dest.mkdir()
    r = cli("monitor", "--storage", dest, "--max-age", "1h", "--state-file", tmp_path / "s")
    assert r.code == 1 and "no complete backup set" in r.out
    assert cli("backup", tree, "--to", dest).code == 0
    r = cli(
        "monitor", "--storage", dest, "--max-age", "1h", "--json", "--state-file", tmp_path / "s"
    )
    assert r.code == 0, r.err
    assert json.loads(r.out)["targets"][0]["status"] == "healthy"
    r = cli("monitor", "--storage", dest, "--max-age", "1h", "--min-size", str(10**9),
            "--state-file", tmp_path / "s")  # fmt: skip
    assert r.code == 1 and "under --min-size" in r.out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-age", "soon"], "duration 'soon'"),
        (["--max-age", "1d", "--repo", "no-slash"], "OWNER/REPO"),
        (["--max-age", "1d"], "nothing to check"),
        (["--max-age", "1d", "--repo", "o/r", "--webhook", "ftp://x"], "not an http(s) address"),
        (["--max-age", "1d", "--repo", "o/r", "--max-shrink", "150"], "--max-shrink is 0 to 100"),
    ],
)
def test_bad_input_is_exit_2(cli, github: FakeGitHub, args: list[str], says: str) -> None:
    r = cli("monitor", *args)
    assert r.code == 2 and says in r.err, r.err


def test_no_token_is_exit_2(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    r = cli("monitor", "--repo", "o/r", "--max-age", "1d")
    assert r.code == 2 and "set GITHUB_TOKEN" in r.err


def test_summary_and_outputs_in_actions(
    cli, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nightly(github, nights=4)
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)  # the default --repo inside Actions
    r = cli("monitor", "--max-age", "26h", "--summary", "--state-file", tmp_path / "s")
    assert r.code == 0, r.err
    text = summary.read_text()
    assert "| [octo-org/app backup.yml](https://github.com/octo-org/app/actions/runs/" in text
    assert "✅ healthy" in text and "```mermaid\nxychart-beta" in text
    assert "bar [3.00, 3.00, 3.00, 3.00]" in text
    assert "healthy<<" in output.read_text() and "\ntrue\n" in output.read_text()
    assert "1 target checked with 3 GitHub API requests" in r.out


def test_backup_pings_a_dead_mans_switch(
    cli, hooks: Hooks, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    r = cli("backup", tree, "--to", tmp_path / "d", "--ping-url", hooks.url + "/ping/abc")
    assert r.code == 0, r.err
    assert [path for path, _ in hooks.received] == ["/ping/abc/start", "/ping/abc"]
    r = cli("backup", tmp_path / "missing", "--to", tmp_path / "d", "--ping-url", hooks.url + "/p")
    assert r.code == 2
    assert [path for path, _ in hooks.received[2:]] == ["/p/start", "/p/fail"]
    assert "does not exist" in hooks.received[3][1]
    hooks.status = 404  # the check was deleted: the backup still succeeds, with a warning
    r = cli("backup", tree, "--to", tmp_path / "d", "--ping-url", hooks.url + "/gone")
    assert r.code == 0 and "warning: ping start not delivered: HTTP 404" in r.err


def test_a_forks_run_and_artifact_never_make_backups_fresh(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    """A fork's pull request runs the workflow and uploads backup-…: it proves nothing."""
    flow = github.workflow(REPO)
    github.run(flow, "success", ago(days=3), backup_size=3 * MB)
    github.run(flow, "success", ago(minutes=10), backup_size=3 * MB, fork=True)
    r, report = check(cli, tmp_path)
    assert r.code == 1, r.err
    (target,) = report["targets"]
    assert target["status"] == "unhealthy" and any("over --max-age" in w for w in target["reasons"])
    assert target["age_seconds"] == pytest.approx(3 * 86400, abs=120)


def test_a_planted_set_never_makes_a_destination_fresh(
    cli, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    """With the passphrase at hand, a set that does not prove it was made with it (here:
    a manifest alone, dated five minutes ago) does not make the destination fresh."""
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    (real,) = list(dest.iterdir())
    old = datetime(2020, 1, 1, tzinfo=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    real.rename(dest / old)  # the real backups stopped long ago
    manifest = json.loads((dest / old / "manifest.json").read_text())
    manifest["id"] = old  # (its auth no longer holds: refused as well)
    (dest / old / "manifest.json").write_text(json.dumps(manifest))
    planted = dest / ago(minutes=5).strftime("%Y%m%dT%H%M%SZ")
    planted.mkdir()
    (planted / "manifest.json").write_text(json.dumps({
        "format": "offsite-manifest/1", "id": planted.name, "created_at": "x",
        "finished_at": "x", "entries": []}))  # fmt: skip
    args = ("monitor", "--storage", dest, "--max-age", "1h", "--json",
            "--state-file", tmp_path / "s")  # fmt: skip
    r = cli(*args)
    assert r.code == 1, r.err
    assert json.loads(r.out)["targets"][0]["status"] != "healthy"


def test_a_destination_that_cannot_be_read_is_could_not_check_and_the_rest_is_judged(
    cli, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    unreadable = tmp_path / ("x" * 300)  # a name the file system refuses (ENAMETOOLONG)
    r = cli("monitor", "--storage", dest, "--storage", unreadable, "--max-age", "1h", "--json",
            "--state-file", tmp_path / "s")  # fmt: skip
    assert r.code == 3, r.err
    by_target = {t["target"]: t["status"] for t in json.loads(r.out)["targets"]}
    assert by_target == {str(dest): "healthy", str(unreadable): "unknown"}


def test_a_diff_counts_with_its_base_and_one_without_it_is_named(
    cli, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    """SPEC §10: the monitor's sizes and freshness count a diff with its base (a small diff
    is not a backup that shrank); a diff whose base is gone is no backup, and is named."""
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--incremental", "--to", dest).code == 0
    (tree / "one-more.txt").write_text("one more\n")
    assert cli("backup", tree, "--incremental", "--to", dest).code == 0
    base, diff = sorted(p.name for p in dest.iterdir())
    args = ("monitor", "--storage", dest, "--max-age", "1h", "--min-ratio", "0.9", "--json",
            "--state-file", tmp_path / "s")  # fmt: skip
    r = cli(*args)
    assert r.code == 0, r.out
    shutil.rmtree(dest / base)
    r = cli(*args)
    assert r.code == 1
    reasons = json.loads(r.out)["targets"][0]["reasons"]
    assert any(f"set {diff} is a diff whose base is not there" in why for why in reasons)


def test_each_entry_is_judged_on_its_own_in_a_destination(
    cli, tree: Path, tmp_path: Path, sqlite_db: Path
) -> None:
    """One workflow runs hourly (the files) and nightly (the database): the files' fresh
    sets must not make a database that stopped being backed up look fresh."""
    dest = tmp_path / "dest"
    assert cli("backup", "--name", f"app=sqlite:///{sqlite_db}", "--name", f"files={tree}",
               "--to", dest, "--no-encrypt").code == 0  # fmt: skip
    (night,) = list(dest.iterdir())
    old = datetime(2020, 1, 1, tzinfo=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    night.rename(dest / old)  # the nightly backups stopped long ago
    manifest = json.loads((dest / old / "manifest.json").read_text())
    manifest["id"] = old
    (dest / old / "manifest.json").write_text(json.dumps(manifest))
    assert cli("backup", "--name", f"files={tree}", "--to", dest, "--no-encrypt").code == 0
    args = ("monitor", "--storage", dest, "--max-age", "26h", "--json",
            "--state-file", tmp_path / "s")  # fmt: skip
    assert cli(*args, "--min-ratio", "0").code == 0  # the destination as a whole: fresh
    r = cli(*args, "--entry", "app", "--entry", "files")
    assert r.code == 1, r.out
    status = {t["target"]: t["status"] for t in json.loads(r.out)["targets"]}
    assert status == {f"{dest} app": "unhealthy", f"{dest} files": "healthy"}
    r = cli("monitor", "--entry", "app", "--max-age", "1h", "--repo", "o/r")
    assert r.code == 2 and "--storage" in r.err


def test_a_full_entry_of_a_diff_set_is_judged_by_its_own_size(
    cli, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    """An entry stored full in a diff set (a dump) restores from itself alone: its base's
    bytes are not its own, and an empty dump there is too small."""
    dest, big = tmp_path / "dest", tmp_path / "big.bin"
    big.write_bytes(os.urandom(300_000))
    assert cli("backup", "--name", f"files={tree}", "--exec", f"db=cat {big}", "--to", dest,
               "--incremental").code == 0  # fmt: skip
    (tree / "x.txt").write_text("x\n")
    assert cli("backup", "--name", f"files={tree}", "--exec", "db=printf x", "--to", dest,
               "--incremental").code == 0  # fmt: skip
    r = cli("monitor", "--storage", dest, "--entry", "db", "--max-age", "26h", "--min-size",
            "1024", "--json", "--state-file", tmp_path / "s")  # fmt: skip
    assert r.code == 1, r.out
    (target,) = json.loads(r.out)["targets"]
    assert any("--min-size" in why for why in target["reasons"]), target["reasons"]


def test_summary_outside_actions_says_it_writes_nothing(
    cli, tmp_path: Path, tree: Path, passphrase: str
) -> None:
    """--summary without $GITHUB_STEP_SUMMARY (a cron job, a terminal): one warning, and the
    check itself runs as ever."""
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    r = cli("monitor", "--storage", dest, "--max-age", "1h", "--summary")
    assert r.code == 0 and "1 target checked with 0 GitHub API requests" in r.out
    assert "warning: --summary writes to $GITHUB_STEP_SUMMARY" in r.err


def test_a_wrong_passphrase_is_said_and_unhealthy(
    cli, tmp_path: Path, tree: Path, passphrase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    assert cli("backup", tree, "--to", dest).code == 0
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "not the one")
    r = cli("monitor", "--storage", dest, "--max-age", "1h")
    # unhealthy, not "could not check": every key.gpg replaced by a writer looks the same,
    # and must not turn a stale destination's alarm into a shrug
    assert r.code == 1, r.out
    assert "opens none of the 2 sets here (wrong passphrase, or their key.gpg replaced?)" in r.out
