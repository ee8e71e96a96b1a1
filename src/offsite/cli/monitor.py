"""offsite monitor"""

from __future__ import annotations

import os
from pathlib import Path

import click

from offsite import gha
from offsite.cli.options import State, emit_json, json_option, option, read_storage_options
from offsite.cli.reading import trust_options
from offsite.durations import parse_duration
from offsite.monitor import alerts, notify, summary
from offsite.monitor.health import HEALTHY, Thresholds, human_age
from offsite.monitor.run import MonitorConfig, run_monitor
from offsite.storage.settings import StorageSettings
from offsite.table import render
from offsite.trust import TrustConfig


@click.command("monitor", short_help="Check that backups are fresh; alert when they are not.")
@option(
    "--repo",
    "repos",
    multiple=True,
    help="OWNER/REPO whose backup workflow to check (repeatable; OWNER/* for every "
    "repository of OWNER that has it). Default: $GITHUB_REPOSITORY.",
)
@option("--workflow", default="backup.yml", show_default=True, help="The workflow's file name.")
@option("--branch", default=None, help="Only runs on this branch.")
@option("--event", default=None, help="Only runs of this event (schedule, workflow_dispatch…).")
@option(
    "--storage",
    "storages",
    multiple=True,
    help="A destination whose newest complete set to check (repeatable).",
)
@option("--max-age", required=True, help="Older than this is stale: 90m, 26h, 7d, 2w.")
@option(
    "--max-wal-age",
    metavar="DURATION",
    help="With --storage: unhealthy when a WAL archive's newest file is older (5m, 1h): "
    "archiving has stalled. The RPO point-in-time recovery offers is this age.",
)
@option(
    "--min-size",
    type=int,
    default=1,
    show_default=True,
    help="A backup smaller than this many bytes is unhealthy.",
)
@option(
    "--max-failures",
    type=int,
    default=0,
    show_default=True,
    help="Failed runs tolerated since the last success.",
)
@option(
    "--max-shrink",
    type=float,
    default=50.0,
    show_default=True,
    help="Unhealthy when a backup is this many percent smaller than the one before.",
)
@option(
    "--artifacts/--no-artifacts",
    default=True,
    show_default=True,
    help="Check the backup-* artifacts of the newest successful run.",
)
@option("--webhook", "webhooks", multiple=True, help="Where to post alerts (repeatable).")
@option(
    "--webhook-format",
    default="auto",
    show_default=True,
    type=click.Choice(alerts.FORMATS),
    help="auto picks by the webhook's host.",
)
@option(
    "--notify-on",
    default="change",
    show_default=True,
    type=click.Choice(notify.MODES),
    help="change: when a target turns unhealthy and when it recovers; failure: every "
    "unhealthy check; always: every check.",
)
@option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".offsite-monitor-state.json"),
    show_default=True,
    help="Where --notify-on change keeps the last state (cache it between runs).",
)
@option(
    "--summary",
    "with_summary",
    is_flag=True,
    help="Append a Markdown report with a size chart to $GITHUB_STEP_SUMMARY.",
)
@trust_options
@read_storage_options
@json_option
def command(
    repos: tuple[str, ...], workflow: str, branch: str | None, event: str | None,
    storages: tuple[str, ...], max_age: str, max_wal_age: str | None, min_size: int,
    max_failures: int,
    max_shrink: float, artifacts: bool, webhooks: tuple[str, ...], webhook_format: str,
    notify_on: str, state_file: Path, with_summary: bool, trust: TrustConfig, as_json: bool,
    storage: StorageSettings,
) -> int:  # fmt: skip
    """Check that backups are fresh: workflow runs, their artifacts, and destinations.

    Exit 0 healthy, 1 unhealthy, 2 bad input, 3 could not check.
    """
    repos = repos or ((os.environ["GITHUB_REPOSITORY"],)
                      if not storages and os.environ.get("GITHUB_REPOSITORY") else ())  # fmt: skip
    config = MonitorConfig(
        thresholds=Thresholds(
            parse_duration(max_age),
            max_failures,
            min_size,
            max_shrink,
            artifacts,
            parse_duration(max_wal_age) if max_wal_age else None,
        ),
        repos=repos,
        workflow=workflow,
        branch=branch,
        event=event,
        storages=storages,
        webhooks=webhooks,
        webhook_format=webhook_format,
        notify_on=notify_on,
        state_file=state_file,
        storage=storage,
        trust=trust,
    )
    result = run_monitor(config)
    report = list(result.report)
    if with_summary:
        gha.append_summary(summary.markdown(report))
    State.healthy = result.healthy
    if as_json:
        emit_json({
            "healthy": result.healthy,
            "targets": alerts.plain(report)["targets"],
            "alerted": [h.target for h in result.alerted],
            "webhooks": [{"url": alerts.shown(d.url), "ok": d.ok, "detail": d.detail}
                         for d in result.deliveries],
            "api_requests": result.requests,
        })  # fmt: skip
    else:
        rows = [(h.target, h.status,
                 human_age(h.age) if h.age is not None else "never", h.reason)
                for h in report]  # fmt: skip
        click.echo(render(("target", "status", "last success", "reason"), rows))
        checked = f"{len(report)} target(s) checked"
        click.echo(f"\n{checked} with {result.requests} GitHub API request(s)")
    for d in result.deliveries:
        if not d.ok:
            gha.problem(f"webhook {alerts.shown(d.url)} failed: {d.detail}")
    for h in report:
        if h.status != HEALTHY:
            gha.error(f"{h.target}: {h.status}: {h.reason}")
    return result.exit_code
