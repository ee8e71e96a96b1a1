"""offsite requirements SOURCE..."""

from __future__ import annotations

import os
import shutil

import click

from offsite.cli.options import Lines, option
from offsite.config import load
from offsite.errors import BadInput
from offsite.github_repos import owner_of
from offsite.sources import Source, from_url
from offsite.sources.git_lfs import lfs_available


def _tools() -> list[str]:
    return [] if shutil.which("gpg") else ["gnupg"]


@click.command("requirements")
@click.argument("urls", nargs=-1, metavar="[SOURCE]...", envvar="OFFSITE_SOURCE", type=Lines())
@option("--config", "config_path", metavar="FILE", help="The sources of this configuration file.")
@option("--only", multiple=True, metavar="GROUP", help="With --config: only this group's sources.")
@option(
    "--include-lfs", is_flag=True, help="Repositories will be backed up with their LFS objects."
)
def command(
    urls: tuple[str, ...], config_path: str | None, only: tuple[str, ...], include_lfs: bool
) -> int:
    """Print the Debian packages this machine lacks to back up SOURCE..., one per line.

    For PostgreSQL it asks the server its major version and names the client package
    at least as new (postgresql-client-16). The offsite actions install what it prints
    on Ubuntu runners; nothing printed means nothing is missing.
    """
    if only and not config_path:
        raise BadInput("--only selects sources of a --config file")
    sources: list[Source] = [from_url(url) for url in urls if not owner_of(url)]
    if config_path:
        config = load(config_path).expanded(os.environ, only)
        sources += [from_url(s.url, s.name) for s in config.sources if s.url]
    packages = _tools()
    if any(owner_of(url) for url in urls) and not shutil.which("git"):
        packages.append("git")  # a github://OWNER's repositories need git, and nothing else
    if include_lfs and not lfs_available():
        packages.append("git-lfs")
    for source in sources:
        packages += [p for p in source.missing_packages() if p not in packages]
    for package in packages:
        click.echo(package)
    return 0
