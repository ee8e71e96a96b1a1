"""offsite monitor"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import click

from offsite import gha
from offsite.cli.options import emit_json, json_option, option, storage_options, trust_options
from offsite.durations import parse_duration
from offsite.errors import BadInput
from offsite.monitor import alerts, notify, summary
from offsite.monitor.health import HEALTHY, UNKNOWN, Thresholds, assess, human_age
from offsite.storage.settings import StorageSettings
from offsite.table import render
from offsite.trust import TrustConfig

EXIT_UNHEALTHY, EXIT_COULD_NOT_CHECK = 1, 3


@click.command("monitor")
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
@storage_options
@json_option
def command(
    repos: tuple[str, ...], workflow: str, branch: str | None, event: str | None,
    storages: tuple[str, ...], max_age: str, min_size: int, max_failures: int,
    max_shrink: float, artifacts: bool, webhooks: tuple[str, ...], webhook_format: str,
    notify_on: str, state_file: Path, with_summary: bool, trust: TrustConfig, as_json: bool,
    storage: StorageSettings,
) -> int:  # fmt: skip
    """Check that backups are fresh: workflow runs, their artifacts, and destinations.

    Exit 0 healthy, 1 unhealthy, 2 bad input, 3 could not check.
    """
    thresholds = Thresholds(parse_duration(max_age), max_failures, min_size, max_shrink,
                            artifacts)  # fmt: skip
    if min_size < 0 or max_failures < 0 or not 0 <= max_shrink <= 100:
        raise BadInput("--min-size and --max-failures are at least 0, --max-shrink 0 to 100")
    for url in webhooks:
        if urlsplit(url).scheme not in ("http", "https"):
            raise BadInput(f"--webhook {alerts.shown(url)} is not an http(s) address")
    wanted = list(repos)
    if not wanted and not storages and os.environ.get("GITHUB_REPOSITORY"):
        wanted = [os.environ["GITHUB_REPOSITORY"]]
    if not wanted and not storages:
        raise BadInput("nothing to check: give --repo OWNER/REPO or --storage DEST")
    keep_state = notify_on == "change" and bool(webhooks)  # the state serves the alerts
    previous = notify.load_state(state_file) if keep_state else {}
    now = datetime.now(timezone.utc)
    observations = []
    requests = 0
    if wanted:
        from offsite.monitor.github import GitHubReader

        reader = GitHubReader()
        named, matched = reader.expand(wanted)
        seen_all = reader.observe_all(named + matched, workflow, branch, event)
        requests = sum(seen.requests for seen in seen_all)
        # a matched repository without the workflow is not a target; a named one is
        skipped = {f"{repo} {workflow}" for repo in matched}
        observations += [s for s in seen_all if not (s.absent and s.target in skipped)]
    if storages:
        from offsite.monitor.stored import observe_storage

        observations += [observe_storage(dest, storage, trust) for dest in storages]
    report = [assess(seen, thresholds, now) for seen in observations]
    deliveries = []
    chosen = notify.to_notify(previous, report, notify_on)
    if chosen:
        for url in webhooks:
            deliveries.append(alerts.send(url, alerts.payload(webhook_format, url, chosen)))
    if keep_state:
        notify.save_state(state_file, report, previous)
    if with_summary:
        gha.append_summary(summary.markdown(report))
    gha.set_output("healthy", "true" if all(h.status == HEALTHY for h in report) else "false")
    if as_json:
        emit_json({
            "healthy": all(h.status == HEALTHY for h in report),
            "targets": alerts.plain(report)["targets"],
            "alerted": [h.target for h in chosen] if webhooks else [],
            "webhooks": [{"url": alerts.shown(d.url), "ok": d.ok, "detail": d.detail}
                         for d in deliveries],
            "api_requests": requests,
        })  # fmt: skip
    else:
        rows = [(h.target, h.status,
                 human_age(h.age) if h.age is not None else "never", h.reason)
                for h in report]  # fmt: skip
        click.echo(render(("target", "status", "last success", "reason"), rows))
        click.echo(f"\n{len(report)} target(s) checked with {requests} GitHub API request(s)")
    for d in deliveries:
        if not d.ok:
            click.echo(f"offsite: error: webhook {alerts.shown(d.url)} failed: {d.detail}",
                       err=True)  # fmt: skip
            gha.error(f"webhook {alerts.shown(d.url)} failed: {d.detail}")
    for h in report:
        if h.status != HEALTHY:
            gha.error(f"{h.target}: {h.status}: {h.reason}")
    if any(h.status not in (HEALTHY, UNKNOWN) for h in report):
        return EXIT_UNHEALTHY
    if any(h.status == UNKNOWN for h in report) or any(not d.ok for d in deliveries):
        return EXIT_COULD_NOT_CHECK
    return 0
