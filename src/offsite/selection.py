"""Which sources a run covers: the one path ``backup``, ``requirements`` and ``plan`` share.

A run names its sources four ways: SOURCE URLs, ``--name NAME=SOURCE``, ``--exec
NAME=COMMAND`` and a ``--config`` file's sources (``--only`` picks groups or names);
``github://OWNER`` stands for the owner's repositories, ``oci://ghcr.io/OWNER`` (or
``github://OWNER`` with ``--include-images``) for its container images. ``units`` lists
the named units a plan deals into shares (the file's sources, the owner's repositories and
images, no secrets needed); ``select`` takes the share ``--shard`` asks for, expands
``${VAR}`` in just those, and builds every source once, complete, with its
``SourceOptions``: what a source is never depends on the verb that asked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from offsite.config import Config, SourceSpec
from offsite.errors import BadInput
from offsite.github.repos import RepoChoice, Repository, owner_of, repositories
from offsite.oci import packages
from offsite.oci.reference import owner_of as image_owner_of
from offsite.shards import share
from offsite.sources import Source, SourceOptions, from_exec, from_url
from offsite.sources.postgres import PgGlobalsSource, PostgresSource
from offsite.sources.repo_extras import RepoExtras, with_extras


@dataclass(frozen=True)
class Request:
    """What a command line (and its ``--config`` file) asked a run to cover."""

    urls: tuple[str, ...] = ()  # SOURCE arguments, github://OWNER among them
    names: tuple[tuple[str, str], ...] = ()  # --name NAME=SOURCE
    execs: tuple[tuple[str, str], ...] = ()  # --exec NAME=COMMAND
    excludes: tuple[str, ...] = ()  # --exclude, for every files source
    pg_globals: bool = False  # --pg-globals: every database's roles too
    physical: bool = False  # --physical: PostgreSQL sources as base backups
    with_wal: bool = False  # --with-wal: base backups that hold the WAL they need
    platform: str | None = None  # --platform: container images' one platform
    config: Config | None = None  # --config, not yet expanded
    only: tuple[str, ...] = ()  # --only GROUP or NAME of the file
    shard: tuple[int, int] | None = None  # --shard I/N of the units
    choice: RepoChoice = field(default_factory=RepoChoice)  # which of an owner's repositories
    images: packages.ImageChoice = field(default_factory=packages.ImageChoice)  # and images
    extras: RepoExtras = field(default_factory=RepoExtras)  # LFS, wiki, metadata
    mirror_cache: Path | None = None  # --mirror-cache
    incremental: bool = False  # --incremental: files sources keep an index and make diffs

    @property
    def owners(self) -> tuple[str, ...]:
        return tuple(login for url in self.urls if (login := owner_of(url)))

    @property
    def image_owners(self) -> tuple[str, ...]:
        named = tuple(login for url in self.urls if (login := image_owner_of(url)))
        return named + (self.owners if self.images.include else ())

    @property
    def plain(self) -> tuple[str, ...]:
        """The SOURCE arguments that are one source each (not a whole owner)."""
        return tuple(u for u in self.urls if not owner_of(u) and not image_owner_of(u))


@dataclass(frozen=True)
class Units:
    """The named units a run can be sharded over, in the order they were named."""

    specs: tuple[SourceSpec, ...]
    listed: dict[str, Repository]  # what GitHub said of each owner's repository, by URL

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def units(request: Request) -> Units:
    """The file's sources ``--only`` picks, then each ``github://OWNER``'s repositories."""
    if request.only and request.config is None:
        raise BadInput("--only selects sources of a --config file")
    if request.shard and not (request.config or request.owners or request.image_owners):
        raise BadInput(
            "--shard takes a share of a --config file's sources, a github://OWNER or an "
            "oci://ghcr.io/OWNER"
        )
    specs = request.config.select(request.only) if request.config else ()
    listed: dict[str, Repository] = {}
    for owner in request.owners:
        for repo in repositories(owner, request.choice):
            url = f"git+{repo.clone_url}"
            listed[url] = repo
            specs += (SourceSpec(repo.name, url=url),)
    for owner in request.image_owners:
        specs += tuple(
            SourceSpec(i.name, url=i.url) for i in packages.images(owner, request.images)
        )
    return Units(specs, listed)


_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")


def check_platform(platform: str | None) -> str | None:
    if platform is not None and not _PLATFORM.fullmatch(platform):
        raise BadInput(f"--platform {platform!r}: OS/ARCH or OS/ARCH/VARIANT, e.g. linux/arm64")
    return platform


def select(request: Request, env: Mapping[str, str] | None = None) -> tuple[Source, ...]:
    """Every source the run covers, each built once, in the order they were named."""
    env = os.environ if env is None else env
    found = units(request)
    specs = found.specs
    if request.shard:
        picked = set(share(found.names, *request.shard))
        specs = tuple(s for s in specs if s.name in picked)
    if request.config is not None:  # ${VAR} only in the sources this run dumps
        from_file = {s.name for s in request.config.sources}
        wanted = tuple(s.name for s in specs if s.name in from_file)
        if wanted:
            expanded = {s.name: s for s in request.config.expanded(env, wanted).sources}
            specs = tuple(expanded.get(s.name, s) for s in specs)
    if request.with_wal and not (request.physical or any(s.physical for s in specs)):
        raise BadInput("--with-wal goes with --physical")
    options = SourceOptions(
        excludes=request.excludes,
        mirror_cache=request.mirror_cache,
        lfs=request.extras.lfs,
        physical=request.physical,
        wal_included=request.with_wal,
        platform=check_platform(request.platform),
        incremental=request.incremental,
    )
    sources = [from_url(url, None, options) for url in request.plain]
    sources += [from_url(url, name, options) for name, url in request.names]
    sources += [from_exec(name, command) for name, command in request.execs]
    for spec in specs:
        if spec.url:
            own = replace(
                options,
                excludes=options.excludes + spec.exclude,
                physical=options.physical or spec.physical,
                platform=check_platform(spec.platform) or options.platform,
                incremental=options.incremental or spec.incremental,
            )
            source = from_url(spec.url, spec.name, own)
        else:
            source = from_exec(spec.name, spec.command or "")
        sources.append(source)
        if spec.pg_globals:
            if not isinstance(source, PostgresSource):
                raise BadInput(f"source {spec.name!r}: pg-globals needs a postgresql:// url")
            sources.append(PgGlobalsSource.of(source))
    if request.pg_globals:
        databases = [s for s in sources if isinstance(s, PostgresSource)]
        if not databases:
            raise BadInput("--pg-globals needs a postgresql:// source")
        sources += [PgGlobalsSource.of(s) for s in databases]
    return with_extras(tuple(sources), request.extras, found.listed)
