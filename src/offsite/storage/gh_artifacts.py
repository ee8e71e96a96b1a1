"""GitHub Artifacts, for reading (``gh-artifacts://owner/repo``): list, restore, verify
and prune the sets that ``actions/upload`` stored as artifacts named ``backup-<set-id>``.

Each artifact is a zip of one set folder (stored with ``compression-level: 0``). Nothing
is downloaded whole: the zip is read with HTTP Range requests, its central directory
first, then only the members asked for. The download address GitHub redirects to expires
within a minute, so it is asked for afresh whenever it is needed. Writing goes through
``actions/upload-artifact`` in a workflow, never through this backend.

Whoever can open a pull request from a fork can make a workflow run upload an artifact
named ``backup-…`` to the repository. Only artifacts whose run belongs to the repository
itself (``workflow_run.head_repository_id`` is the repository's id) and ran on its default
branch (or ``--artifacts-branch``) are read (SPEC §7); one request for the repository
tells its id and default branch.
"""

from __future__ import annotations

import builtins
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO, cast

from offsite.errors import BadInput, StorageError
from offsite.github import env as github_env
from offsite.names import ARTIFACT_PREFIX, set_ids_of
from offsite.storage.base import ObjectInfo
from offsite.storage.guard import guarded
from offsite.storage.registry import register
from offsite.storage.settings import StorageSettings
from offsite.stream.readers import Readable

PREFIX = ARTIFACT_PREFIX
BLOCK = 1 << 20
TIMEOUT = 60
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass(frozen=True)
class Artifact:
    id: int
    set_id: str
    size: int
    created: datetime
    expired: bool
    download: str  # the API address that redirects to the zip
    expires: datetime | None = None  # when GitHub deletes it (its retention days)


def own_run(workflow_run: Any, repository_id: int, branch: str | None) -> bool:
    """Whether an artifact's ``workflow_run`` is a run of the repository itself (not of a
    fork's pull request) on ``branch`` (``None`` or ``"*"``: any branch)."""
    if not isinstance(workflow_run, dict):
        return False
    if workflow_run.get("head_repository_id") != repository_id:
        return False
    return branch in (None, "*") or workflow_run.get("head_branch") == branch


def _time(text: str | None) -> datetime:
    if not text:
        return datetime.fromtimestamp(0, timezone.utc)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def parse_artifacts(page: dict[str, Any], repository_id: int, branch: str | None) -> list[Artifact]:
    """The backup artifacts of one page of ``GET /repos/{o}/{r}/actions/artifacts`` that
    runs of the repository itself on ``branch`` uploaded."""
    found = []
    for a in page.get("artifacts", []):
        name = a.get("name", "")
        if not own_run(a.get("workflow_run"), repository_id, branch):
            continue
        if name.startswith(PREFIX) and len(name) > len(PREFIX):
            # backup-<set-id>, or a custom backup-<set-id>-… (artifact-name backup-{id}-…)
            named = set_ids_of(name)
            found.append(
                Artifact(
                    id=int(a["id"]),
                    set_id=named[0] if named else name[len(PREFIX) :],
                    size=int(a.get("size_in_bytes") or 0),
                    created=_time(a.get("created_at")),
                    expired=bool(a.get("expired")),
                    download=a["archive_download_url"],
                    expires=_time(a["expires_at"]) if a.get("expires_at") else None,
                )
            )
    return found


def _rank(artifact: Artifact) -> tuple[bool, datetime]:
    return (not artifact.expired, artifact.created)


class _RangeFile(io.RawIOBase):
    """A seekable read-only view of a remote zip, fetched in Range requests of 1 MiB."""

    def __init__(self, store: GhArtifactsStorage, artifact: Artifact) -> None:
        self._store = store
        self._artifact = artifact
        self._location = ""
        self._pos = 0
        self._block_start = -1
        self._block = b""
        first = self._fetch(f"bytes=-{BLOCK}")
        total = first.headers.get("Content-Range", "").rpartition("/")[2]
        self.size = int(total) if total.isdigit() else len(first.content)
        self._block_start, self._block = self.size - len(first.content), first.content

    def _fetch(self, byte_range: str) -> Any:
        for attempt in range(2):
            if not self._location:
                self._location = self._store.zip_location(self._artifact)
            answer = self._store.http.get(
                self._location, headers={"Range": byte_range}, timeout=TIMEOUT
            )
            if answer.status_code in (200, 206):
                return answer
            if answer.status_code in (401, 403) and attempt == 0:
                self._location = ""  # the signed address expired: ask for a new one
                continue
            raise StorageError(
                self._store.url,
                f"artifact {PREFIX}{self._artifact.set_id}: download answered {answer.status_code}",
            )
        raise AssertionError("unreachable")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.size - self._pos)
        if want <= 0:
            return 0
        inside = self._block_start <= self._pos < self._block_start + len(self._block)
        if not inside:
            end = min(self.size, self._pos + max(BLOCK, want)) - 1
            self._block = self._fetch(f"bytes={self._pos}-{end}").content
            self._block_start = self._pos
        start = self._pos - self._block_start
        data = self._block[start : start + want]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


@guarded
class GhArtifactsStorage:
    def __init__(self, url: str, branch: str | None = None) -> None:
        self.url = url
        self.branch = branch  # None: the repository's default branch
        match = re.fullmatch(r"gh-artifacts://([^/]+)/([^/]+?)/?", url)
        if not match:
            raise BadInput(f"malformed GitHub Artifacts URL {url!r}: gh-artifacts://owner/repo")
        self.owner, self.repo = match.groups()
        self.api = github_env.api_url()
        token = github_env.api_token()
        if not token:
            raise BadInput(f"{url}: set GITHUB_TOKEN (a token that can read Actions artifacts)")
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        retry = Retry(
            total=5,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(max_retries=retry))
        self.http.mount("https://", HTTPAdapter(max_retries=retry))
        self._auth = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        self._artifacts: builtins.list[Artifact] | None = None
        self._zips: dict[str, zipfile.ZipFile] = {}

    # -- the API -------------------------------------------------------------------------
    def _api(self, method: str, url: str, **kwargs: Any) -> Any:
        import requests

        try:
            answer = self.http.request(method, url, headers=self._auth, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise StorageError(self.url, f"GitHub API unreachable: {exc}") from None
        if answer.status_code == 401:
            raise StorageError(self.url, "GitHub refused the token (401): check GITHUB_TOKEN")
        if answer.status_code == 404:
            raise StorageError(
                self.url,
                f"repository {self.owner}/{self.repo} not found, or the token cannot see it",
            )
        return answer

    def _repository(self) -> tuple[int, str]:
        """The repository's id and default branch."""
        answer = self._api("GET", f"{self.api}/repos/{self.owner}/{self.repo}")
        body = answer.json() if answer.status_code == 200 else {}
        if not isinstance(body.get("id"), int) or not isinstance(body.get("default_branch"), str):
            raise StorageError(self.url, f"reading the repository answered {answer.status_code}")
        return body["id"], body["default_branch"]

    def artifacts(self) -> builtins.list[Artifact]:
        """One artifact per set id, the live one before an expired one, then the newest;
        sets whose artifacts all expired are included (``why_missing`` names them). Only
        the repository's own runs on the chosen branch count."""
        if self._artifacts is None:
            repository_id, default_branch = self._repository()
            branch = self.branch or default_branch
            found: dict[str, Artifact] = {}
            url: str | None = f"{self.api}/repos/{self.owner}/{self.repo}/actions/artifacts"
            params: dict[str, Any] | None = {"per_page": 100}
            while url:
                answer = self._api("GET", url, params=params)
                if answer.status_code != 200:
                    raise StorageError(self.url, f"listing artifacts answered {answer.status_code}")
                for artifact in parse_artifacts(answer.json(), repository_id, branch):
                    known = found.get(artifact.set_id)
                    if known is None or _rank(known) < _rank(artifact):
                        found[artifact.set_id] = artifact
                link = _NEXT.search(answer.headers.get("Link", ""))
                url, params = (link.group(1), None) if link else (None, None)
            self._artifacts = sorted(found.values(), key=lambda a: a.set_id)
        return self._artifacts

    def zip_location(self, artifact: Artifact) -> str:
        answer = self._api("GET", artifact.download, allow_redirects=False)
        if answer.status_code == 410:
            raise StorageError(self.url, f"artifact {PREFIX}{artifact.set_id} has expired")
        if answer.status_code not in (301, 302, 303, 307) or "Location" not in answer.headers:
            raise StorageError(
                self.url,
                f"artifact {PREFIX}{artifact.set_id}: download answered {answer.status_code}",
            )
        return cast(str, answer.headers["Location"])

    def _zip(self, artifact: Artifact) -> zipfile.ZipFile:
        if artifact.expired:
            raise StorageError(
                self.url,
                f"artifact {PREFIX}{artifact.set_id} has expired: GitHub no longer keeps it "
                "(raise retention-days, or keep a second destination)",
            )
        if artifact.set_id not in self._zips:
            try:
                self._zips[artifact.set_id] = zipfile.ZipFile(
                    cast(BinaryIO, io.BufferedReader(_RangeFile(self, artifact), BLOCK))
                )
            except zipfile.BadZipFile as exc:
                raise StorageError(self.url, f"artifact {PREFIX}{artifact.set_id}: {exc}") from None
        return self._zips[artifact.set_id]

    def _members(self, artifact: Artifact) -> dict[str, zipfile.ZipInfo]:
        """The set's files by name; a zip that holds a ``<set-id>/`` folder is read through it."""
        members = {}
        for info in self._zip(artifact).infolist():
            if info.is_dir():
                continue
            name = info.filename
            if name.startswith(f"{artifact.set_id}/"):
                name = name[len(artifact.set_id) + 1 :]
            members[name] = info
        return members

    def _find(self, key: str) -> tuple[Artifact, str]:
        set_id, _, name = key.partition("/")
        for artifact in self.artifacts():
            if artifact.set_id == set_id:
                return artifact, name
        raise FileNotFoundError(key)

    # -- the protocol --------------------------------------------------------------------
    def put(self, key: str, stream: Readable) -> int:
        raise BadInput(
            "gh-artifacts:// is read-only here: store sets as artifacts with actions/upload "
            "(destination: github-artifacts) in a workflow"
        )

    def create(self, key: str, data: bytes) -> bool:
        return bool(self.put(key, io.BytesIO(data)))

    def open(self, key: str) -> BinaryIO:
        artifact, name = self._find(key)
        info = self._members(artifact).get(name)
        if info is None:
            raise FileNotFoundError(key)
        return cast(BinaryIO, self._zip(artifact).open(info))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for artifact in self.artifacts():
            folder = f"{artifact.set_id}/"
            if artifact.expired or not (folder.startswith(prefix) or prefix.startswith(folder)):
                continue
            # an unreadable artifact fails the listing: a set silently missing would let
            # --latest pick an older one
            for name, info in sorted(self._members(artifact).items()):
                key = f"{artifact.set_id}/{name}"
                if key.startswith(prefix):
                    yield ObjectInfo(key, info.file_size, artifact.created)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            artifact, name = self._find(key)
        except FileNotFoundError:
            return None
        info = None if artifact.expired else self._members(artifact).get(name)
        return None if info is None else ObjectInfo(key, info.file_size, artifact.created)

    def why_missing(self, set_id: str) -> str | None:
        for artifact in self.artifacts():
            if artifact.set_id == set_id and artifact.expired:
                return (
                    f"its artifact {PREFIX}{set_id} has expired (GitHub keeps artifacts for "
                    "retention-days): restore from another destination"
                )
        return None

    def expires(self, set_id: str) -> datetime | None:
        """When GitHub deletes the set's artifact (its retention days), if it says."""
        return next((a.expires for a in self.artifacts() if a.set_id == set_id), None)

    def delete(self, key: str) -> None:
        """Deleting any file of a set deletes its whole artifact."""
        try:
            artifact, _ = self._find(key)
        except FileNotFoundError:
            return
        answer = self._api(
            "DELETE", f"{self.api}/repos/{self.owner}/{self.repo}/actions/artifacts/{artifact.id}"
        )
        if answer.status_code == 403:
            raise StorageError(
                self.url, "the token may not delete artifacts: it needs actions: write"
            )
        if answer.status_code not in (204, 404):
            raise StorageError(self.url, f"deleting artifact answered {answer.status_code}")
        self._artifacts = [a for a in self.artifacts() if a.id != artifact.id]
        self._zips.pop(artifact.set_id, None)


@register("gh-artifacts")
def _open(url: str, settings: StorageSettings) -> GhArtifactsStorage:
    return GhArtifactsStorage(url, settings.artifacts_branch)
