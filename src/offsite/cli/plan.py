"""offsite plan --config offsite.yml --shards N"""

from __future__ import annotations

import json

import click

from offsite import gha
from offsite.cli.options import option
from offsite.config import load
from offsite.errors import BadInput
from offsite.shards import matrix


@click.command("plan")
@click.argument("owner", required=False, metavar="[github://OWNER]")
@option("--config", "config_path", metavar="FILE", help="A configuration file (offsite.yml).")
@option("--only", multiple=True, metavar="GROUP", help="Plan only this group's sources.")
@option(
    "--shards",
    type=click.IntRange(min=1),
    help="Number of jobs; default: one job per source.",
)
def command(
    owner: str | None, config_path: str | None, only: tuple[str, ...], shards: int | None
) -> int:
    """Print a JSON job matrix for `strategy.matrix: ${{ fromJSON(...) }}`.

    Each job is {"shard": "I/N", "only": "name,name", "names": [...]}: run `offsite
    backup --config FILE --shard I/N` in it. The shares are stable (the same names always
    land in the same share), disjoint and complete. Inside Actions the matrix is also the
    step output `matrix`.
    """
    if owner:
        raise BadInput(
            f"plan {owner}: planning over a GitHub owner's repositories is not built yet; "
            "use --config"
        )
    if not config_path:
        raise BadInput("plan needs --config FILE")
    config = load(config_path)
    names = [s.name for s in config.select(only)]
    if not names:
        raise BadInput(f"{config_path}: no sources to plan")
    result = matrix(names, shards or len(names))
    gha.set_output("matrix", json.dumps(result, separators=(",", ":")))
    click.echo(json.dumps(result, separators=(",", ":")))
    return 0
