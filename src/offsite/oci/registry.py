"""The OCI distribution API, as far as a backup and a restore need it: manifests by tag or
digest, blobs streamed (each checked by whoever reads it), uploads. The authentication
registries ask for (credentials, the token flow) is ``auth.py``'s.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from offsite.oci.answers import TIMEOUT, ImageMissing, RegistryError, errors_of, raw_read, short
from offsite.oci.auth import Auth, Credentials
from offsite.oci.layout import MANIFESTS, MAX_MANIFEST, digest_of
from offsite.oci.reference import Reference
from offsite.stream.readers import CHUNK, Readable

ACCEPT = ", ".join(MANIFESTS)


class Registry:
    """One registry, one repository at a time; tokens kept per scope for the run."""

    def __init__(self, ref: Reference, env: Mapping[str, str] | None = None) -> None:
        import requests

        self.ref = ref
        self.where = f"{'oci' if ref.secure else 'oci+http'}://{ref.registry}"
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "offsite"
        self.auth = Auth(ref, self.where, self.http, env)

    @property
    def credentials(self) -> Credentials | None:
        return self.auth.credentials

    def close(self) -> None:
        self.http.close()

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
            sent = {**(headers or {}), **self.auth.header(scope, target)}
            try:
                answer = self.http.request(
                    method, target, headers=sent, data=data, stream=True, timeout=TIMEOUT,
                    allow_redirects=True,
                )  # fmt: skip
            except requests.RequestException as exc:
                raise RegistryError(f"{self.where}: unreachable: {short(exc)}") from None
            if answer.status_code != 401 or attempt == 2:
                break
            found = answer.headers.get("WWW-Authenticate", "")
            if not found or (data is not None and not isinstance(data, bytes)):
                break  # a stream cannot be sent twice: the caller authenticated first
            if self.auth.basic and found.lower().startswith("basic"):
                break  # the credentials themselves were refused
            answer.close()
            self.auth.tokens.pop(scope, None)  # expired, or for less than this scope
            self.auth.authorize(found, scope, target)
        if answer.status_code in (401, 403):
            with contextlib.closing(answer):
                raise self.auth.denied(errors_of(answer))
        return answer

    def _read(self, answer: Any, limit: int) -> bytes:
        """At most ``limit`` bytes of an answer's body; a broken connection is one line."""
        return raw_read(answer.raw, limit, True, lambda why: f"{self.where}: the answer {why}")

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
                raise RegistryError(
                    f"{self.where}/{repository}: manifest {ref}: {errors_of(answer)}"
                )
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
                raise RegistryError(
                    f"{self.where}/{repository}: blob {digest}: {errors_of(answer)}"
                )
            yield CheckedBlob(answer.raw, digest, size, f"{self.where}/{repository}")
        finally:
            answer.close()

    # -- writing ---------------------------------------------------------------------
    def _settled(self, answer: Any, ok: int, what: str) -> Any:
        """The answer, closed; RegistryError with the registry's words when not ``ok``."""
        with contextlib.closing(answer):
            if answer.status_code != ok:
                raise RegistryError(
                    f"{self.where}/{self.ref.repository}: {what}: {errors_of(answer)}"
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
        data = raw_read(
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
