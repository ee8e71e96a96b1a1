"""The monitor's objectives (issue 20) against the fake GitHub and real destinations: the
RPO on the largest gap, the RTO on real drill records, the newest run against the
median, a workflow GitHub disabled, re-enabled."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from offsite.sets import drill_records
from offsite.sets.stored import scan
from offsite.sets.trust import TrustConfig, Verifier
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings
from tests.fakegithub import FakeGitHub
from tests.monitor.conftest import Hooks
from tests.monitor.test_monitor import MB, REPO, ago

NIGHT = timedelta(days=1)


def history(github: FakeGitHub, nights: int, dropped: tuple[int, ...] = (), size: int = 3 * MB,
            newest_size: int | None = None, newest_seconds: float = 600) -> None:  # fmt: skip
    """A nightly workflow, the newest run 2 hours ago; ``dropped`` nights (0: the newest)
    have no run at all, as when GitHub's cron skips one."""
    flow = github.workflow(REPO)
    newest = ago(hours=2)  # once: a clock that ticks between runs would stretch their gaps
    for n in range(nights - 1, -1, -1):
        if n in dropped:
            continue
        github.run(flow, "success", newest - n * NIGHT,
                   backup_size=newest_size if n == 0 and newest_size else size,
                   seconds=newest_seconds if n == 0 else 600)  # fmt: skip


def monitor(cli, tmp_path: Path, *extra: object):  # type: ignore[no-untyped-def]
    r = cli("monitor", "--json", "--state-file", tmp_path / "state.json", *extra)
    return r, json.loads(r.out) if r.out.strip() else None


def test_a_steady_history_meets_an_rpo_that_a_dropped_night_does_not(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    history(github, 10)
    r, report = monitor(cli, tmp_path, "--repo", REPO, "--rpo", "26h")
    assert r.code == 0, r.err
    assert report["targets"][0]["largest_gap"]["seconds"] <= 26 * 3600
    assert report["api_requests"] <= 3  # the gaps come from the same page of runs


def test_one_dropped_night_breaks_the_rpo_though_the_newest_run_is_fresh(
    cli, github: FakeGitHub, tmp_path: Path, hooks: Hooks
) -> None:
    history(github, 10, dropped=(4,))
    r, report = monitor(cli, tmp_path, "--repo", REPO, "--rpo", "26h",
                        "--webhook", hooks.url + "/json")  # fmt: skip
    assert r.code == 1
    (target,) = report["targets"]
    assert target["age_seconds"] < 3 * 3600  # fresh by --max-age's measure
    assert target["largest_gap"]["seconds"] == 2 * 86400
    assert any("a gap of 2d from" in why and "over the RPO 26h" in why for why in target["reasons"])
    assert "a gap of 2d" in json.dumps(hooks.received)  # the alert names the gap
    assert report["api_requests"] <= 3


def test_a_run_ten_times_smaller_than_its_median_is_unhealthy(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    history(github, 7, size=10 * MB, newest_size=MB, newest_seconds=20)
    r, report = monitor(cli, tmp_path, "--repo", REPO, "--max-age", "26h")
    assert r.code == 1
    reasons = " ".join(report["targets"][0]["reasons"])
    assert "10% of the median of the 5 before it" in reasons and "too small" in reasons
    assert "took 20s" in reasons and "too fast" in reasons


def test_a_workflow_github_disabled_is_re_enabled_and_the_alert_says_so(
    cli, github: FakeGitHub, tmp_path: Path, hooks: Hooks
) -> None:
    history(github, 3)
    github.workflows[0].state = "disabled_inactivity"
    r, _ = monitor(cli, tmp_path, "--repo", REPO, "--max-age", "26h")
    assert r.code == 1 and "the workflow is disabled_inactivity" in r.out
    assert github.workflows[0].state == "disabled_inactivity"  # not without the option
    r, _ = monitor(cli, tmp_path, "--repo", REPO, "--max-age", "26h",
                   "--reenable-disabled", "--webhook", hooks.url + "/json")  # fmt: skip
    assert github.workflows[0].state == "active"
    assert any(line.startswith("PUT ") and line.endswith("/enable") for line in github.log)
    said = json.dumps(hooks.received)
    assert "the monitor re-enabled it" in said
    github.workflows[0].state = "disabled_inactivity"
    github.may_write = False  # a token without actions: write
    r, _ = monitor(cli, tmp_path, "--repo", REPO, "--max-age", "26h", "--reenable-disabled")
    assert r.code == 3 and "actions: write" in r.out, r.out


def _seal_record(dest: Path, passphrase: str, rto: float, when: datetime, ok: bool = True) -> str:
    """A record as ``drill`` writes it, dated ``when`` (a drill run that long ago)."""
    storage = open_storage(str(dest), StorageSettings())
    (stored,) = scan(storage).sets
    with Verifier(storage, TrustConfig(passphrase=passphrase)) as verifier:
        key = verifier.data_key(stored)
    wrapped = base64.b64encode((dest / stored.id / "key.gpg").read_bytes()).decode()
    record = drill_records.DrillRecord(stored.id, when.strftime(drill_records.STAMP), ok, rto,
                                       "folder", [], wrapped).sealed(key)  # fmt: skip
    assert storage.create(record.key, record.to_json())
    return record.key


def test_drills_prove_the_rto_or_do_not(cli, tree: Path, tmp_path: Path, passphrase: str) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    args = ("--storage", dest, "--max-age", "1d", "--max-drill-age", "31d", "--rto", "2h")
    r, report = monitor(cli, tmp_path, *args)
    assert r.code == 1 and "no restore drill recorded" in r.out

    # a real drill records its result in the destination, sealed with the set's key
    r = cli("drill", dest, "--into", tmp_path / "scratch")
    assert r.code == 0, r.err
    (recorded,) = (dest / "drills").rglob("*.json")
    assert json.loads(recorded.read_text())["auth"]["alg"] == "HMAC-SHA256"
    r, report = monitor(cli, tmp_path, *args)
    assert r.code == 0, r.out
    drill = report["targets"][0]["drill"]
    assert drill["verified"] and drill["ok"] and drill["rto_seconds"] < 60

    # a drill older than allowed
    recorded.unlink()
    _seal_record(dest, passphrase, 60, datetime.now(timezone.utc) - timedelta(days=40))
    r, report = monitor(cli, tmp_path, *args)
    assert r.code == 1 and "the newest drill is 40d old" in r.out

    # an RTO above the objective
    _seal_record(dest, passphrase, 3 * 3600, datetime.now(timezone.utc) - timedelta(hours=1))
    r, report = monitor(cli, tmp_path, *args)
    assert r.code == 1 and "restored in 3h, over the RTO 2h" in r.out

    # a record someone planted (no auth, a fine RTO) does not count with the key at hand
    planted = drill_records.DrillRecord(
        scan(open_storage(str(dest), StorageSettings())).sets[0].id,
        datetime.now(timezone.utc).strftime(drill_records.STAMP),
        True,
        5.0,
        "folder",
    )
    (dest / planted.key).write_bytes(planted.to_json())
    r, report = monitor(cli, tmp_path, *args)
    assert r.code == 1 and "restored in 3h" in r.out


def test_a_config_file_gives_the_destinations_and_the_strictest_objectives(
    cli, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    config = tmp_path / "offsite.yml"
    config.write_text(
        f"destinations: [{dest}]\nobjectives: {{rpo: 24h}}\n"
        "group-objectives: {files: {rto: 30m}}\n"
        f"sources:\n  - {{name: files, path: {tree}, groups: [files]}}\n"
    )
    r, report = monitor(cli, tmp_path, "--config", config)  # no --max-age: the RPO bounds it
    assert r.code == 1, r.err
    (target,) = report["targets"]
    assert target["target"] == str(dest)
    assert target["reasons"] == ["no restore drill recorded (drills/): the RTO is not proven"]
    assert cli("drill", dest, "--into", tmp_path / "scratch").code == 0
    r, report = monitor(cli, tmp_path, "--config", config)
    assert r.code == 0, r.out


def test_a_drill_still_counts_once_retention_pruned_its_set(
    cli, tree: Path, tmp_path: Path, passphrase: str
) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    assert cli("drill", dest, "--into", tmp_path / "scratch").code == 0
    assert cli("backup", tree, "--to", dest).code == 0
    assert cli("prune", dest, "--keep-last", "1").code == 0  # the drilled set is gone
    r, report = monitor(cli, tmp_path, "--storage", dest, "--max-age", "1d",
                        "--max-drill-age", "31d")  # fmt: skip
    assert r.code == 0, r.out
    assert report["targets"][0]["drill"]["verified"]


def test_a_planted_record_never_satisfies_an_objective(
    cli, tree: Path, tmp_path: Path, passphrase: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Issue 30, case 5: a hand-written {"ok": true, "rto_seconds": 1} made the monitor
    healthy and offsite_drill_success 1. Without a key it is unverified and proves no RTO;
    with one it is not counted at all."""
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    set_id = scan(open_storage(str(dest), StorageSettings())).sets[0].id
    planted = drill_records.DrillRecord(
        set_id, datetime.now(timezone.utc).strftime(drill_records.STAMP), True, 1.0, "folder"
    )
    (dest / "drills" / set_id).mkdir(parents=True)
    (dest / planted.key).write_bytes(planted.to_json())
    # and one that would exhaust a JSON parser: passed over, never the monitor's end
    (dest / "drills" / set_id / "20200101T000000Z.json").write_text("[" * 200_000)
    monkeypatch.delenv("OFFSITE_PASSPHRASE")
    prom = tmp_path / "offsite.prom"
    r, report = monitor(cli, tmp_path, "--storage", dest, "--storage", dest, "--max-age", "1d",
                        "--rto", "1h", "--metrics-file", prom)  # fmt: skip
    assert r.code == 1, r.out
    (target,) = report["targets"]  # one destination named twice is one target
    assert target["drill"]["verified"] is False
    assert any("unverified: it proves no RTO" in why for why in target["reasons"])
    assert f'offsite_drill_verified{{destination="{dest}"}} 0' in prom.read_text()
    assert f'offsite_drill_success{{destination="{dest}"}} 0' in prom.read_text()
    monkeypatch.setenv("OFFSITE_PASSPHRASE", passphrase)
    r, report = monitor(cli, tmp_path, "--storage", dest, "--max-age", "1d", "--rto", "1h")
    assert r.code == 1 and "no restore drill recorded" in r.out


def test_runs_are_read_back_to_the_success_that_opens_the_window(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    """A hole at the window's start, behind a page of hourly successes."""
    flow = github.workflow(REPO)
    github.run(flow, "success", ago(days=10), seconds=60)  # the last success before a hole
    for k in range(6):  # failures in the hole, older than the window
        github.run(flow, "failure", ago(days=7, hours=k + 1), seconds=60)
    for h in range(99, 0, -1):  # the newest page: hourly successes for four days
        github.run(flow, "success", ago(hours=h), seconds=60)
    r, report = monitor(cli, tmp_path, "--repo", REPO, "--rpo", "26h", "--max-age", "30d",
                        "--no-artifacts")  # fmt: skip
    assert r.code == 1, r.out
    assert report["targets"][0]["largest_gap"]["seconds"] > 5 * 86400
    assert report["api_requests"] == 3  # the workflow and two pages of runs


def test_drill_objectives_without_a_destination_are_bad_input(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    r, _ = monitor(cli, tmp_path, "--repo", REPO, "--max-age", "1d", "--rto", "1h")
    assert r.code == 2 and "--storage" in r.err


def test_the_status_page_goes_where_it_is_asked_even_into_a_new_folder(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    history(github, 3)
    page = tmp_path / "status" / "index.html"
    r, _ = monitor(cli, tmp_path, "--repo", REPO, "--max-age", "26h", "--html", page)
    assert r.code == 0, r.err
    assert "octo-org/app backup.yml" in page.read_text()


def test_a_destinations_password_reaches_neither_the_report_nor_the_page(
    cli, tmp_path: Path
) -> None:
    """The status page may be published on GitHub Pages; a URL with credentials is
    refused in one line that does not show them."""
    page = tmp_path / "status.html"
    for dest in ("s3://AKIA:s3cr3t-pw@bucket/app", "az://user:s3cr3t-pw@backups/app"):
        r, _ = monitor(cli, tmp_path, "--storage", dest, "--max-age", "1d", "--html", page)
        assert r.code == 2 and "no credentials in the URL" in r.err, r.err
        assert "s3cr3t-pw" not in r.out + r.err
    assert not page.exists()


def test_a_drill_of_a_set_made_for_recipients_proves_itself_by_its_signature(
    cli, tree: Path, tmp_path: Path, with_keyring
) -> None:  # type: ignore[no-untyped-def]
    """SPEC §9: in recipients mode anyone can wrap a key, so an HMAC proves nothing: the
    record is signed (drill --sign-key) and checked (monitor --trust-key)."""
    dest = tmp_path / "dest"
    fpr = with_keyring.fingerprint
    assert cli("backup", tree, "--to", dest, "--recipient", fpr, "--sign-key", fpr).code == 0
    r = cli("drill", dest, "--into", tmp_path / "scratch", "--trust-key", fpr, "--sign-key", fpr)
    assert r.code == 0, r.err
    (signed,) = (dest / "drills").rglob("*.json")
    assert signed.with_name(signed.name + ".sig").exists()
    r, report = monitor(cli, tmp_path, "--storage", dest, "--max-age", "1d", "--rto", "1h",
                        "--max-drill-age", "35d", "--trust-key", fpr)  # fmt: skip
    assert r.code == 0, r.out
    assert report["targets"][0]["drill"]["verified"] is True
    # a newer record without a good signature is passed over: the signed one still counts
    set_id = signed.parent.name
    later = (datetime.now(timezone.utc) + timedelta(seconds=2)).strftime(drill_records.STAMP)
    forged = drill_records.DrillRecord(set_id, later, True, 1.0, "folder")
    (dest / forged.key).write_bytes(forged.to_json())
    (dest / (forged.key + ".sig")).write_bytes(signed.with_name(signed.name + ".sig").read_bytes())
    r, report = monitor(cli, tmp_path, "--storage", dest, "--max-age", "1d", "--rto", "1h",
                        "--trust-key", fpr)  # fmt: skip
    assert r.code == 0 and report["targets"][0]["drill"]["rto_seconds"] != 1.0, r.out
    signed.unlink()  # only the forged one left: no drill proves the RTO
    r, _ = monitor(cli, tmp_path, "--storage", dest, "--max-age", "1d", "--rto", "1h",
                   "--trust-key", fpr)  # fmt: skip
    assert r.code == 1 and "no restore drill recorded" in r.out
