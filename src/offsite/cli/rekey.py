"""offsite rekey DEST (--id ID | --all) [--wal] --new-passphrase-file FILE"""

from __future__ import annotations

import click

from offsite.cli.options import (
    emit_json,
    json_option,
    option,
    read_passphrase_file,
    storage_options,
)
from offsite.cli.reading import reading_options
from offsite.config import Config
from offsite.errors import BadInput, NotAuthenticated
from offsite.github import gha
from offsite.rekey import rekey_archives, rekey_sets
from offsite.sets.trust import TrustConfig, Verifier
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings


@click.command("rekey", short_help="Re-wrap sets' key.gpg to a new passphrase (key rotation).")
@reading_options
@option("--id", "set_id", metavar="ID", help="Re-wrap this set's key.")
@option("--all", "every", is_flag=True, help="Re-wrap the key of every set that proves itself.")
@option("--wal", is_flag=True, help="Also re-wrap the key of every WAL archive in DEST (wal/).")
@option(
    "--new-passphrase-file",
    required=True,
    metavar="FILE",
    help="The new passphrase, the file's first line (never on the command line).",
)
@storage_options
@json_option
def command(
    dest: str,
    config: Config | None,
    set_id: str | None,
    every: bool,
    wal: bool,
    new_passphrase_file: str,
    trust: TrustConfig,
    as_json: bool,
    storage: StorageSettings,
) -> int:
    """Re-wrap the data key in each chosen set's key.gpg to a new passphrase: no
    entry is rewritten, and the set's drill records are sealed again to match. With --wal,
    each WAL archive's key.gpg too: then give the database host's archive_command the new
    passphrase (its key cache is named after the old key.gpg).

    The current passphrase (OFFSITE_PASSPHRASE or --passphrase-file) opens the keys; a set
    that does not prove itself with it is left alone and named.
    """
    if set_id is not None and every:
        raise BadInput("choose one of --id and --all")
    if set_id is None and not every and not wal:
        raise BadInput("choose what to re-wrap: --id ID or --all (and/or --wal, the archives)")
    if not trust.passphrase:
        raise BadInput("rekey needs the current passphrase (OFFSITE_PASSPHRASE or "
                       "--passphrase-file) to open the keys it re-wraps")  # fmt: skip
    new = read_passphrase_file(new_passphrase_file)
    if new == trust.passphrase:
        raise BadInput("the new passphrase is the current one: nothing to rotate")
    if "\n" in new or "\r" in new:
        raise BadInput("the new passphrase contains a line break; gpg cannot take it")
    opened = open_storage(dest, storage)
    sets, records, archives, refused = [], [], [], []
    if set_id is not None or every:
        with Verifier(opened, trust) as verifier:
            done = rekey_sets(opened, verifier, new, set_id, every)
        sets, records, refused = done.sets, done.records, done.refused
        if set_id is not None and refused:
            raise NotAuthenticated(set_id, refused[0].split(": ", 1)[-1])
    if wal:
        archives = rekey_archives(opened, trust.passphrase, new)
    for why in refused:
        gha.warn(f"left alone: {why}")
    if as_json:
        emit_json({"sets": sets, "drill_records": records, "wal_archives": archives,
                   "left_alone": refused})  # fmt: skip
    else:
        for name in sets:
            click.echo(f"re-wrapped the key of set {name}")
        for key in records:
            click.echo(f"sealed the drill record {key} again")
        for folder in archives:
            click.echo(f"re-wrapped the key of the WAL archive {folder}")
        if archives:
            click.echo("give each database host's archive_command the new passphrase now")
    return 0
