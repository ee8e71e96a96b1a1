"""What GitHub knows about a backup workflow, read through PyGithub, frugally.

Three requests per repository when all is well: the workflow (its ``state``), one page
of its runs (newest first, 100 of them), and one page of the repository's artifacts
(each names its run). The gaps the RPO is judged on come from the same runs. More only
when they do not reach back far enough: further run pages until they cover the window
and the successful runs the median is taken over (at most ten pages; the report says
when the window is still not covered), or the newest successful run's own artifacts.
``--reenable-disabled`` adds one (a PUT) for a workflow GitHub disabled for inactivity.
Repositories are checked concurrently. Token from ``GITHUB_TOKEN`` (or ``GH_TOKEN``);
``GITHUB_API_URL`` for GitHub Enterprise Server.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from offsite.errors import BadInput, OffsiteError
from offsite.github import env as github_env
from offsite.github.repos import PER_PAGE, client, list_repositories, reason
from offsite.monitor.health import Backup, Observation, Run
from offsite.storage.gh_artifacts import own_run

MAX_RUN_PAGES = 10
WORKERS = 8


class GitHubReader:
    def __init__(
        self, token: str | None = None, api_url: str | None = None,
        window: timedelta = timedelta(days=7), reenable: bool = False, baseline: int = 5,
        artifacts: bool = True,
    ) -> None:  # fmt: skip
        self.window, self.reenable, self.baseline = window, reenable, baseline
        self.artifacts = artifacts  # read them (--no-artifacts: the workflow stores elsewhere)
        token = token or github_env.api_token()
        if not token:
            raise BadInput("the monitor reads GitHub's API: set GITHUB_TOKEN")
        self.api_url = api_url or github_env.api_url()
        self.gh = client(token, self.api_url, WORKERS)
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        self._count_requests()

    def _count_requests(self) -> None:
        """Count every API request per thread: the report says what a check cost."""
        requester = self.gh.requester  # shared by every lazy object it hands out
        inner: Callable[..., Any] = requester.requestJson  # requestJsonAndCheck calls it too

        def counted(*args: Any, **kwargs: Any) -> Any:
            ident = threading.get_ident()
            with self._lock:
                self._counts[ident] = self._counts.get(ident, 0) + 1
            return inner(*args, **kwargs)

        setattr(requester, "requestJson", counted)  # noqa: B010 - mypy refuses the plain form

    def _spent(self) -> int:
        with self._lock:
            return self._counts.pop(threading.get_ident(), 0)

    def expand(self, repos: list[str]) -> tuple[list[str], list[str]]:
        """The repositories named, and those an ``owner/*`` (or any glob) matches among
        the owner's: of these, only the ones that have the workflow count."""
        named: list[str] = []
        out: list[str] = []
        for spec in repos:
            if "/" not in spec or spec.count("/") != 1:
                raise BadInput(f"--repo takes OWNER/REPO or OWNER/*, not {spec!r}")
            owner, name = spec.split("/")
            if not any(c in name for c in "*?["):
                named.append(spec)
                continue
            try:
                listed = list_repositories(self.gh, owner)
            except OffsiteError as exc:
                raise BadInput(f"--repo {spec}: {exc.message()}") from None
            out += [r.full_name for r in listed if fnmatch.fnmatch(r.name, name)]
        named = list(dict.fromkeys(named))
        return named, [r for r in dict.fromkeys(out) if r not in named]

    def observe_all(
        self, repos: list[str], workflow: str, branch: str | None, event: str | None
    ) -> list[Observation]:
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            return list(pool.map(lambda r: self.observe(r, workflow, branch, event), repos))

    def observe(
        self, repo: str, workflow: str, branch: str | None, event: str | None
    ) -> Observation:
        seen = Observation(f"{repo} {workflow}", kind="workflow")
        self._spent()
        try:
            self._read(seen, repo, workflow, branch, event)
        except Exception as exc:  # every failure to read is "could not check"
            from github import UnknownObjectException

            if isinstance(exc, UnknownObjectException):
                seen.absent = True
                seen.error = f"workflow {workflow} not found in {repo} (or the token cannot see it)"
            elif isinstance(exc, OffsiteError):
                seen.error = exc.message()
            else:
                seen.error = reason(exc)
        seen.requests = self._spent()
        return seen

    def _read(
        self, seen: Observation, repo: str, workflow: str, branch: str | None, event: str | None
    ) -> None:
        r = self.gh.get_repo(repo)  # lazy: no request until something is read
        flow = r.get_workflow(workflow)
        seen.workflow_state = flow.state
        seen.url = flow.html_url
        if flow.state == "disabled_inactivity" and self.reenable:
            from github import GithubException

            try:
                enabled = flow.enable()  # needs actions: write
            except GithubException as exc:
                enabled, why = False, reason(exc)
            else:
                why = "GitHub did not answer 204"
            if not enabled:
                raise BadInput(f"could not re-enable {workflow} in {repo} ({why}): does the "
                               "token have actions: write?")  # fmt: skip
            seen.workflow_state, seen.reenabled = "active", True
        filters: dict[str, Any] = {}
        if branch:
            filters["branch"] = branch
        if event:
            filters["event"] = event
        listing = flow.get_runs(**filters)
        raw = []
        since = datetime.now(timezone.utc) - self.window
        for page in range(MAX_RUN_PAGES):
            chunk = listing.get_page(page)
            raw += chunk
            if len(chunk) < PER_PAGE:
                break  # the whole history
            # enough: the success that opens the window (the first gap starts there) and
            # the successes the median is taken over
            successes = [x for x in raw if x.conclusion == "success"]
            if len(successes) > self.baseline and successes[-1].updated_at <= since:
                break
        else:
            seen.history_short = True
        # A fork's pull request can run the workflow too: only the repository's own runs,
        # and only the artifacts they uploaded, count (SPEC §7, as gh-artifacts:// reads).
        raw = [x for x in raw if x.head_repository.id == x.repository.id]
        seen.runs = [Run(x.id, x.run_number, x.status, x.conclusion, x.updated_at, x.html_url,
                         x.run_started_at) for x in raw]  # fmt: skip
        success = next((x for x in raw if x.conclusion == "success"), None)
        if success is None or not self.artifacts:
            return
        repository_id = success.repository.id

        def backups(found: Any) -> list[Any]:
            return [a for a in found if a.name.startswith("backup-")
                    and own_run(a.raw_data.get("workflow_run"), repository_id, branch)]  # fmt: skip

        artifacts = backups(r.get_artifacts().get_page(0))
        if not any(a.raw_data["workflow_run"]["id"] == success.id for a in artifacts):
            artifacts += backups(success.get_artifacts())
        seen.backups = [
            Backup(a.name, a.size_in_bytes, a.created_at, bool(a.expired),
                   a.raw_data["workflow_run"]["id"])
            for a in artifacts
        ]  # fmt: skip
