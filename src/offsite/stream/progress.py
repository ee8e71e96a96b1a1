"""Progress on long work: a live line on a terminal, a line every few seconds in CI logs."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

from offsite.table import human_duration, human_size


class Meter:
    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = total  # bytes to read, when known (a restore's stored entry)
        self.read = 0
        self.written = 0
        self.started = time.monotonic()
        self.seconds = 0.0

    def add_read(self, n: int) -> None:
        self.read += n

    def add_written(self, n: int) -> None:
        self.written += n

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.read / elapsed if elapsed > 0 else 0.0
        read = human_size(self.read)
        if self.total:
            read += f" of {human_size(self.total)} ({100 * self.read // self.total}%)"
        written = f", {human_size(self.written)} written" if self.written else ""
        return (
            f"{self.label}: {read} read{written}, {human_size(rate)}/s, {human_duration(elapsed)}"
        )


class Progress:
    def __init__(
        self,
        stream: TextIO | None = None,
        live: bool | None = None,
        interval: float | None = None,
        enabled: bool = True,
    ) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.interval = interval if interval is not None else (1.0 if self.live else 5.0)
        self.enabled = enabled

    @contextlib.contextmanager
    def task(self, label: str, total: int | None = None) -> Iterator[Meter]:
        meter = Meter(label, total)
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(meter, stop), daemon=True)
        if self.enabled:
            ticker.start()
        try:
            yield meter
        finally:
            meter.seconds = time.monotonic() - meter.started
            stop.set()
            if ticker.is_alive():
                ticker.join()
            if self.enabled and self.live:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def _tick(self, meter: Meter, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            if self.live:
                self.stream.write("\r\033[K" + meter.line()[:200])
            else:
                self.stream.write(meter.line() + "\n")
            self.stream.flush()
