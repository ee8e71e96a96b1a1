"""Progress in CI logs: a line every interval, never a flood; nothing for quick work."""

from __future__ import annotations

import io
import time

from offsite.stream.progress import Progress


def test_no_tty_prints_every_interval() -> None:
    out = io.StringIO()
    progress = Progress(stream=out, live=False, interval=0.1)
    with progress.task("db") as meter:
        meter.add_read(5 * 1024 * 1024)
        time.sleep(0.35)
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) <= 4
    assert lines[0].startswith("db: 5.0 MiB read")


def test_quick_work_prints_nothing() -> None:
    out = io.StringIO()
    with Progress(stream=out, live=False, interval=10).task("db"):
        pass
    assert out.getvalue() == ""


def test_live_line_rewrites_in_place() -> None:
    out = io.StringIO()
    with Progress(stream=out, live=True, interval=0.05).task("db"):
        time.sleep(0.2)
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") >= 2


def test_a_known_total_shows_how_far_and_nothing_written_is_left_out() -> None:
    out = io.StringIO()
    with Progress(stream=out, live=False, interval=0.05).task("restore db", 8 << 20) as m:
        m.add_read(2 << 20)
        time.sleep(0.12)
    line = out.getvalue().splitlines()[0]
    assert line.startswith("restore db: 2.0 MiB of 8.0 MiB (25%) read, ")
    assert "written" not in line
