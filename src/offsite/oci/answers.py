"""A registry's answers, read with care: at most 64 KiB of an error or a token, the
registry's own words for a refusal, a connection that broke off in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from offsite.errors import OperationFailed

TIMEOUT = (15, 300)  # connect, then between bytes


class RegistryError(OperationFailed):
    """{}"""


class ImageMissing(RegistryError):
    """{}"""


MAX_ERROR = 64 << 10  # of an error or token answer: what is read of it, at most


def read_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def errors_of(answer: Any) -> str:
    """The registry's own words (its ``errors`` list, from at most 64 KiB), else the status."""
    try:
        body = read_json(answer.raw.read(MAX_ERROR, decode_content=True))
    except Exception:  # the status alone says enough
        body = None
    found = body.get("errors") if isinstance(body, dict) else None
    said = "; ".join(
        f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")[:200]
        for e in (found if isinstance(found, list) else [])[:3]
        if isinstance(e, dict)
    )
    return f"{answer.status_code} {said or answer.reason or ''}".strip()


def raw_read(raw: Any, n: int, decode: bool, where: Callable[[str], str]) -> bytes:
    """``n`` bytes at most from an answer's body; a connection that broke off is one line
    (``where("broke off")``: what it was, and the cause)."""
    import requests
    import urllib3

    try:
        return bytes(raw.read(n, decode_content=decode))
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise RegistryError(f"{where('broke off')}: {short(exc)}") from None


def short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
