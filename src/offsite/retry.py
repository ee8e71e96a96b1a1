"""One retry policy for what offsite retries itself (a webhook, a dead man's switch, an
SFTP connection): attempts with exponential backoff and jitter. The cloud SDKs keep their
own (boto3's, google-cloud's, azure-core's), configured in their backends.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator

from offsite.errors import BadInput


def backoff(attempt: int, first: float = 0.5, cap: float = 16.0) -> float:
    """Seconds to wait before attempt ``attempt`` (1, 2, …): ``first`` doubled each time,
    at most ``cap``, times a jitter from 0.5 to 1 so that many clients do not retry at once."""
    return float(min(cap, first * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def attempts(count: int, first: float = 0.5, cap: float = 16.0) -> Iterator[int]:
    """0, 1, … ``count - 1``; before each attempt but the first, the ``backoff`` sleep.
    Stop iterating (``return``, ``break``) once one succeeded."""
    for attempt in range(count):
        if attempt:
            time.sleep(backoff(attempt, first, cap))
        yield attempt


def count_from_env(variable: str, default: int) -> int:
    """How many attempts the environment asks for (``OFFSITE_SFTP_ATTEMPTS``), from 1."""
    value = os.environ.get(variable, "")
    if not value:
        return default
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        raise BadInput(f"{variable} is a whole number from 1, not {value!r}")
    return int(value)
