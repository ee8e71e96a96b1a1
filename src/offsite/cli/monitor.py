"""offsite monitor"""

from __future__ import annotations

import os
from pathlib import Path

import click

from offsite.cli.options import State, emit_json, json_option, option, read_storage_options
from offsite.cli.reading import trust_options
from offsite.config import Objectives
from offsite.durations import parse_duration
from offsite.errors import BadInput
from offsite.github import gha
from offsite.monitor import alerts, notify, summary
from offsite.monitor.health import HEALTHY, Thresholds, human_age
from offsite.monitor.run import MonitorConfig, run_monitor
from offsite.sets.trust import TrustConfig
from offsite.storage.settings import StorageSettings
from offsite.table import counted, render


def _configured(
    path: str, repos: tuple[str, ...], storages: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...], Objectives]:
    """A --config file's targets (unless named on the command line) and objectives: its
    destinations, ``github-artifacts`` standing for this repository's workflow."""
    from offsite.config import load
    from offsite.github.artifacts import ARTIFACTS

    config = load(path).settings(os.environ)
    if not repos and not storages:
        storages = tuple(d for d in config.destinations if d != ARTIFACTS)
        if ARTIFACTS in config.destinations:
            if not os.environ.get("GITHUB_REPOSITORY"):
                raise BadInput(f"{path}: github-artifacts is checked as $GITHUB_REPOSITORY's "
                               "workflow: set it, or give --repo")  # fmt: skip
            repos = (os.environ["GITHUB_REPOSITORY"],)
    return repos, storages, config.strictest()


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
@option(
    "--entry",
    "entries",
    multiple=True,
    metavar="NAME",
    help="With --storage: judge the newest set holding NAME, each NAME on its own "
    "(repeatable): hourly sets of the files do not make a night's database look fresh.",
)
@option(
    "--config",
    "config_path",
    metavar="FILE",
    help="A configuration file (offsite.yml): its destinations are checked (github-artifacts "
    "as this repository's workflow), its objectives are the RPO and RTO.",
)
@option("--max-age", help="Older than this is stale: 90m, 26h, 7d, 2w (default: the RPO).")
@option(
    "--rpo",
    metavar="DURATION",
    help="Unhealthy when the largest gap between successful backups (or sets, or archived "
    "WAL) in the window is longer, the open gap to now included.",
)
@option(
    "--rto",
    metavar="DURATION",
    help="With --storage: unhealthy when the newest drill's measured restore time is longer.",
)
@option(
    "--max-drill-age",
    metavar="DURATION",
    help="With --storage: unhealthy when the newest drill recorded (drills/) is older.",
)
@option("--window", default="7d", show_default=True, metavar="DURATION",
        help="How far back the gaps are looked for.")  # fmt: skip
@option(
    "--max-wal-age",
    metavar="DURATION",
    help="With --storage: unhealthy when a WAL archive's newest file is older (5m, 1h): "
    "archiving has stalled. The RPO point-in-time recovery offers is this age.",
)
@option(
    "--allow-unverified-wal",
    is_flag=True,
    help="Judge a WAL archive's age by its newest object even where no segment could be "
    "authenticated here (no passphrase or secret key): else that age fails --max-wal-age "
    "and --rpo.",
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
    "--min-ratio",
    type=float,
    help="Unhealthy when the newest backup's size, or its run's duration, is under this "
    "fraction of the median of the --baseline before it  [default: 0.5]",
)
@option(
    "--max-shrink",
    type=float,
    help="The same check in percent: --max-shrink 50 is --min-ratio 0.5.",
)
@option("--baseline", type=int, default=5, show_default=True, metavar="N",
        help="Successful backups the median is taken over.")  # fmt: skip
@option(
    "--reenable-disabled",
    is_flag=True,
    help="Re-enable a backup workflow GitHub disabled for inactivity (needs actions: write); "
    "the alert says it did.",
)
@option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the check as Prometheus metrics (node_exporter's textfile collector).",
)
@option("--pushgateway", metavar="URL", help="Push the check's metrics to a Pushgateway.")
@option("--html", type=click.Path(dir_okay=False, path_type=Path),
        help="Write a self-contained status page (one HTML file).")  # fmt: skip
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
    storages: tuple[str, ...], entries: tuple[str, ...], config_path: str | None,
    max_age: str | None, rpo: str | None,
    rto: str | None, max_drill_age: str | None, window: str, max_wal_age: str | None,
    allow_unverified_wal: bool, min_size: int, max_failures: int, min_ratio: float | None,
    max_shrink: float | None, baseline: int, reenable_disabled: bool,
    metrics_file: Path | None, pushgateway: str | None, html: Path | None, artifacts: bool,
    webhooks: tuple[str, ...], webhook_format: str, notify_on: str, state_file: Path,
    with_summary: bool, trust: TrustConfig, as_json: bool,
    storage: StorageSettings,
) -> int:  # fmt: skip
    """Check that backups are fresh and meet their objectives: workflow runs, their
    artifacts, destinations (sets, WAL archives, drill records).

    Exit 0 healthy, 1 unhealthy, 2 bad input, 3 could not check.
    """
    objectives = Objectives()
    if config_path:
        repos, storages, objectives = _configured(config_path, repos, storages)
    repos = repos or ((os.environ["GITHUB_REPOSITORY"],)
                      if not storages and os.environ.get("GITHUB_REPOSITORY") else ())  # fmt: skip
    rpo_limit = parse_duration(rpo) if rpo else objectives.rpo
    rto_limit = parse_duration(rto) if rto else objectives.rto
    if max_age is None and rpo_limit is None:
        raise BadInput("give --max-age (or --rpo, or a --config file with objectives)")
    if min_ratio is not None and max_shrink is not None:
        raise BadInput("--min-ratio and --max-shrink are the same check: give one")
    if max_shrink is not None and not 0 <= max_shrink <= 100:
        raise BadInput("--max-shrink is 0 to 100 (percent)")
    ratio = min_ratio if min_ratio is not None else (
        0.5 if max_shrink is None else 1 - max_shrink / 100)  # fmt: skip
    config = MonitorConfig(
        thresholds=Thresholds(
            parse_duration(max_age) if max_age else rpo_limit,  # type: ignore[arg-type]
            max_failures,
            min_size,
            ratio,
            artifacts,
            parse_duration(max_wal_age) if max_wal_age else None,
            rpo=rpo_limit,
            rto=rto_limit,
            max_drill_age=parse_duration(max_drill_age) if max_drill_age else None,
            window=parse_duration(window),
            baseline=baseline,
            allow_unverified_wal=allow_unverified_wal,
        ),
        reenable=reenable_disabled,
        metrics_file=metrics_file,
        pushgateway=pushgateway,
        html=html,
        repos=repos,
        workflow=workflow,
        branch=branch,
        event=event,
        storages=storages,
        entries=entries,
        webhooks=webhooks,
        webhook_format=webhook_format,
        notify_on=notify_on,
        state_file=state_file,
        storage=storage,
        trust=trust,
    )
    result = run_monitor(config)
    report = list(result.report)
    if with_summary and not os.environ.get("GITHUB_STEP_SUMMARY"):
        gha.warn("--summary writes to $GITHUB_STEP_SUMMARY, which only GitHub Actions sets: "
                 "no summary written (set it to a file's path to have one)")  # fmt: skip
    elif with_summary:
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
        checked = f"{counted(len(report), 'target')} checked"
        click.echo(f"\n{checked} with {counted(result.requests, 'GitHub API request')}")
    for d in result.deliveries:
        if not d.ok:
            gha.problem(f"webhook {alerts.shown(d.url)} failed: {d.detail}")
    for problem in result.problems:
        gha.problem(problem)
    for h in report:
        if h.status != HEALTHY:
            gha.error(f"{h.target}: {h.status}: {h.reason}")
    return result.exit_code
