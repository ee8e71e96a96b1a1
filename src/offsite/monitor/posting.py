"""POST a small body to a URL someone else runs (a chat webhook, a dead man's switch),
retrying what may pass (dropped connections, 429, 5xx) with ``retry``'s backoff."""

from __future__ import annotations

import time

from offsite import retry

ATTEMPTS = 4


def post(url: str, data: bytes, content_type: str, attempts: int = ATTEMPTS) -> str | None:
    """None when delivered; else why not (no part of the URL: it may hold a secret)."""
    import requests

    problem = ""
    for _ in retry.attempts(attempts, cap=8.0):
        try:
            answer = requests.post(url, data=data, timeout=15,
                                   headers={"Content-Type": content_type})  # fmt: skip
        except requests.RequestException as exc:
            problem = type(exc).__name__
            continue
        if answer.status_code < 300:
            return None
        problem = f"HTTP {answer.status_code}"
        if answer.status_code == 429:
            wait = answer.headers.get("Retry-After", "")
            if wait.replace(".", "", 1).isdigit():
                time.sleep(min(30.0, float(wait)))
            continue
        if answer.status_code < 500:
            break  # refused for good (a bad payload, a deleted check): no point retrying
    return problem
