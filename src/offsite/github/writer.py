"""Writing into a GitHub repository (a restore into GitHub, SPEC §11): paced, patient, one
line on failure.

Writes are spaced ``pace`` seconds apart (one a second by default, as GitHub asks of
content creation); an answer that says to wait (a secondary rate limit: 403 or 429 with
``Retry-After``, or an exhausted limit with its reset time) is waited out and the write
sent again, since GitHub made nothing of it. Reads go through PyGithub's requester, whose
``GithubRetry`` does the same for them. A write that gets no answer fails the run: whether
GitHub made it is unknown, and the next run finds out (by the marker every item carries).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offsite.github.metadata_index import next_page

# GitHub also caps content creation at about 80 a minute and 500 an hour: a large
# restore meets that limit every few hundred writes and waits as long as GitHub says
WAITS = 24  # rate-limit answers waited out for one write before the run gives up
LONGEST = 3900.0  # seconds waited for one request: more fails the run (a second run resumes)


class Writer:
    """The API of one repository, ``/repos/OWNER/REPO``; ``fail(reason)`` makes the error."""

    def __init__(
        self,
        requester: Any,
        repo: str,
        pace: float,
        fail: Callable[[str], Exception],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.requester = requester
        self.root = f"/repos/{repo}"
        self.pace = pace
        self.fail = fail
        self.sleep = sleep
        self.sent: Counter[str] = Counter()  # requests by method
        self.waited = 0.0  # seconds waited on rate limits
        self._last = 0.0
        self.status = 0  # of the last answer (0: none came)

    # -- reading ---------------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The answer's data, or None where GitHub answers 404 (or 410)."""
        status, _, data = self._send("GET", self._url(path), params=params)
        return None if status in (404, 410) else data

    def exists(self, path: str) -> bool:
        """Whether GitHub answers other than 404 (an assignable user: 204)."""
        return self._send("GET", self._url(path))[0] != 404

    def every(
        self, path: str, params: dict[str, Any] | None = None, wrapped: str = ""
    ) -> list[Any]:
        """Every item of a list, page by page (a list that is not there: nothing)."""
        url: str | None = self._url(path)
        query: dict[str, Any] | None = {**(params or {}), "per_page": 100}
        found: list[Any] = []
        seen: set[str] = set()
        while url and url not in seen:  # (a next page already read ends the list)
            seen.add(url)
            status, headers, data = self._send("GET", url, params=query)
            if status in (404, 410):  # not there; switched off (issues disabled)
                return found
            items = data.get(wrapped) if wrapped and isinstance(data, dict) else data
            if not isinstance(items, list):
                raise self.fail(f"{path}: GitHub answered {type(data).__name__}, not a list")
            found += items
            url, query = (next_page(headers) if items else None), None
        return found

    # -- writing ---------------------------------------------------------------------------
    def write(self, method: str, path: str, body: Any = None) -> Any:
        """Make a change; its answer's data. A refusal fails the run, named."""
        return self._send(method, self._url(path), body=body, paced=True)[2]

    def upload(self, template: str, name: str, file: Path) -> Any:
        """A release asset, streamed from ``file`` to the release's ``upload_url``."""
        url = template.split("{", 1)[0]
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(file.stat().st_size),
        }
        return self._send("POST", url, params={"name": name}, upload=(headers, file), paced=True)[2]

    # -- the wire --------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return (
            path if path.startswith(("/", "http")) else f"{self.root}/{path}" if path else self.root
        )

    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        upload: tuple[dict[str, str], Path] | None = None,
        paced: bool = False,
    ) -> tuple[int, dict[str, Any], Any]:
        from github import GithubException

        from offsite.github.repos import reason

        where = f"{method} {url.split('?')[0]}"
        waited = 0.0  # on this request: the waits GitHub asks add up to LONGEST at most
        for _ in range(WAITS + 1):
            if paced:
                self._keep_pace()
            self.sent[method] += 1
            self.status = 0
            try:
                if upload is not None:
                    headers, file = upload
                    with open(file, "rb") as fh:
                        answer, data = self.requester.requestMemoryBlobAndCheck(
                            method, url, params, headers, fh
                        )
                    return 201, answer, data
                status, answer, output = self.requester.requestJson(
                    method, url, parameters=params, input=body
                )
                data = json.loads(output) if output else None
            except GithubException as exc:
                status, answer, data = exc.status, dict(exc.headers or {}), exc.data
            except ValueError:
                raise self.fail(f"{where}: GitHub answered what is not JSON") from None
            except OSError as exc:  # requests' errors are OSErrors: no answer
                raise self.fail(f"{where}: {reason(exc)}") from None
            self.status = status
            if status < 400 or (status in (404, 410) and method == "GET"):
                return status, answer, data
            wait = _wait(status, answer, data)
            if wait is None:
                said = reason(self.requester.createException(status, answer, data))
                needed = {str(k).lower(): v for k, v in answer.items()}.get(
                    "x-accepted-github-permissions")  # fmt: skip
                if status == 403 and needed:  # what GitHub names for this request
                    said += f" (the token needs {needed})"
                raise self.fail(f"{where}: {said}")
            waited += wait
            if waited > LONGEST:
                raise self.fail(f"{where}: GitHub asks to wait {waited:.0f} s in all")
            self.waited += wait
            self.sleep(wait)
        raise self.fail(f"{where}: still rate limited after {WAITS} waits")

    def _keep_pace(self) -> None:
        due = self._last + self.pace - time.monotonic()
        if due > 0:
            self.sleep(due)
        self._last = time.monotonic()


def _wait(status: int, headers: dict[str, Any], data: Any) -> float | None:
    """Seconds to wait before sending again, where GitHub's answer says to; else None."""
    if status not in (403, 429):
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    if lower.get("retry-after", "").strip().isdigit():
        return float(lower["retry-after"])
    if lower.get("x-ratelimit-remaining") == "0" and lower.get("x-ratelimit-reset", "").isdigit():
        return max(1.0, float(lower["x-ratelimit-reset"]) - time.time())
    message = str(data.get("message", "")) if isinstance(data, dict) else ""
    return 60.0 if "secondary rate limit" in message.lower() else None
