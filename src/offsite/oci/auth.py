"""The authentication registries ask for (the OCI distribution API's, and Docker's token
flow).

A request goes out without credentials first (or with the token already held for its
scope); a 401 names the scheme. ``Bearer`` (distribution's token flow, which GHCR and
Docker Hub use): a token for ``repository:NAME:pull[,push]`` from the realm the challenge
names, asked with the credentials when there are any, kept per scope. ``Basic``: the
credentials themselves. Credentials come from ``OFFSITE_REGISTRY_USER`` and
``OFFSITE_REGISTRY_PASSWORD``, or ``GITHUB_TOKEN`` for ghcr.io; never from the command
line, and never sent over plain HTTP except to this machine (a local registry).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from offsite.errors import BadInput
from offsite.github import env as github_env
from offsite.oci.answers import (
    MAX_ERROR,
    TIMEOUT,
    RegistryError,
    errors_of,
    raw_read,
    read_json,
    short,
)
from offsite.oci.reference import Reference

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    origin: str  # the variable they came from, for messages


def credentials_for(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for ``host``: GitHub's token for GitHub's container registry;
    ``OFFSITE_REGISTRY_USER``/``_PASSWORD`` for the hosts ``OFFSITE_REGISTRY_HOST`` names
    (comma-separated), or, when it names none, for any registry but GitHub's."""
    values = os.environ if env is None else env
    user, password = values.get("OFFSITE_REGISTRY_USER"), values.get("OFFSITE_REGISTRY_PASSWORD")
    token = github_env.api_token(values)
    github = github_env.container_registry_host(values)
    hosts = {h.strip().lower() for h in values.get("OFFSITE_REGISTRY_HOST", "").split(",")}
    hosts.discard("")
    if host == github and token:
        return Credentials(values.get("GITHUB_ACTOR") or "offsite", token, "GITHUB_TOKEN")
    if password and (host in hosts if hosts else host != github):
        return Credentials(user or "offsite", password, "OFFSITE_REGISTRY_PASSWORD")
    return None


def site(host: str) -> str:
    """The registrable part of a host name, roughly: its last two labels."""
    return ".".join(host.lower().rstrip(".").split(".")[-2:])


def local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…",scope="…"`` → ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) or m.group(3) for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


class Auth:
    """How one registry is authenticated for a run: its credentials, and the tokens got for
    each scope (``repository:NAME:pull[,push]``)."""

    def __init__(
        self, ref: Reference, where: str, http: Any, env: Mapping[str, str] | None
    ) -> None:
        self.ref = ref
        self.where = where
        self.http = http
        self.credentials = credentials_for(ref.host, env)
        self.tokens: dict[str, str] = {}
        self.basic = False

    def may_send(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == "https" or local(parts.hostname or "")

    def basic_header(self, url: str) -> dict[str, str]:
        c = self.credentials
        if c is None:
            return {}
        if not self.may_send(url):
            raise BadInput(
                f"{self.where}: {c.origin} would cross plain HTTP to {urlsplit(url).hostname}; "
                "use oci:// (HTTPS), or a registry on this machine"
            )
        raw = base64.b64encode(f"{c.user}:{c.password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def authorize(self, header: str, scope: str, url: str) -> None:
        import requests

        kind, params = challenge(header)
        if kind == "basic":
            if self.credentials is None:
                raise self.denied("it asks for a user and password")
            self.basic_header(url)  # refuses plain HTTP elsewhere
            self.basic = True
            return
        if kind != "bearer" or not params.get("realm"):
            raise RegistryError(f"{self.where}: unknown authentication {header[:80]!r}")
        realm = params["realm"]
        realm_host = urlsplit(realm).hostname or ""
        if urlsplit(realm).scheme not in ("https", "http") or not realm_host:
            raise RegistryError(f"{self.where}: a token realm that is not an http(s) URL")
        if self.credentials is not None:
            self.basic_header(self.ref.base)  # a token got with them is a credential too
            if site(realm_host) != site(self.ref.host) and not (
                local(realm_host) and local(self.ref.host)
            ):
                raise RegistryError(
                    f"{self.where}: its token service is on another site ({realm_host}); "
                    f"{self.credentials.origin} is not sent there"
                )
        query = {"scope": scope}
        if params.get("service"):
            query["service"] = params["service"]
        if self.credentials is not None:
            query["account"] = self.credentials.user
        try:
            answer = self.http.get(
                realm, params=query, headers=self.basic_header(realm), timeout=TIMEOUT,
                stream=True, allow_redirects=False,
            )  # fmt: skip
        except requests.RequestException as exc:
            raise RegistryError(f"{self.where}: token service unreachable: {short(exc)}") from None
        with contextlib.closing(answer):
            if answer.status_code in (401, 403):
                raise self.denied("its token service refused the credentials")
            if answer.status_code != 200:
                raise RegistryError(f"{self.where}: token service answered {errors_of(answer)}")
            body = read_json(self._read(answer))
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.where}: the token service gave no token")
        self.tokens[scope] = token

    def denied(self, why: str) -> RegistryError:
        if self.credentials is None:
            hint = "set OFFSITE_REGISTRY_USER and OFFSITE_REGISTRY_PASSWORD"
            if self.ref.host == github_env.container_registry_host():
                hint = "set GITHUB_TOKEN (with read:packages) or " + hint
            return RegistryError(f"{self.where}: access denied ({why}): {hint}")
        return RegistryError(f"{self.where}: access denied with {self.credentials.origin} ({why})")

    def header(self, scope: str, url: str) -> dict[str, str]:
        if scope in self.tokens:
            return {"Authorization": f"Bearer {self.tokens[scope]}"}
        if self.basic:
            return self.basic_header(url)
        return {}

    def _read(self, answer: Any) -> bytes:
        return raw_read(answer.raw, MAX_ERROR, True, lambda why: f"{self.where}: the answer {why}")
