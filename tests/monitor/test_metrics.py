"""The monitor's metrics as Prometheus sees them (issue 20): ``--metrics-file`` checked by
``promtool``; ``--pushgateway`` (monitor, backup, drill) into a real Pushgateway that a
real Prometheus scrapes (Debian's packages, started here on free ports); the Grafana
dashboard asks only for metrics offsite emits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offsite.monitor.metrics import NAMES
from tests.fakegithub import FakeGitHub
from tests.monitor.test_monitor import REPO, nightly
from tests.servers import _wait_port, free_port

ROOT = Path(__file__).resolve().parents[2]


def _promtool(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True)  # fmt: skip


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian's prometheus) absent")
def test_the_metrics_file_is_what_promtool_accepts(
    cli, github: FakeGitHub, tmp_path: Path, tree: Path, passphrase: str
) -> None:
    nightly(github)
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    out = tmp_path / "offsite.prom"
    r = cli("monitor", "--repo", REPO, "--storage", dest, "--max-age", "26h", "--rpo", "26h",
            "--metrics-file", out, "--state-file", tmp_path / "s")  # fmt: skip
    assert r.code == 0, r.out + r.err
    text = out.read_text()
    checked = _promtool(text)
    assert checked.returncode == 0, checked.stderr
    assert re.search(r'offsite_last_success_timestamp_seconds\{repository="octo-org/app",'
                     r'workflow="backup.yml"\} \d{10}', text)  # fmt: skip
    assert f'offsite_target_healthy{{destination="{dest}"}} 1' in text
    assert "offsite_rpo_objective_seconds" in text and "offsite_monitor_api_requests 3" in text


class Prometheus:
    """A Pushgateway, and a Prometheus server scraping it each second."""

    def __init__(self, work: Path) -> None:
        self.gateway_port, self.port = free_port(), free_port()
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.url = f"http://127.0.0.1:{self.port}"
        logs = [work / "pushgateway.log", work / "prometheus.log"]
        self.procs = [subprocess.Popen(
            ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{self.gateway_port}",
             f"--persistence.file={work / 'pushgateway.data'}"],
            stdout=logs[0].open("wb"), stderr=subprocess.STDOUT)]  # fmt: skip
        _wait_port(self.gateway_port, self.procs[0], "the Pushgateway", logs[0])
        config = work / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: pushgateway\n"
            "    honor_labels: true\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{self.gateway_port}']}}]\n"
        )
        self.procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=logs[1].open("wb"), stderr=subprocess.STDOUT))  # fmt: skip
        _wait_port(self.port, self.procs[1], "Prometheus", logs[1])

    def query(self, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
        """The first non-empty answer (Prometheus scrapes each second)."""
        deadline = time.monotonic() + timeout
        while True:
            url = f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}"
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    found = json.load(answer)["data"]["result"]
            except OSError:
                found = []
            if found or time.monotonic() > deadline:
                return list(found)
            time.sleep(0.5)

    def answers(self, expr: str) -> bool:
        """Whether Prometheus takes the query (parses it, knows its functions)."""
        url = f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return bool(json.load(answer)["status"] == "success")
        except OSError:
            return False

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    if not (shutil.which("prometheus") and shutil.which("prometheus-pushgateway")):
        pytest.skip("Debian's prometheus and prometheus-pushgateway are not installed")
    server = Prometheus(tmp_path)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.slow
def test_monitor_backup_and_drill_push_what_prometheus_then_scrapes(
    cli, github: FakeGitHub, prometheus: Prometheus, tmp_path: Path, tree: Path,
    passphrase: str,
) -> None:  # fmt: skip
    nightly(github)
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest, "--pushgateway", prometheus.gateway).code == 0
    r = cli("drill", dest, "--into", tmp_path / "scratch", "--pushgateway", prometheus.gateway)
    assert r.code == 0, r.err
    r = cli("monitor", "--repo", REPO, "--storage", dest, "--max-age", "26h", "--rpo", "26h",
            "--rto", "1h", "--pushgateway", prometheus.gateway,
            "--state-file", tmp_path / "s")  # fmt: skip
    assert r.code == 0, r.out + r.err

    (series,) = prometheus.query(
        'offsite_last_success_timestamp_seconds{repository="octo-org/app"}'
    )
    assert series["metric"]["workflow"] == "backup.yml"
    assert series["metric"]["job"] == "offsite_monitor"
    assert abs(float(series["value"][1]) - (time.time() - 7200)) < 300
    (size,) = prometheus.query('offsite_backup_size_bytes{job="offsite_backup"}')
    assert size["metric"]["destination"] == str(dest) and float(size["value"][1]) > 0
    (rto,) = prometheus.query('offsite_drill_rto_seconds{job="offsite_drill"}')
    assert 0 < float(rto["value"][1]) < 120
    assert prometheus.query("offsite_target_healthy == 0", timeout=2) == []
    # every query of the dashboard is one Prometheus takes, and most have data already
    board = json.loads((ROOT / "dashboards" / "offsite-grafana.json").read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    assert all(prometheus.answers(e) for e in exprs)
    with_data = [e for e in exprs if prometheus.query(e, timeout=1)]
    assert len(with_data) == len(exprs) - 1, with_data  # no WAL archived here


def test_a_pushgateway_that_is_down_is_exit_3_and_the_report_stands(
    cli, github: FakeGitHub, tmp_path: Path
) -> None:
    nightly(github)
    down = f"http://127.0.0.1:{free_port()}"
    r = cli("monitor", "--repo", REPO, "--max-age", "26h", "--pushgateway", down,
            "--state-file", tmp_path / "s")  # fmt: skip
    assert r.code == 3
    assert "healthy" in r.out.split() and "cannot reach the Pushgateway" in r.err


def test_every_dashboard_panel_asks_for_metrics_offsite_emits() -> None:
    board = json.loads((ROOT / "dashboards" / "offsite-grafana.json").read_text())
    assert board["panels"]
    asked: set[str] = set()
    for panel in board["panels"]:
        exprs = [t["expr"] for t in panel["targets"]]
        names = {n for e in exprs for n in re.findall(r"\boffsite_[a-z_]+\b", e)}
        assert names, f"panel {panel['title']!r} asks for no offsite metric"
        assert names <= NAMES, f"panel {panel['title']!r}: {sorted(names - NAMES)} not emitted"
        assert panel["datasource"]["uid"] == "${datasource}"
        asked |= names
    # freshness, the RPO against its objective, sizes, durations and drill RTOs are shown
    for shown in ("offsite_last_success_timestamp_seconds", "offsite_rpo_seconds",
                  "offsite_rpo_objective_seconds", "offsite_backup_size_bytes",
                  "offsite_backup_duration_seconds", "offsite_drill_rto_seconds"):  # fmt: skip
        assert shown in asked
