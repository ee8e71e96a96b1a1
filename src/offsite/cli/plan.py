"""offsite plan --config offsite.yml --shards N"""

from __future__ import annotations

import json

import click

from offsite.cli.options import image_options, option, repo_options
from offsite.config import load
from offsite.errors import BadInput
from offsite.github import gha
from offsite.github.repos import RepoChoice, owner_of
from offsite.oci.packages import ImageChoice
from offsite.oci.reference import owner_of as image_owner_of
from offsite.selection import Request, units
from offsite.shards import matrix


@click.command("plan", short_help="Print a job matrix that shards a backup across jobs.")
@click.argument("owner", required=False, metavar="[github://OWNER | oci://ghcr.io/OWNER]")
@option("--config", "config_path", metavar="FILE", help="A configuration file (offsite.yml).")
@option("--only", multiple=True, metavar="GROUP", help="Plan only this group's sources.")
@repo_options
@image_options
@option(
    "--shards",
    type=click.IntRange(min=1),
    help="Number of jobs; default: one job per source.",
)
def command(
    owner: str | None,
    config_path: str | None,
    only: tuple[str, ...],
    choice: RepoChoice,
    images: ImageChoice,
    shards: int | None,
) -> int:
    """Print a JSON job matrix for `strategy.matrix: ${{ fromJSON(...) }}`.

    Each job is {"shard": "I/N", "only": "name,name", "names": [...]}: run `offsite
    backup --config FILE --shard I/N` (or `offsite backup github://OWNER --shard I/N`,
    or oci://ghcr.io/OWNER, with the same repository and image options) in it. The shares
    are stable (the same names always land in the same share), disjoint and complete.
    Inside Actions the matrix is also the step output `matrix`.
    """
    if owner and config_path:
        raise BadInput("plan takes github://OWNER or --config FILE, not both")
    if owner and not owner_of(owner) and not image_owner_of(owner):
        raise BadInput(
            f"plan takes github://OWNER or oci://ghcr.io/OWNER (a user or organisation), "
            f"not {owner!r}"
        )
    if not owner and not config_path:
        raise BadInput("plan needs github://OWNER or --config FILE")
    config = load(config_path) if config_path else None
    request = Request(
        urls=(owner,) if owner else (), config=config, only=only if config else (),
        choice=choice, images=images,
    )  # fmt: skip
    names = units(request).names
    where = owner or config_path
    if not names:
        raise BadInput(f"{where}: nothing to plan")
    result = matrix(names, shards or len(names))
    gha.set_output("matrix", json.dumps(result, separators=(",", ":")))
    click.echo(json.dumps(result, separators=(",", ":")))
    return 0
