"""Pings for a dead man's switch (healthchecks.io and alike): ``URL/start`` when a backup
begins, ``URL`` when it succeeded, ``URL/fail`` with the error when it failed, so an
outside service notices when nothing runs at all. A ping never fails the backup: when
it cannot be delivered, the caller prints a warning."""

from __future__ import annotations

import random
import time

ATTEMPTS = 3


def ping(url: str, event: str = "", body: str = "") -> str | None:
    """POST to ``url`` (``event``: "", "start" or "fail"); None, or why it failed."""
    import requests

    target = url.rstrip("/") + (f"/{event}" if event else "")
    problem = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.5 * 2**attempt * random.uniform(0.5, 1.0))
        try:
            answer = requests.post(target, data=body.encode()[:10_000], timeout=10)
        except requests.RequestException as exc:
            problem = type(exc).__name__
            continue
        if answer.status_code < 300:
            return None
        problem = f"HTTP {answer.status_code}"
        if answer.status_code < 500 and answer.status_code != 429:
            break
    return f"ping {event or 'success'} not delivered: {problem}"
