"""Pings for a dead man's switch (healthchecks.io and alike): ``URL/start`` when a backup
begins, ``URL`` when it succeeded, ``URL/fail`` with the error when it failed, so an
outside service notices when nothing runs at all. A ping never fails the backup: when
it cannot be delivered, the caller prints a warning."""

from __future__ import annotations

from offsite.monitor.posting import post


def ping(url: str, event: str = "", body: str = "") -> str | None:
    """POST to ``url`` (``event``: "", "start" or "fail"); None, or why it failed."""
    target = url.rstrip("/") + (f"/{event}" if event else "")
    problem = post(target, body.encode()[:10_000], "text/plain; charset=utf-8", attempts=3)
    return None if problem is None else f"ping {event or 'success'} not delivered: {problem}"
