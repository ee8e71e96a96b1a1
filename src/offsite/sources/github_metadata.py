"""What a GitHub repository holds besides git (``--include-metadata``): issues and their
comments, pull requests with reviews and review comments, releases (``--include-release-
assets``: and their files), labels and milestones, as GitHub's own JSON in a POSIX tar.

Read through PyGithub's requester: its ``GithubRetry`` waits out a ``Retry-After`` and the
reset of an exhausted rate limit, ``GITHUB_API_URL`` points it at GitHub Enterprise Server.
Lists are read page by page (``per_page=100``, ``Link: rel="next"``) and written as they
come, so a repository with many issues never sits in memory whole. The archive is staged
in the run's work folder by ``prepare``, beside other repositories' fetches.

Layout (``tar -x`` gives a folder a person or a script can read)::

    repository.json  labels.json  milestones.json  issues.json  issue-comments.json
    pulls.json  pull-reviews.json ({"<number>": [reviews]})  pull-review-comments.json
    releases.json  release-assets/<release id>/<asset name>
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from offsite.errors import SourceFailed
from offsite.sources.base import (
    Dump,
    Inspection,
    Part,
    Prepared,
    RestoreOptions,
    RunContext,
    Source,
    stage_folder,
    tar_dump,
)
from offsite.sources.files import FilesSource
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CHUNK

# file → (path under /repos/OWNER/REPO, query)
LISTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("labels.json", "labels", {}),
    ("milestones.json", "milestones", {"state": "all"}),
    ("issues.json", "issues", {"state": "all", "direction": "asc"}),
    ("issue-comments.json", "issues/comments", {"direction": "asc"}),
    ("pulls.json", "pulls", {"state": "all", "direction": "asc"}),
    ("pull-review-comments.json", "pulls/comments", {"direction": "asc"}),
    ("releases.json", "releases", {}),
)
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_QUERY = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")


def next_page(headers: dict[str, Any]) -> str | None:
    """The ``rel="next"`` address of GitHub's ``Link`` header, or None on the last page."""
    link = next((v for k, v in headers.items() if k.lower() == "link"), None)
    m = _NEXT.search(str(link or ""))
    return m.group(1) if m else None


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).lstrip(".")
    return cleaned or "asset"


class _Export:
    """One repository's export into ``folder``, counting what it wrote and asked."""

    def __init__(self, requester: Any, repo: str, folder: Path, fail: Any) -> None:
        self.requester = requester
        self.base = f"/repos/{repo}"
        self.folder = folder
        self.fail = fail
        self.requests = 0

    def get(self, url: str, params: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
        from github import GithubException

        from offsite.github.repos import reason

        self.requests += 1
        try:
            headers, data = self.requester.requestJsonAndCheck("GET", url, parameters=params)
        except GithubException as exc:
            if exc.status == 410:  # the feature is switched off (issues disabled): nothing
                return {}, []
            raise self.fail(f"{url.split('?')[0]}: {reason(exc)}") from None
        except OSError as exc:
            raise self.fail(reason(exc)) from None
        return headers, data

    def pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        url: str | None = f"{self.base}/{path}"
        query: dict[str, Any] | None = {**params, "per_page": 100}
        while url:
            headers, data = self.get(url, query)
            if not isinstance(data, list):
                raise self.fail(f"{path}: GitHub answered {type(data).__name__}, not a list")
            yield from data
            url, query = next_page(headers), None

    def write_list(self, name: str, items: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write ``items`` as a JSON array, one at a time; return each item's ``number``,
        ``id`` and ``assets`` (what later requests need), not the items."""
        kept: list[dict[str, Any]] = []
        with open(self.folder / name, "w", encoding="utf-8") as out:
            out.write("[")
            for i, item in enumerate(items):
                out.write(",\n" if i else "\n")
                json.dump(item, out, ensure_ascii=False, sort_keys=True)
                kept.append({k: item[k] for k in ("number", "id", "assets") if k in item})
            out.write("\n]\n")
        return kept

    def run(self, assets: bool) -> dict[str, int]:
        _, repository = self.get(self.base, None)
        (self.folder / "repository.json").write_text(json.dumps(repository, sort_keys=True))
        stats: dict[str, int] = {}
        kept: dict[str, list[dict[str, Any]]] = {}
        for name, path, params in LISTS:
            kept[name] = self.write_list(name, self.pages(path, params))
            stats[name[: -len(".json")].replace("-", "_")] = len(kept[name])
        reviews = 0
        with open(self.folder / "pull-reviews.json", "w", encoding="utf-8") as out:
            out.write("{")
            for i, pull in enumerate(kept["pulls.json"]):
                listed = list(self.pages(f"pulls/{pull['number']}/reviews", {}))
                reviews += len(listed)
                out.write(",\n" if i else "\n")
                out.write(f'"{pull["number"]}": {json.dumps(listed, sort_keys=True)}')
            out.write("\n}\n")
        stats["pull_reviews"] = reviews
        if assets:
            stats["release_assets"], stats["release_asset_bytes"] = self.assets(
                kept["releases.json"]
            )
        stats["requests"] = self.requests
        return stats

    def assets(self, releases: list[dict[str, Any]]) -> tuple[int, int]:
        """Download every release asset (through the API's asset address, which redirects
        to storage); check its size and, where GitHub gives one, its SHA-256."""
        import requests
        from github import GithubException

        from offsite.github.repos import reason

        count = total = 0
        for release in releases:
            for asset in release.get("assets") or []:
                folder = self.folder / "release-assets" / str(release["id"])
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / _safe(str(asset["name"]))
                digest = hashlib.sha256()
                size = 0
                self.requests += 1
                try:
                    _, _, chunks = self.requester.getStream(asset["url"], chunk_size=CHUNK)
                    with open(path, "wb") as out:
                        for chunk in chunks:
                            digest.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
                except GithubException as exc:  # a 403 goes through PyGithub's retry first
                    raise self.fail(f"release asset {asset['name']}: {reason(exc)}") from None
                except (requests.RequestException, OSError) as exc:
                    # the storage address an asset redirects to is signed in its query
                    said = _QUERY.sub(r"\1", str(exc))
                    raise self.fail(f"release asset {asset['name']}: {said}") from None
                if size != asset.get("size", size):
                    raise self.fail(
                        f"release asset {asset['name']}: {size} bytes, GitHub lists {asset['size']}"
                    )
                stated = str(asset.get("digest") or "")
                if stated.startswith("sha256:") and stated[7:] != digest.hexdigest():
                    raise self.fail(f"release asset {asset['name']}: its SHA-256 does not match")
                count, total = count + 1, total + size
        return count, total


def _tar(
    pipeline: Pipeline, name: str, folder: Path, stats: dict[str, Any]
) -> AbstractContextManager[Dump]:
    def write_tar(dst: BinaryIO) -> None:
        import tarfile

        with tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(folder.rglob("*")):
                info = tar.gettarinfo(str(path), path.relative_to(folder).as_posix())
                info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
                if path.is_file():
                    with open(path, "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)

    return tar_dump(pipeline, name, write_tar, lambda: dict(stats))


class GitHubMetadataSource(Source):
    kind = "github-metadata"
    suffix = ".tar"
    target_suffix = ""  # a folder of JSON

    def __init__(self, name: str, url: str, repo: str, assets: bool = False) -> None:
        super().__init__(name, url)
        self.repo = repo  # owner/name
        self.assets = assets

    @classmethod
    def of(cls, parent: Source, repo: str, assets: bool) -> GitHubMetadataSource:
        return cls(f"{parent.name}-metadata", f"github://{repo}", repo, assets)

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def prepare(self, context: RunContext) -> Prepared:
        """Export the repository's JSON (and release assets) into a folder of the work
        folder, beside other repositories' fetches; the dump then tars that folder."""
        from offsite.github.repos import client

        folder = stage_folder(context.workdir, self.name)
        try:
            stats = _Export(client().requester, self.repo, folder, self._fail).run(self.assets)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        part = Part(self.name, GitHubMetadataSource, lambda p: _tar(p, self.name, folder, stats))
        return Prepared(parts=(part,), made=(folder,))

    def dump(self, pipeline: Pipeline, context: RunContext) -> AbstractContextManager[Dump]:
        return self.dump_prepared(pipeline, context)

    # -- restoring: a folder of JSON (GitHub has no import for most of it) ---------------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return FilesSource.restorer(target, options)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return FilesSource.hint_tail(name)

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        folder = Path(cls.local_target(target)).expanduser()
        problems = []
        for name, _, _ in LISTS:
            key = name[: -len(".json")].replace("-", "_")
            try:
                items = json.loads((folder / name).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                problems.append(f"{name}: {exc}")
                continue
            if key in stats and len(items) != stats[key]:
                problems.append(f"{name}: {len(items)} items, the backup had {stats[key]}")
        return Inspection(problems=problems, checks=["metadata JSON", "item counts"])
