"""A GitHub user's or organisation's repositories, through PyGithub: paginated, and
patient with rate limits (``GithubRetry`` waits out a ``Retry-After`` and the reset time
of an exhausted limit). ``GITHUB_API_URL`` points it at GitHub Enterprise Server.
Choosing among them (forks, archived, name globs) is a pure function."""

from __future__ import annotations

import fnmatch
import logging
import re
from dataclasses import dataclass
from typing import Any

from offsite.errors import BadInput, OperationFailed
from offsite.github import env as github_env

PER_PAGE = 100


@dataclass(frozen=True)
class Repository:
    full_name: str
    name: str
    clone_url: str
    fork: bool = False
    archived: bool = False
    private: bool = False
    has_wiki: bool = True


class _RateLimitWaits(logging.Handler):
    """Stands in for the stderr handler PyGithub attaches to its logger on import (at INFO:
    every retried request's address, a signed storage one included): one line for each
    wait on a rate limit, nothing else. Writes through click, so to the current stderr."""

    _WAIT = re.compile(r"^(?:Setting next backoff to (\S+?)s?|Retrying after (\S+) seconds)$")

    def emit(self, record: logging.LogRecord) -> None:
        import click

        m = self._WAIT.match(record.getMessage())
        if m:
            seconds = m.group(1) or m.group(2)
            click.echo(f"offsite: waiting {seconds}s for GitHub's rate limit", err=True)


def _quiet_pygithub() -> None:
    log = logging.getLogger("github")
    if not any(isinstance(h, _RateLimitWaits) for h in log.handlers):
        for handler in list(log.handlers):
            log.removeHandler(handler)
        log.addHandler(_RateLimitWaits())


def client(
    token: str | None = None, api_url: str | None = None, workers: int = 8, writes: bool = False
) -> Any:
    """PyGithub, patient with rate limits; ``writes``: a POST is never sent twice by the
    transport (a POST whose answer was lost may have made its item: the caller decides)."""
    from github import Auth, Github, GithubRetry
    from urllib3.util.retry import Retry

    _quiet_pygithub()
    token = token or github_env.api_token()
    url = (api_url or github_env.api_url()).rstrip("/")
    retry = GithubRetry(total=5, backoff_factor=0.5, max_rate_limit_wait=300)
    if writes:
        idempotent = Retry.DEFAULT_ALLOWED_METHODS | {"GET", "PATCH"}
        retry = GithubRetry(total=5, backoff_factor=0.5, max_rate_limit_wait=300,
                            allowed_methods=idempotent)  # fmt: skip
    return Github(auth=Auth.Token(token) if token else None, base_url=url, per_page=PER_PAGE,
                  retry=retry, pool_size=workers, seconds_between_requests=None,
                  seconds_between_writes=None, timeout=30,
                  lazy=True)  # fmt: skip


def reason(exc: Exception) -> str:
    """One line on why a GitHub API call failed; never the token."""
    from github import GithubException

    if isinstance(exc, GithubException):
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        if exc.status == 401:
            return "GitHub refused the token (401 Bad credentials): check GITHUB_TOKEN"
        return f"GitHub answered {exc.status}: {message or 'no message'}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"GitHub API unreachable: {text}"


def list_repositories(gh: Any, owner: str) -> list[Repository]:
    """Every repository of ``owner`` (an organisation's, or a user's) the token can see."""
    from github import GithubException

    try:
        user = gh.get_user(owner)
        listing = (
            gh.get_organization(owner).get_repos(type="all")
            if user.type == "Organization"
            else user.get_repos()
        )
        return [
            Repository(
                r.full_name,
                r.name,
                r.clone_url,
                fork=bool(r.fork),
                archived=bool(r.archived),
                private=bool(r.private),
                has_wiki=r.has_wiki is not False,
            )
            for r in listing
        ]
    except GithubException as exc:
        if getattr(exc, "status", None) in (401, 404):
            raise BadInput(f"github://{owner}: {reason(exc)}") from None
        raise OperationFailed(
            f"github://{owner}: cannot list repositories: {reason(exc)}"
        ) from None
    except OSError as exc:
        raise OperationFailed(f"github://{owner}: {reason(exc)}") from None


@dataclass(frozen=True)
class RepoChoice:
    forks: bool = False
    archived: bool = False
    private: bool = True
    patterns: tuple[str, ...] = ()


def owner_of(url: str) -> str | None:
    """``github://OWNER`` (a whole owner) → OWNER; anything else → None."""
    if not url.startswith("github://"):
        return None
    rest = url[len("github://") :].strip("/")
    return rest if rest and "/" not in rest else None


def repositories(owner: str, choice: RepoChoice) -> list[Repository]:
    """The repositories of ``owner`` that ``choice`` keeps (one API listing)."""
    found = list_repositories(client(), owner)
    return choose(found, choice.forks, choice.archived, choice.private, choice.patterns)


def choose(
    repos: list[Repository],
    forks: bool = False,
    archived: bool = False,
    private: bool = True,
    patterns: tuple[str, ...] = (),
) -> list[Repository]:
    """The repositories to back up: forks and archived ones only when asked, private ones
    unless refused, names matching any of ``patterns`` (all when none); sorted by name."""
    return sorted(
        (
            r for r in repos
            if (forks or not r.fork) and (archived or not r.archived) and (private or not r.private)
            and (not patterns or any(fnmatch.fnmatch(r.name, p) for p in patterns))
        ),
        key=lambda r: r.name,
    )  # fmt: skip
