"""Where GitHub is, and the token offsite shows it: the one place that reads them from the
environment, so the repository listing, the metadata export, GitHub Artifacts, git and the
monitor agree.

- API: ``GITHUB_API_URL`` (GitHub Enterprise Server), else ``https://api.github.com``;
- web and git: ``GITHUB_SERVER_URL``, else ``https://github.com``;
- API token: ``GITHUB_TOKEN``, else ``GH_TOKEN`` (what the ``gh`` CLI reads);
- git token: ``OFFSITE_GIT_TOKEN``, else ``GITHUB_TOKEN`` (a token for other hosts first).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

API_TOKEN_VARIABLES = ("GITHUB_TOKEN", "GH_TOKEN")
GIT_TOKEN_VARIABLES = ("OFFSITE_GIT_TOKEN", "GITHUB_TOKEN")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _first(names: tuple[str, ...], env: Mapping[str, str] | None) -> str | None:
    values = _env(env)
    return next((values[n] for n in names if values.get(n)), None)


def api_url(env: Mapping[str, str] | None = None) -> str:
    return (_env(env).get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")


def server_url(env: Mapping[str, str] | None = None) -> str:
    return (_env(env).get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")


def api_token(env: Mapping[str, str] | None = None) -> str | None:
    return _first(API_TOKEN_VARIABLES, env)


def git_token(env: Mapping[str, str] | None = None) -> str | None:
    return _first(GIT_TOKEN_VARIABLES, env)


def container_registry(env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """GitHub's container registry: (HTTPS, host[:port]). ``ghcr.io`` unless
    ``OFFSITE_CONTAINER_REGISTRY`` names another (GitHub Enterprise Server's
    ``containers.HOST``; ``oci+http://HOST:PORT`` for a local stand-in)."""
    value = (_env(env).get("OFFSITE_CONTAINER_REGISTRY") or "ghcr.io").strip().rstrip("/")
    if value.startswith("oci+http://"):
        return False, value[len("oci+http://") :]
    return True, value.removeprefix("oci://").removeprefix("https://")


def container_registry_host(env: Mapping[str, str] | None = None) -> str:
    """The host name of GitHub's container registry, lower case, without its port."""
    return container_registry(env)[1].split(":", 1)[0].lower()
