"""offsite restore DEST --into TARGET"""

from __future__ import annotations

from dataclasses import asdict

import click

from offsite.cli.options import (
    emit_json,
    json_option,
    option,
    storage_options,
    trust_options,
)
from offsite.errors import BadInput
from offsite.progress import Progress
from offsite.restore import RestoreRequest, run_restore
from offsite.sources import RestoreOptions
from offsite.storage.settings import StorageSettings
from offsite.table import human_duration, human_size, render
from offsite.trust import TrustConfig


@click.command("restore")
@click.argument("dest")
@option("--id", "set_id", metavar="ID", help="The set to restore (default: the newest).")
@option("--latest", is_flag=True, help="Restore the newest complete set (the default).")
@option("--entry", metavar="NAME", help="Restore only this entry.")
@option("--into", required=True, metavar="TARGET", help="Where to restore: a path or URL.")
@option("--force", is_flag=True, help="Restore over a non-empty target.")
@option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="PostgreSQL: restore with N parallel workers (stages the decoded dump in TMPDIR).",
)
@option("--no-owner", is_flag=True, help="PostgreSQL: do not restore object owners.")
@trust_options
@storage_options
@json_option
def command(
    dest: str,
    set_id: str | None,
    latest: bool,
    entry: str | None,
    into: str,
    force: bool,
    jobs: int,
    no_owner: bool,
    trust: TrustConfig,
    as_json: bool,
    storage: StorageSettings,
) -> int:
    """Restore a backup set (or one entry of it) from DEST into TARGET.

    DEST is a destination or a folder fetched with `gh run download`. TARGET is a SQLite
    path for a sqlite entry, a folder for files, a file for a command's output; for a set
    of several entries without --entry, a folder that gets one item per entry.
    """
    if set_id and latest:
        raise BadInput("choose one of --id and --latest")
    request = RestoreRequest(
        source=dest,
        into=into,
        set_id=set_id,
        entry=entry,
        options=RestoreOptions(force=force, jobs=jobs, no_owner=no_owner),
        trust=trust,
        storage=storage,
    )
    done = run_restore(request, Progress(enabled=not as_json))
    if as_json:
        emit_json({"restored": [asdict(r) for r in done]})
        return 0
    rows = [
        (r.entry, r.kind, human_size(r.size), human_duration(r.seconds), r.location) for r in done
    ]
    click.echo(f"restored set {done[0].set_id}")
    click.echo(render(("entry", "kind", "size", "time", "restored to"), rows, right=(2, 3)))
    return 0
