"""The OCI distribution API, as far as a backup and a restore need it: manifests by tag or
digest, blobs streamed (each checked by whoever reads it), uploads, and the
authentication registries ask for.

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
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from offsite.errors import BadInput, OperationFailed
from offsite.github import env as github_env
from offsite.oci.layout import MANIFESTS, MAX_MANIFEST, digest_of
from offsite.oci.reference import Reference
from offsite.stream.readers import CHUNK, Readable

TIMEOUT = (15, 300)  # connect, then between bytes
ACCEPT = ", ".join(MANIFESTS)
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


class RegistryError(OperationFailed):
    """{}"""


class ImageMissing(RegistryError):
    """{}"""


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


def _site(host: str) -> str:
    """The registrable part of a host name, roughly: its last two labels."""
    return ".".join(host.lower().rstrip(".").split(".")[-2:])


def _local(host: str) -> bool:
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


MAX_ERROR = 64 << 10  # of an error or token answer: what is read of it, at most


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _errors(answer: Any) -> str:
    """The registry's own words (its ``errors`` list, from at most 64 KiB), else the status."""
    try:
        body = _json(answer.raw.read(MAX_ERROR, decode_content=True))
    except Exception:  # the status alone says enough
        body = None
    found = body.get("errors") if isinstance(body, dict) else None
    said = "; ".join(
        f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")[:200]
        for e in (found if isinstance(found, list) else [])[:3]
        if isinstance(e, dict)
    )
    return f"{answer.status_code} {said or answer.reason or ''}".strip()


class Registry:
    """One registry, one repository at a time; tokens kept per scope for the run."""

    def __init__(self, ref: Reference, env: Mapping[str, str] | None = None) -> None:
        import requests

        self.ref = ref
        self.where = f"{'oci' if ref.secure else 'oci+http'}://{ref.registry}"
        self.credentials = credentials_for(ref.host, env)
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "offsite"
        self._tokens: dict[str, str] = {}
        self._basic = False

    def close(self) -> None:
        self.http.close()

    # -- authentication --------------------------------------------------------------
    def _may_send(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == "https" or _local(parts.hostname or "")

    def _basic_header(self, url: str) -> dict[str, str]:
        c = self.credentials
        if c is None:
            return {}
        if not self._may_send(url):
            raise BadInput(
                f"{self.where}: {c.origin} would cross plain HTTP to {urlsplit(url).hostname}; "
                "use oci:// (HTTPS), or a registry on this machine"
            )
        raw = base64.b64encode(f"{c.user}:{c.password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def _authorize(self, header: str, scope: str, url: str) -> None:
        import requests

        kind, params = challenge(header)
        if kind == "basic":
            if self.credentials is None:
                raise self._denied("it asks for a user and password")
            self._basic_header(url)  # refuses plain HTTP elsewhere
            self._basic = True
            return
        if kind != "bearer" or not params.get("realm"):
            raise RegistryError(f"{self.where}: unknown authentication {header[:80]!r}")
        realm = params["realm"]
        realm_host = urlsplit(realm).hostname or ""
        if urlsplit(realm).scheme not in ("https", "http") or not realm_host:
            raise RegistryError(f"{self.where}: a token realm that is not an http(s) URL")
        if self.credentials is not None:
            self._basic_header(self.ref.base)  # a token got with them is a credential too
            if _site(realm_host) != _site(self.ref.host) and not (
                _local(realm_host) and _local(self.ref.host)
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
                realm, params=query, headers=self._basic_header(realm), timeout=TIMEOUT,
                stream=True, allow_redirects=False,
            )  # fmt: skip
        except requests.RequestException as exc:
            raise RegistryError(f"{self.where}: token service unreachable: {_short(exc)}") from None
        with contextlib.closing(answer):
            if answer.status_code in (401, 403):
                raise self._denied("its token service refused the credentials")
            if answer.status_code != 200:
                raise RegistryError(f"{self.where}: token service answered {_errors(answer)}")
            body = _json(self._read(answer, MAX_ERROR))
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.where}: the token service gave no token")
        self._tokens[scope] = token

    def _denied(self, why: str) -> RegistryError:
        if self.credentials is None:
            hint = "set OFFSITE_REGISTRY_USER and OFFSITE_REGISTRY_PASSWORD"
            if self.ref.host == github_env.container_registry_host():
                hint = "set GITHUB_TOKEN (with read:packages) or " + hint
            return RegistryError(f"{self.where}: access denied ({why}): {hint}")
        return RegistryError(f"{self.where}: access denied with {self.credentials.origin} ({why})")

    def _auth_header(self, scope: str, url: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if self._basic:
            return self._basic_header(url)
        return {}

    def request(
        self,
        method: str,
        path: str,
        repository: str,
        push: bool = False,
        headers: dict[str, str] | None = None,
        data: Any = None,
        url: str | None = None,
    ) -> Any:
        """One request for ``repository`` (``url`` overrides ``path``: an upload location),
        authenticated as the registry asks; ``data`` that is a stream is sent once, so a
        request that carries one must follow one that authenticated its scope."""
        import requests

        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        target = url or urljoin(self.ref.base, path)
        for attempt in (1, 2):
            sent = {**(headers or {}), **self._auth_header(scope, target)}
            try:
                answer = self.http.request(
                    method, target, headers=sent, data=data, stream=True, timeout=TIMEOUT,
                    allow_redirects=True,
                )  # fmt: skip
            except requests.RequestException as exc:
                raise RegistryError(f"{self.where}: unreachable: {_short(exc)}") from None
            if answer.status_code != 401 or attempt == 2:
                break
            found = answer.headers.get("WWW-Authenticate", "")
            if not found or (data is not None and not isinstance(data, bytes)):
                break  # a stream cannot be sent twice: the caller authenticated first
            if self._basic and found.lower().startswith("basic"):
                break  # the credentials themselves were refused
            answer.close()
            self._tokens.pop(scope, None)  # expired, or for less than this scope
            self._authorize(found, scope, target)
        if answer.status_code in (401, 403):
            with contextlib.closing(answer):
                raise self._denied(_errors(answer))
        return answer

    def _read(self, answer: Any, limit: int) -> bytes:
        """At most ``limit`` bytes of an answer's body; a broken connection is one line."""
        return _raw_read(answer.raw, limit, True, lambda why: f"{self.where}: the answer {why}")

    # -- reading ---------------------------------------------------------------------
    def manifest(self, repository: str, ref: str) -> tuple[bytes, str, str]:
        """A manifest's bytes, media type and digest (computed, and checked against a
        digest reference and the registry's ``Docker-Content-Digest``)."""
        answer = self.request(
            "GET", f"/v2/{repository}/manifests/{ref}", repository,
            headers={"Accept": ACCEPT},
        )  # fmt: skip
        with contextlib.closing(answer):
            if answer.status_code == 404:
                raise ImageMissing(f"{self.where}/{repository}: no image {ref} there")
            if answer.status_code != 200:
                raise RegistryError(f"{self.where}/{repository}: manifest {ref}: {_errors(answer)}")
            body = self._read(answer, MAX_MANIFEST + 1)
            if len(body) > MAX_MANIFEST:
                raise RegistryError(f"{self.where}/{repository}: manifest {ref} over 4 MiB")
            media = answer.headers.get("Content-Type", "").split(";")[0].strip()
            said = answer.headers.get("Docker-Content-Digest")
        digest = digest_of(body)
        if ref.startswith("sha256:") and digest != ref:
            raise RegistryError(
                f"{self.where}/{repository}: manifest {ref} arrived as {digest}: corrupt"
            )
        if said and said.startswith("sha256:") and said != digest:
            raise RegistryError(
                f"{self.where}/{repository}: manifest {ref} is {digest}, the registry says {said}"
            )
        return body, media, digest

    def has_manifest(self, repository: str, ref: str) -> str | None:
        """The digest of what a tag or digest names in the registry (its bytes hashed), or
        None when there is nothing."""
        try:
            return self.manifest(repository, ref)[2]
        except ImageMissing:
            return None

    @contextlib.contextmanager
    def blob(self, repository: str, digest: str, size: int) -> Iterator[CheckedBlob]:
        """A blob's bytes as a stream that checks the digest and size at its end."""
        answer = self.request(  # the bytes as stored: a compressed answer would not hash
            "GET", f"/v2/{repository}/blobs/{digest}", repository,
            headers={"Accept-Encoding": "identity"},
        )  # fmt: skip
        try:
            if answer.status_code == 404:
                raise ImageMissing(f"{self.where}/{repository}: blob {digest} is missing")
            if answer.status_code != 200:
                raise RegistryError(f"{self.where}/{repository}: blob {digest}: {_errors(answer)}")
            yield CheckedBlob(answer.raw, digest, size, f"{self.where}/{repository}")
        finally:
            answer.close()

    # -- writing ---------------------------------------------------------------------
    def _settled(self, answer: Any, ok: int, what: str) -> Any:
        """The answer, closed; RegistryError with the registry's words when not ``ok``."""
        with contextlib.closing(answer):
            if answer.status_code != ok:
                raise RegistryError(
                    f"{self.where}/{self.ref.repository}: {what}: {_errors(answer)}"
                )
        return answer

    def has_blob(self, repository: str, digest: str) -> bool:
        answer = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", repository, push=True)
        answer.close()
        return bool(answer.status_code == 200)

    def push_blob(self, repository: str, digest: str, size: int, data: Readable) -> None:
        """Upload one blob in one request, streamed (the registry checks the digest)."""
        start = self.request("POST", f"/v2/{repository}/blobs/uploads/", repository, push=True)
        self._settled(start, 202, "upload refused")
        if not start.headers.get("Location"):
            raise RegistryError(f"{self.where}: an upload without a location")
        location = urljoin(urljoin(self.ref.base, f"/v2/{repository}/"), start.headers["Location"])
        parts = urlsplit(location)
        if (parts.scheme, parts.netloc) != (urlsplit(self.ref.base).scheme, self.ref.registry):
            raise RegistryError(f"{self.where}: an upload location on another host")
        joined = "&" if parts.query else "?"
        answer = self.request(
            "PUT", "", repository, push=True, url=f"{location}{joined}digest={quote(digest)}",
            headers={"Content-Type": "application/octet-stream"},
            data=_Iter(data, size),
        )  # fmt: skip
        self._settled(answer, 201, f"blob {digest} refused")

    def put_manifest(self, repository: str, ref: str, body: bytes, media_type: str) -> str:
        answer = self.request(
            "PUT", f"/v2/{repository}/manifests/{ref}", repository, push=True,
            headers={"Content-Type": media_type}, data=body,
        )  # fmt: skip
        self._settled(answer, 201, f"manifest {ref} refused")
        return str(answer.headers.get("Docker-Content-Digest") or digest_of(body))


class _Iter:
    """A stream as the chunks requests sends (with the length already in the headers)."""

    def __init__(self, data: Readable, size: int) -> None:
        self.data = data
        self.size = size

    def __len__(self) -> int:  # requests sends Content-Length, not chunks, when it knows it
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        left = self.size
        while left > 0:
            chunk = self.data.read(min(CHUNK, left))
            if not chunk:
                raise RegistryError("a blob ended before its size")
            left -= len(chunk)
            yield chunk


class CheckedBlob:
    """Reads a blob from the registry; ``finish`` checks it ended at its size and digest."""

    def __init__(self, raw: Any, digest: str, size: int, where: str) -> None:
        self.raw = raw
        self.digest = digest
        self.size = size
        self.where = where
        self.count = 0
        self.hash = hashlib.sha256()

    def read(self, n: int = -1, /) -> bytes:
        data = _raw_read(
            self.raw, CHUNK if n < 0 else n, False,
            lambda why: f"{self.where}: blob {self.digest} {why} after {self.count} bytes",
        )  # fmt: skip
        self.hash.update(data)
        self.count += len(data)
        return data

    def finish(self) -> None:
        try:
            extra = self.raw.read(1, decode_content=False)
        except Exception:
            extra = b""  # the count and digest below decide
        found = "sha256:" + self.hash.hexdigest()
        if extra or self.count != self.size or found != self.digest:
            got = f"{self.count}{'+' if extra else ''} bytes"
            raise RegistryError(
                f"{self.where}: blob {self.digest} is corrupt in the registry "
                f"({got} of {self.size}, digest {found[:19]}…)"
            )


def _raw_read(raw: Any, n: int, decode: bool, where: Callable[[str], str]) -> bytes:
    """``n`` bytes at most from an answer's body; a connection that broke off is one line
    (``where("broke off")``: what it was, and the cause)."""
    import requests
    import urllib3

    try:
        return bytes(raw.read(n, decode_content=decode))
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise RegistryError(f"{where('broke off')}: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
