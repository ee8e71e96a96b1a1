"""offsite copy SRC --to DEST..."""

from __future__ import annotations

from dataclasses import asdict

import click

from offsite.cli import outputs
from offsite.cli.options import emit_json, json_option, option, storage_options
from offsite.cli.reading import trust_options
from offsite.copy import copy_set
from offsite.errors import BadInput, NoSets
from offsite.github import artifacts, gha
from offsite.sets.stored import choose
from offsite.sets.trust import TrustConfig, Verifier
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings
from offsite.table import human_size, render


@click.command("copy", short_help="Copy complete sets from one destination to others.")
@click.argument("src")
@option("--to", "destinations", multiple=True, metavar="DEST", help="Destination (repeatable).")
@option("--id", "set_id", metavar="ID", help="Copy this set.")
@option("--latest", is_flag=True, help="Copy the newest complete set (the default).")
@option("--all", "every", is_flag=True, help="Copy every complete set.")
@option(
    "--allow-public-unencrypted",
    is_flag=True,
    help="Copy unencrypted sets into a public repository's GitHub Artifacts (else refused).",
)
@trust_options
@storage_options
@json_option
def command(
    src: str,
    destinations: tuple[str, ...],
    set_id: str | None,
    latest: bool,
    every: bool,
    allow_public_unencrypted: bool,
    trust: TrustConfig,
    as_json: bool,
    storage: StorageSettings,
) -> int:
    """Copy complete backup sets from SRC to each DEST, as they are.

    SRC is any destination, or a set's folder (what `gh run download` fetched). Every
    byte is checked against the manifest's SHA-256 on the way; the manifest goes last.
    A set DEST already holds is skipped; one it holds with another manifest is an error.
    """
    if sum(bool(x) for x in (set_id, latest, every)) > 1:
        raise BadInput("choose one of --id, --latest and --all")
    targets = artifacts.resolve(destinations)
    if not targets:
        raise BadInput("no destination: give --to DEST")
    source = open_storage(src, storage)
    with Verifier(source, trust) as verifier:  # with a key, only sets that prove it
        sets = choose(source, set_id, every, verifier.check)
        if every:
            refused = {s.id: verifier.refusal(s, True) for s in sets}
            for why in filter(None, refused.values()):
                gha.warn(f"not copying {why.message()}")
            sets = [s for s in sets if refused[s.id] is None]
            if not sets:
                raise NoSets(source.url)
    plain = [s.id for s in sets if any(e.encryption.mode == "none" for e in s.manifest.entries)]
    if plain:
        artifacts.refuse_public(
            destinations, allow_public_unencrypted,
            f"set {plain[0]} is unencrypted and this repository is public: anyone signed in "
            "to GitHub can download its artifacts (--allow-public-unencrypted to do it anyway)",
        )  # fmt: skip
    opened = [open_storage(url, storage) for url in targets]
    done = [c for stored in sets for c in copy_set(source, stored, opened)]
    outputs.publish(sets[-1].manifest, targets)
    if as_json:
        emit_json({"copied": [asdict(c) for c in done]})
        return 0
    rows = [
        (c.set_id, c.target, human_size(c.size), "already there" if c.skipped else "copied")
        for c in done
    ]
    click.echo(render(("set", "to", "size", "result"), rows, right=(2,)))
    return 0
