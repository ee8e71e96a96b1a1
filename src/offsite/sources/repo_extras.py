"""What a repository's backup holds besides its bundle: its LFS objects, its wiki, its
GitHub metadata. Each is an entry of its own, right after the repository's."""

from __future__ import annotations

from dataclasses import dataclass

from offsite.errors import BadInput
from offsite.github.repos import Repository
from offsite.sources.base import Source
from offsite.sources.git import GitSource
from offsite.sources.git_remote import github_name
from offsite.sources.github_metadata import GitHubMetadataSource


@dataclass(frozen=True)
class RepoExtras:
    lfs: bool = False
    wiki: bool = False
    metadata: bool = False
    release_assets: bool = False

    def __bool__(self) -> bool:
        return self.lfs or self.wiki or self.metadata or self.release_assets


def with_extras(
    sources: tuple[Source, ...], extras: RepoExtras, listed: dict[str, Repository]
) -> tuple[Source, ...]:
    """``sources`` with each repository's extra sources after it (its wiki, its metadata;
    its LFS objects are the repository source's own second entry, ``SourceOptions.lfs``).
    ``listed``: what the GitHub API said of the repositories a ``github://OWNER`` expanded
    to, by source URL."""
    if not extras:
        return sources
    repos = [s for s in sources if isinstance(s, GitSource)]
    if not repos:
        raise BadInput("--include-lfs/-wiki/-metadata/-release-assets need a repository source")
    out: list[Source] = []
    for source in sources:
        out.append(source)
        if not isinstance(source, GitSource):
            continue
        known = listed.get(source.url)
        if extras.wiki and (known is None or known.has_wiki):
            out.append(source.wiki())
        if extras.metadata or extras.release_assets:
            name = known.full_name if known else github_name(source.url)
            if name is None:
                raise BadInput(
                    f"{source.display}: --include-metadata reads GitHub's API: "
                    "name the repository github://OWNER/REPO"
                )
            out.append(GitHubMetadataSource.of(source, name, extras.release_assets))
    return tuple(out)
