"""offsite list DEST"""

from __future__ import annotations

import click

from offsite.cli.options import emit_json, json_option, read_storage_options
from offsite.cli.reading import destination_options
from offsite.config import Config
from offsite.sets.manifest import iso
from offsite.sets.stored import scan
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings
from offsite.table import human_size, render


@click.command("list", short_help="List the backup sets in a destination.")
@destination_options
@read_storage_options
@json_option
def command(dest: str, config: Config | None, as_json: bool, storage: StorageSettings) -> int:
    """List the complete backup sets in DEST, oldest first.

    A set whose manifest offsite refuses (not valid, or a newer format) is listed as
    INVALID with the reason; a set dated more than an hour ahead as FUTURE: neither is
    ever restored as the latest. TYPE says whether a set is full or a diff, and of which
    set.
    """
    found = scan(open_storage(dest, storage))
    future = {s.id for s in found.future()}
    if as_json:
        emit_json(
            {
                "sets": [
                    {
                        **s.manifest.data(),
                        "size": s.manifest.size,
                        "prefix": s.prefix,
                        "future": s.id in future,
                        "delta": s.manifest.delta,
                    }
                    for s in found.sets
                ],
                "invalid": [{"prefix": i.prefix, "reason": i.reason} for i in found.invalid],
                "incomplete": [
                    {"prefix": i.prefix, "newest": iso(i.newest), "size": i.size}
                    for i in found.incomplete
                ],
            }
        )
        return 0
    rows = [
        (
            s.id + (" FUTURE" if s.id in future else ""),
            s.manifest.created_at,
            f"diff of {s.manifest.base.id}" if s.manifest.base else "full",
            ", ".join(e.name for e in s.manifest.entries),
            human_size(s.manifest.size),
            " ".join(f"{k}={v}" for k, v in s.manifest.labels.items()),
        )
        for s in found.sets
    ]
    rows += [(f"{i.prefix.rstrip('/')} INVALID", "", "", i.reason, "", "") for i in found.invalid]
    if rows:
        titles = ("id", "created", "type", "entries", "size", "labels")
        click.echo(render(titles, rows, right=(4,)))
    else:
        click.echo(f"no complete backup set in {dest}")
    if found.incomplete:
        n = len(found.incomplete)
        click.echo(f"({n} incomplete set{'s' if n > 1 else ''} without a manifest not listed)")
    return 0
