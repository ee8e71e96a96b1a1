"""One monitor check, start to end, with no command line in it: observe the targets
(GitHub runs and artifacts, destinations), judge them (``health.assess``), alert
(``notify`` decides who hears, ``alerts`` posts), keep the state for the next check, and
say what the check amounts to. ``cli/monitor.py`` only turns options into a
``MonitorConfig`` and the ``MonitorResult`` into text, JSON and an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from offsite.errors import BadInput, OffsiteError
from offsite.monitor import alerts, notify
from offsite.monitor.health import HEALTHY, UNKNOWN, Health, Observation, Thresholds, assess
from offsite.sets.trust import TrustConfig
from offsite.storage.settings import StorageSettings

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_COULD_NOT_CHECK = 0, 1, 3


@dataclass(frozen=True)
class MonitorConfig:
    thresholds: Thresholds
    repos: tuple[str, ...] = ()  # OWNER/REPO or OWNER/* whose workflow runs to read
    workflow: str = "backup.yml"
    branch: str | None = None
    event: str | None = None
    storages: tuple[str, ...] = ()  # destinations whose newest complete set to check
    entries: tuple[str, ...] = ()  # each judged on its own: the newest set holding it
    webhooks: tuple[str, ...] = ()
    webhook_format: str = "auto"
    notify_on: str = "change"
    state_file: Path = Path(".offsite-monitor-state.json")
    storage: StorageSettings = field(default_factory=StorageSettings)
    trust: TrustConfig = field(default_factory=TrustConfig)
    reenable: bool = False  # re-enable a workflow GitHub disabled for inactivity
    metrics_file: Path | None = None
    pushgateway: str | None = None
    html: Path | None = None

    def check(self) -> None:
        if self.entries and not self.storages:
            raise BadInput("--entry judges the sets of a destination: give --storage")
        t = self.thresholds
        if t.min_size < 0 or t.max_failures < 0 or not 0 <= t.min_ratio <= 1:
            raise BadInput("--min-size and --max-failures are at least 0, --min-ratio 0 to 1")
        if t.window.total_seconds() <= 0 or t.baseline < 1:
            raise BadInput("--window is longer than 0 and --baseline at least 1")
        if (t.rto or t.max_drill_age) and not self.storages:
            raise BadInput("--rto and --max-drill-age judge drills recorded in a destination: "
                           "give --storage DEST (where the drills run from)")  # fmt: skip
        for url in self.webhooks:
            if urlsplit(url).scheme not in ("http", "https"):
                raise BadInput(f"--webhook {alerts.shown(url)} is not an http(s) address")
        if not self.repos and not self.storages:
            raise BadInput("nothing to check: give --repo OWNER/REPO or --storage DEST")


@dataclass(frozen=True)
class MonitorResult:
    report: tuple[Health, ...]
    alerted: tuple[Health, ...]
    deliveries: tuple[alerts.Delivery, ...]
    requests: int  # GitHub API requests the check made
    problems: tuple[str, ...] = ()  # metrics that could not be delivered

    @property
    def healthy(self) -> bool:
        """Every target healthy (whatever became of the alerts)."""
        return all(h.status == HEALTHY for h in self.report)

    @property
    def exit_code(self) -> int:
        """1 when a target is unhealthy; else 3 when one could not be checked or an alert
        could not be delivered; else 0."""
        if any(h.status not in (HEALTHY, UNKNOWN) for h in self.report):
            return EXIT_UNHEALTHY
        if any(h.status == UNKNOWN for h in self.report):
            return EXIT_COULD_NOT_CHECK
        if any(not d.ok for d in self.deliveries) or self.problems:
            return EXIT_COULD_NOT_CHECK
        return EXIT_HEALTHY


def observe(config: MonitorConfig) -> tuple[list[Observation], int]:
    """What each target holds now, and the GitHub API requests that cost."""
    observations: list[Observation] = []
    requests = 0
    if config.repos:
        from offsite.monitor.github import GitHubReader

        t = config.thresholds
        reader = GitHubReader(window=t.window, reenable=config.reenable, baseline=t.baseline,
                              artifacts=t.artifacts)  # fmt: skip
        named, matched = reader.expand(list(dict.fromkeys(config.repos)))
        seen_all = reader.observe_all(named + matched, config.workflow, config.branch,
                                      config.event)  # fmt: skip
        requests = sum(seen.requests for seen in seen_all)
        # a matched repository without the workflow is not a target; a named one is
        skipped = {f"{repo} {config.workflow}" for repo in matched}
        observations += [s for s in seen_all if not (s.absent and s.target in skipped)]
    if config.storages:
        from offsite.monitor.stored import observe_storage

        observations += [  # each once: one target, one series of metrics
            observe_storage(dest, config.storage, config.trust, entry)
            for dest in dict.fromkeys(config.storages)
            for entry in (dict.fromkeys(config.entries) or [None])
        ]
    return observations, requests


def run_monitor(config: MonitorConfig, now: datetime | None = None) -> MonitorResult:
    config.check()
    keep_state = config.notify_on == "change" and bool(config.webhooks)  # it serves alerts
    previous = notify.load_state(config.state_file) if keep_state else {}
    observations, requests = observe(config)
    moment = now or datetime.now(timezone.utc)
    report = [assess(seen, config.thresholds, moment) for seen in observations]
    chosen = notify.to_notify(previous, report, config.notify_on) if config.webhooks else []
    deliveries = []
    if chosen:
        for url in config.webhooks:
            body = alerts.payload(config.webhook_format, url, chosen)
            deliveries.append(alerts.send(url, body))
    if keep_state:
        notify.save_state(config.state_file, report, previous)
    problems = publish(config, report, requests, moment)
    return MonitorResult(tuple(report), tuple(chosen), tuple(deliveries), requests,
                         tuple(problems))  # fmt: skip


def publish(config: MonitorConfig, report: list[Health], requests: int, now: datetime) -> list[str]:
    """The check as metrics (a file, a Pushgateway) and as a status page; what could not
    be delivered (a Pushgateway down is like a webhook down: exit 3, the report stands)."""
    problems = []
    if config.metrics_file or config.pushgateway:
        from offsite.monitor import metrics

        text = metrics.exposition(metrics.samples(report, config.thresholds, requests, now))
        if config.metrics_file:
            metrics.write_file(config.metrics_file, text)
        if config.pushgateway:
            try:
                metrics.push(config.pushgateway, "offsite_monitor",
                             {"instance": metrics.instance()}, text)  # fmt: skip
            except OffsiteError as exc:
                problems.append(exc.message())
    if config.html:
        from offsite.monitor import metrics, page

        try:
            config.html.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot write {config.html}: {exc.strerror}") from None
        metrics.write_file(config.html, page.render(report, config.thresholds, now))
    return problems
