"""The status page (``monitor --html``) as a person sees it: rendered by headless Chromium
(Debian's package) from disk, with no console error, each target's state on screen, and
a screenshot kept in build/screenshots/ (the manual shows one made here)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakegithub import FakeGitHub
from tests.monitor.test_monitor import MB, REPO, ago

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def _chromium(page: Path | str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless, with no network of its own (this machine's is closed), as root too."""
    return subprocess.run(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
         "--enable-logging=stderr", *args, page if isinstance(page, str) else page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


class _Logged(http.server.SimpleHTTPRequestHandler):
    asked: list[tuple[str, int]]  # (path, status) of every request, in order

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.asked.append((self.path, int(code)))


@contextlib.contextmanager
def _served(folder: Path, asked: list[tuple[str, int]]) -> Iterator[str]:
    """``folder`` over local HTTP, as GitHub Pages serves a site (search needs a server);
    every request's path and status into ``asked``."""
    handler = type("Handler", (_Logged,), {"asked": asked})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("page", ["", "reference/cli/", "guides/monitoring/?q=drill"])
def test_the_manual_opens_with_no_console_error(site: Path, tmp_path: Path, page: str) -> None:
    """The built site's front page, a reference page and a search, served over local HTTP
    with no network beyond it: every request is the site's own and found (no web font, no
    remote asset), no script error, and a search fetches the site's index."""
    asked: list[tuple[str, int]] = []
    with _served(site, asked) as url:
        done = _chromium(f"{url}/{page}", tmp_path / "profile", "--dump-dom",
                         "--virtual-time-budget=5000")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert [a for a in asked if a[1] != 200] == []
    remote = re.compile(r"""<(?:link|script)[^>]+(?:src|href)=["']?https?://(?!127\.0\.0\.1)""")
    assert not remote.search(done.stdout)
    assert "md-header" in done.stdout  # Material's page, scripts and styles loaded
    if page.startswith("reference/cli"):
        assert "offsite backup" in done.stdout and "--passphrase-file" in done.stdout
    if "?q=" in page:  # the query is in the search box, and the worker fetched the index
        assert "/search/search_index.json" in [path for path, _ in asked]
    if not page:
        assert "Getting started" in done.stdout


def test_the_status_page_renders_every_target_with_no_console_error(
    cli, github: FakeGitHub, tmp_path: Path, tree: Path, passphrase: str
) -> None:
    flow = github.workflow(REPO)
    for night in range(14, 0, -1):  # a database that grows, one night dropped
        if night != 5:
            github.run(flow, "success", ago(hours=2, days=night - 1),
                       backup_size=3 * MB + (14 - night) * 200_000, seconds=300)  # fmt: skip
    dest = tmp_path / "dest"
    for _ in range(3):
        assert cli("backup", tree, "--to", dest).code == 0
    assert cli("drill", dest, "--into", tmp_path / "scratch").code == 0
    stale = tmp_path / "empty"  # a destination no backup ever reached
    stale.mkdir()
    html = tmp_path / "status.html"
    r = cli("monitor", "--repo", REPO, "--storage", dest, "--storage", stale, "--max-age",
            "26h", "--rpo", "26h", "--rto", "1h", "--max-drill-age", "31d", "--html", html,
            "--state-file", tmp_path / "s")  # fmt: skip
    assert r.code == 1, r.out  # the dropped night, the empty destination
    text = html.read_text()
    # self-contained: nothing fetched from anywhere, no script at all
    assert not re.search(r"<script|<link|<img|@import|url\(|src=", text, re.I)

    done = _chromium(html, tmp_path / "profile", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    body = done.stdout.split("<tbody>", 1)[1]
    states = re.findall(r'<span class="state \w+">(\w+)</span>', body)
    assert sorted(states) == ["healthy", "unhealthy", "unhealthy"]
    assert f"{REPO} backup.yml" in done.stdout and str(stale) in done.stdout
    assert "passed, RTO" in done.stdout  # the drill, against the RTO
    assert "a gap of 2d" in done.stdout  # the dropped night, against the RPO
    assert "<svg" in done.stdout  # sizes over time

    shots = Path(os.environ.get("OFFSITE_SCREENSHOTS", ROOT / "build" / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "status-page.png"
    done = _chromium(html, tmp_path / "profile", f"--screenshot={shot}",
                     "--window-size=1280,720", "--hide-scrollbars")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
