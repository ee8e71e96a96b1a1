"""The actions when things are not fine: a runner they do not support, bad input, a
rotten backup, a stale one that the monitor action reports once, not every hour."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.actions.harness import gh_run_download
from tests.actions.test_roundtrip import PASSPHRASE, assert_masked, assert_never_shown
from tests.conftest import example
from tests.fakegithub import TOKEN, FakeGitHub
from tests.git.conftest import make_repo, refs
from tests.monitor.conftest import Hooks


def test_a_runner_that_is_not_linux_fails_before_anything_else(job, tmp_path: Path) -> None:
    result = job(os="macOS").run("actions/verify", {"from": str(tmp_path)})
    assert result.outcome == "failure"
    assert result.steps[0].code == 2
    assert (
        "::error::offsite actions run on Linux runners (ubuntu-latest); this one is macOS"
        in result.log
    )
    assert [s.outcome for s in result.steps[1:]] == ["skipped"] * (len(result.steps) - 1)


def test_an_unknown_command_is_exit_2(job) -> None:
    result = job().run(".", {"command": "bakup"})
    assert result.outcome == "failure" and result.steps[0].code == 2
    assert (
        "command must be backup, restore, verify, prune, drill or monitor, not 'bakup'"
        in result.log
    )


def test_a_missing_passphrase_is_one_line_and_exit_2(job, tmp_path: Path) -> None:
    db = example.make_sqlite(tmp_path / "app.db", rows=10)
    result = job().run("actions/dump-database", {"database-url": f"sqlite://{db}"})
    assert result.outcome == "failure"
    step = result.step("backup")
    assert step.code == 2
    assert "::error::" in result.log and "Traceback" not in result.log


def test_mirror_repository_to_artifacts_then_back_from_the_cached_mirror(
    job, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "remotes", "app")
    runner = job()
    inputs = {"repository": f"git+file://{repo}", "to": "github-artifacts",
              "passphrase": PASSPHRASE}  # fmt: skip
    first = runner.run("actions/mirror-repository", inputs)
    assert first.outcome == "success", first.log
    stats = json.loads(Path(first.outputs["manifest"]).read_text())["entries"][0]["stats"]
    assert stats["incremental"] is False
    downloaded = gh_run_download(runner, tmp_path / "dl", first.outputs["artifact-name"])
    back = runner.run(
        "actions/restore",
        {"from": str(downloaded), "into": str(tmp_path / "back.git"), "passphrase": PASSPHRASE},
    )
    assert back.outcome == "success", back.log
    assert refs(tmp_path / "back.git") == refs(repo)

    tomorrow = job(run_id="7000002")  # a new runner; the actions cache kept the mirror
    tomorrow.cache = runner.cache
    second = tomorrow.run("actions/mirror-repository", inputs)
    assert second.outcome == "success", second.log
    assert second.step("Restore the mirrors of the last run").outputs["cache-hit"] == "false"
    stats = json.loads(Path(second.outputs["manifest"]).read_text())["entries"][0]["stats"]
    assert stats["incremental"] is True and stats["objects_fetched"] == 0


def test_verify_fails_the_step_on_a_rotten_byte(job, tmp_path: Path) -> None:
    files = example.make_tree(tmp_path / "files")
    runner = job()
    made = runner.run("actions/encrypt", {"path": str(files), "passphrase": PASSPHRASE})
    assert made.outcome == "success", made.log
    sets = str(Path(made.outputs["backup-path"]).parent)
    ok = runner.run("actions/verify", {"from": sets, "read-data": "true", "passphrase": PASSPHRASE})
    assert ok.outcome == "success" and ok.outputs["healthy"] == "true", ok.log
    stored = next(
        p
        for p in Path(made.outputs["backup-path"]).iterdir()
        if p.suffix == ".gpg" and p.name != "key.gpg"
    )
    data = bytearray(stored.read_bytes())
    data[100] ^= 1
    stored.write_bytes(bytes(data))
    bad = runner.run("actions/verify", {"from": sets, "read-data": "true"})
    assert bad.outcome == "failure" and bad.outputs["healthy"] == "false"
    report = json.loads(bad.outputs["report"])
    assert report["ok"] is False and "checksum mismatch" in report["checks"][0]["problem"]


def test_prune_dry_run_reports_and_keeps_everything(job, tmp_path: Path) -> None:
    files = example.make_tree(tmp_path / "files")
    runner = job()
    dest = tmp_path / "sets"
    for _ in range(2):
        made = runner.run(
            "actions/encrypt", {"path": str(files), "to": str(dest), "passphrase": "ours"}
        )
        assert made.outcome == "success", made.log
    asked = {"from": str(dest), "keep-last": "1", "dry-run": "true"}
    pruned = runner.run("actions/prune", {**asked, "passphrase": "ours"})
    assert pruned.outcome == "success", pruned.log
    report = json.loads(pruned.outputs["report"])
    assert len([p for p in dest.iterdir() if p.is_dir()]) == 2
    assert json.dumps(report).count("remove") >= 1
    # a passphrase that opens none of the sets fails the step, judging nothing
    wrong = runner.run("actions/prune", {**asked, "passphrase": "not ours"})
    assert wrong.outcome == "failure" and "wrong passphrase?" in wrong.log


def test_backup_by_config_and_backup_type(job, tmp_path: Path) -> None:
    db = example.make_sqlite(tmp_path / "app.db", rows=20)
    files = example.make_tree(tmp_path / "uploads")
    runner = job()
    config = runner.workspace / "offsite.yml"
    config.write_text(
        "sources:\n"
        "  - {name: app, url: 'sqlite://${APP_DB}', groups: [database]}\n"
        f"  - {{name: uploads, path: '{files}', groups: [files]}}\n"
        "destinations: [github-artifacts]\n"
    )
    runner.env["APP_DB"] = str(db)
    for backup_type, entries in (("database", ["app"]), ("full", ["app", "uploads"])):
        done = runner.run(
            ".",
            {"command": "backup", "config": "offsite.yml", "only": backup_type,
             "passphrase": PASSPHRASE},
        )  # fmt: skip
        assert done.outcome == "success", done.log
        manifest = json.loads(Path(done.outputs["manifest"]).read_text())
        assert [e["name"] for e in manifest["entries"]] == entries
        zipped = runner.artifacts / f"{done.outputs['artifact-name']}.zip"
        assert zipped.exists()
        # the artifact's id, address and digest are outputs, and the summary says what
        # was uploaded once it was
        digest = "sha256:" + hashlib.sha256(zipped.read_bytes()).hexdigest()
        assert done.outputs["artifact-digest"] == digest and done.outputs["artifact-id"]
        assert f"→ GitHub Artifacts `{done.outputs['artifact-name']}`" in done.summary
        assert f"Uploaded as artifact `{done.outputs['artifact-name']}`" in done.summary
        assert digest in done.summary


def test_monitor_alerts_once_across_runs_and_keeps_the_webhook_secret(job, tmp_path: Path) -> None:
    github, hooks = FakeGitHub(), Hooks()
    try:
        flow = github.workflow("octo-org/app")
        now = datetime.now(timezone.utc).replace(microsecond=0)
        github.run(flow, "success", now - timedelta(days=3), backup_size=5 << 20)
        webhook = hooks.url + "/services/T000/B000/SeCrEtPaTh0123456789"
        inputs = {"max-age": "26h", "webhook": webhook, "webhook-format": "slack"}
        runner = job(token=TOKEN)
        runner.env["GITHUB_API_URL"] = github.url
        first = runner.run("actions/monitor", inputs)
        assert first.outcome == "failure" and first.outputs["healthy"] == "false", first.log
        assert (
            "last success 3d ago" in json.loads(first.outputs["report"])["targets"][0]["reasons"][0]
        )
        assert len(hooks.received) == 1 and "octo-org/app" in json.dumps(hooks.received[0][1])
        assert "## Backup health" in first.summary and "unhealthy | 2" in first.summary
        assert_masked(first, webhook)
        assert_never_shown(first, webhook, TOKEN)

        second = job(token=TOKEN, run_id="7000002")  # the next hour: a new runner, the cache kept
        second.cache = runner.cache
        second.env["GITHUB_API_URL"] = github.url
        again = second.run("actions/monitor", inputs)
        assert again.outcome == "failure"
        assert again.step("Restore the last alert state").outputs["cache-hit"] == "false"
        assert len(hooks.received) == 1  # still unhealthy: no second alert
    finally:
        github.close()
        hooks.close()


def test_mirror_repository_plans_an_owners_shares_from_its_hashed_install(
    job, tmp_path: Path
) -> None:
    """The mirror template's plan job: offsite from the action's lock (no pip install of a
    git URL with the App's token in the environment), the matrix as the step's output."""
    github = FakeGitHub()
    github.org_repos["octo-org"] = ["api", "web", "docs", "infra", "site"]
    try:
        runner = job()
        runner.env["GITHUB_API_URL"] = github.url
        result = runner.run("actions/mirror-repository", {
            "repository": "github://octo-org", "token": TOKEN, "plan-shards": "2"})  # fmt: skip
        assert result.outcome == "success", result.log
        shares = json.loads(result.outputs["matrix"])["include"]
        assert [s["shard"] for s in shares] == ["1/2", "2/2"]
        assert sorted(n for s in shares for n in s["names"]) == sorted(github.org_repos["octo-org"])
        assert "backup-id" not in result.outputs or not result.outputs["backup-id"]
        bad = job().run("actions/mirror-repository", {
            "repository": "github://octo-org", "token": TOKEN, "plan-shards": "two"})  # fmt: skip
        assert bad.outcome == "failure" and "plan-shards is a number" in bad.log
    finally:
        github.close()
