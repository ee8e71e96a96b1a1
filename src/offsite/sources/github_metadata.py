"""What a GitHub repository holds besides git (``--include-metadata``): issues and their
comments, pull requests with reviews and review comments, releases (``--include-release-
assets``: and their files), labels and milestones, the repository's settings, as GitHub's
own JSON, one file per item, in a POSIX tar (``offsite.github.metadata`` reads them and
says the layout).

Every entry of the kind is of a format-3 set (per-item metadata, SPEC §10); sets of format
2 (one JSON array per list) stay readable. An incremental entry keeps its ``index.json`` as
a companion too; a diff against it holds the items that changed, its complete
``index.json``, and a deleted list of what the index no longer names, restored as a folder
diff is (base, deletions, diff). The export is staged in the run's work folder by
``prepare``, beside other repositories' fetches.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from offsite.errors import RestoreFailed, SourceFailed
from offsite.github.metadata import Export
from offsite.github.metadata_index import INDEX, LISTINGS, Index, index_problems, settle
from offsite.sources.base import (
    Dump,
    FullNeeded,
    Inspection,
    Part,
    Prepared,
    RestoreOptions,
    RunContext,
    Source,
    SourceOptions,
    stage_folder,
    tar_dump,
)
from offsite.sources.files import FilesSource, FolderRestorer
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import Readable

# format 2's arrays (a set made before per-item metadata): file → its count in the stats
ARRAYS = {
    "labels.json": "labels", "milestones.json": "milestones", "issues.json": "issues",
    "issue-comments.json": "issue_comments", "pulls.json": "pulls",
    "pull-review-comments.json": "pull_review_comments", "releases.json": "releases",
}  # fmt: skip


def _tar(
    pipeline: Pipeline, name: str, folder: Path, stats: dict[str, Any], delta: str,
    companions: dict[str, bytes],
) -> AbstractContextManager[Dump]:  # fmt: skip
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

    if delta == "unchanged":
        return contextlib.nullcontext(Dump(stats=lambda: dict(stats), delta=delta))
    return tar_dump(pipeline, name, write_tar, lambda: dict(stats), delta,
                    lambda: dict(companions))  # fmt: skip


class GitHubMetadataSource(Source):
    kind = "github-metadata"
    suffix = ".tar"
    target_suffix = ""  # a folder of JSON
    diffs = True

    def __init__(
        self, name: str, url: str, repo: str, assets: bool = False,
        options: SourceOptions | None = None,
    ) -> None:  # fmt: skip
        super().__init__(name, url, options)
        self.repo = repo  # owner/name
        self.assets = assets

    @classmethod
    def of(cls, parent: Source, repo: str, assets: bool) -> GitHubMetadataSource:
        """The metadata of ``parent``'s repository: incremental where ``parent`` is."""
        options = SourceOptions(incremental=parent.options.incremental)
        return cls(f"{parent.name}-metadata", f"github://{repo}", repo, assets, options)

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def _base(self, context: RunContext) -> Index | None:
        baseline = context.baseline
        if not self.options.incremental or baseline is None:
            return None
        return baseline.load(self.name, Index.loads)

    def prepare(self, context: RunContext) -> Prepared:
        """Export the repository's JSON (and release assets) into a folder of the work
        folder, beside other repositories' fetches; the dump then tars that folder. An
        incremental run against a base exports what changed since it."""
        from offsite.github.repos import client

        folder = stage_folder(context.workdir, self.name)
        base = self._base(context)
        try:
            export = Export(client().requester, self.repo, folder, self._fail, base)
            stats = export.run(self.assets)
            delta, companions = self._delta(export, base, context)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        part = Part(self.name, GitHubMetadataSource,
                    lambda p: _tar(p, self.name, folder, stats, delta, companions))  # fmt: skip
        return Prepared(parts=(part,), made=(folder,))

    def _delta(
        self, export: Export, base: Index | None, context: RunContext
    ) -> tuple[str, dict[str, bytes]]:
        """The entry's delta and companions: a full one keeps its index (incremental), a
        diff lists what went away, an entry with nothing new is unchanged."""
        if base is None:
            indexed = {"index": export.index.to_bytes()} if self.options.incremental else {}
            return "full", indexed
        if export.unchanged():
            return "unchanged", {}
        baseline = context.baseline
        assert baseline is not None
        limit = baseline.full_when_over * baseline.raw_sizes[self.name]
        if export.written > limit:
            raise FullNeeded(f"the diff of {self.name} would hold {export.written} bytes, "
                             f"over {baseline.full_when_over:.0%} of its base entry's "
                             f"{baseline.raw_sizes[self.name]} (--full-when-over)")  # fmt: skip
        gone = export.deleted()
        return "diff", ({"deleted": "\0".join(gone).encode()} if gone else {})

    def dump(self, pipeline: Pipeline, context: RunContext) -> AbstractContextManager[Dump]:
        return self.dump_prepared(pipeline, context)

    # -- restoring: a folder of JSON (``--into github://`` is SPEC §11's, not this) -------
    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return MetadataRestorer(Path(cls.local_target(target)).expanduser(), options.force)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return FilesSource.hint_tail(name)

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        """Each item the index names is there and hashes as it says (format 2: each array
        holds as many items as the backup counted)."""
        folder = Path(cls.local_target(target)).expanduser()
        if not (folder / INDEX).exists():
            return _inspect_arrays(folder, stats)
        try:
            index = Index.loads((folder / INDEX).read_bytes())
        except (OSError, ValueError) as exc:
            return Inspection(problems=[f"{INDEX}: {exc}"], checks=["metadata index"])
        problems = index_problems(folder, index)
        for listing in LISTINGS:
            count = len(index.items.get(listing.kind, {}))
            if listing.stat in stats and count != stats[listing.stat]:
                problems.append(f"{listing.kind}: {count} items, the backup had "
                                f"{stats[listing.stat]}")  # fmt: skip
        return Inspection(problems=problems[:20], checks=["metadata index", "item SHA-256",
                                                          "item counts"])  # fmt: skip


class MetadataRestorer(FolderRestorer):
    """A folder of JSON; a diff over its base as SPEC §10 says: the diff's tar over the
    base's, then each item its ``index.json`` does not list removed, and every item it
    lists checked against its SHA-256 (the deleted list is for standard tools: the index
    decides here)."""

    def overlay(self, stream: Readable | None, companions: dict[str, bytes]) -> None:
        super().overlay(stream, {})
        assert self._staged is not None
        problems = settle(self._staged)
        if problems:
            raise RestoreFailed(self.target.name, f"the diff does not make what its index "
                                                  f"lists: {problems[0]}")  # fmt: skip


def _inspect_arrays(folder: Path, stats: dict[str, Any]) -> Inspection:
    problems = []
    for name, key in ARRAYS.items():
        try:
            items = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if key in stats and len(items) != stats[key]:
            problems.append(f"{name}: {len(items)} items, the backup had {stats[key]}")
    return Inspection(problems=problems, checks=["metadata JSON", "item counts"])
