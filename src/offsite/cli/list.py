"""offsite list DEST"""

from __future__ import annotations

from dataclasses import asdict

import click

from offsite.cli.options import emit_json, json_option, storage_options
from offsite.manifest import iso
from offsite.sets import scan
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings
from offsite.table import human_size, render


@click.command("list")
@click.argument("dest")
@storage_options
@json_option
def command(dest: str, as_json: bool, storage: StorageSettings) -> int:
    """List the complete backup sets in DEST, oldest first."""
    found = scan(open_storage(dest, storage))
    for problem in found.problems:
        click.echo(f"offsite: warning: {problem}", err=True)
    if as_json:
        emit_json(
            {
                "sets": [
                    {**asdict(s.manifest), "size": s.manifest.size, "prefix": s.prefix}
                    for s in found.sets
                ],
                "incomplete": [
                    {"prefix": i.prefix, "newest": iso(i.newest), "size": i.size}
                    for i in found.incomplete
                ],
            }
        )
        return 0
    rows = [
        (
            s.id,
            s.manifest.created_at,
            ", ".join(e.name for e in s.manifest.entries),
            human_size(s.manifest.size),
            " ".join(f"{k}={v}" for k, v in s.manifest.labels.items()),
        )
        for s in found.sets
    ]
    if rows:
        click.echo(render(("id", "created", "entries", "size", "labels"), rows, right=(3,)))
    else:
        click.echo(f"no complete backup set in {dest}")
    if found.incomplete:
        n = len(found.incomplete)
        click.echo(f"({n} incomplete set{'s' if n > 1 else ''} without a manifest not listed)")
    return 0
