"""offsite requirements SOURCE..."""

from __future__ import annotations

import shutil

import click

from offsite.cli.options import Lines, extras_options, option, read_storage_options, split_pairs
from offsite.cli.reading import trust_options
from offsite.config import load
from offsite.github.repos import owner_of
from offsite.oci.reference import owner_of as image_owner_of
from offsite.selection import Request, select
from offsite.sets.trust import TrustConfig
from offsite.shards import parse_shard
from offsite.sources.git_lfs import lfs_available
from offsite.sources.repo_extras import RepoExtras
from offsite.storage.settings import StorageSettings


def _tools() -> list[str]:
    return [] if shutil.which("gpg") else ["gnupg"]


@click.command("requirements", short_help="Print the Debian packages this machine lacks.")
@click.argument("urls", nargs=-1, metavar="[SOURCE]...", envvar="OFFSITE_SOURCE", type=Lines())
@option("--name", "names", multiple=True, metavar="NAME=SOURCE", help="A source with a name.")
@option("--exec", "execs", multiple=True, metavar="NAME=COMMAND", help="A command's output.")
@option("--pg-globals", is_flag=True, help="Databases' roles too (pg_dumpall --globals-only).")
@option("--config", "config_path", metavar="FILE", help="The sources of this configuration file.")
@option("--only", multiple=True, metavar="GROUP", help="With --config: only this group's sources.")
@option("--shard", metavar="I/N", help="With --config: only the I-th of N shares of its sources.")
@option("--restore", "restore_from", metavar="DEST",
        help="What restoring (or drilling) a set of DEST needs instead: the client of the "
        "server each entry came from (pg_restore 17 for a PostgreSQL 17 dump).")  # fmt: skip
@option("--id", "set_id", metavar="ID", help="With --restore: that set, not the newest.")
@option("--entry", metavar="NAME", help="With --restore: only that entry.")
@trust_options
@read_storage_options
@extras_options
def command(
    urls: tuple[str, ...],
    names: tuple[str, ...],
    execs: tuple[str, ...],
    pg_globals: bool,
    config_path: str | None,
    only: tuple[str, ...],
    shard: str | None,
    restore_from: str | None,
    set_id: str | None,
    entry: str | None,
    trust: TrustConfig,
    storage: StorageSettings,
    extras: RepoExtras,
) -> int:
    """Print the Debian packages this machine lacks to back up SOURCE..., one per line.

    It takes the sources as `offsite backup` does (the same selection: SOURCE, --name,
    --exec, --pg-globals, --config with --only and --shard). For PostgreSQL it asks the
    server its major version and names the client package at least as new
    (postgresql-client-16). The offsite actions install what it prints on Ubuntu runners;
    nothing printed means nothing is missing.
    """
    if restore_from:
        for package in _tools() + _restoring(restore_from, set_id, entry, storage, trust):
            click.echo(package)
        return 0
    owners = [u for u in urls if owner_of(u)]  # their repositories need git, listed or not
    urls = tuple(u for u in urls if not image_owner_of(u))  # images need no package
    config = load(config_path) if config_path else None
    request = Request(
        urls=tuple(u for u in urls if u not in owners),
        names=tuple(split_pairs(names, "--name")),
        execs=tuple(split_pairs(execs, "--exec")),
        pg_globals=pg_globals,
        config=config,
        only=only,
        # with github://OWNER too, backup shares over its repositories as well: every
        # share's packages then (a superset), rather than another share's
        shard=parse_shard(shard) if shard and config and not owners else None,
    )
    packages = _tools()
    if owners and not shutil.which("git"):
        packages.append("git")
    if extras.lfs and not lfs_available():  # the action sets it before it names a source
        packages.append("git-lfs")
    for source in select(request):
        packages += [p for p in source.missing_packages() if p not in packages]
    for package in packages:
        click.echo(package)
    return 0


def _restoring(
    dest: str, set_id: str | None, entry: str | None, storage: StorageSettings,
    trust: TrustConfig,
) -> list[str]:  # fmt: skip
    """The packages the entries of DEST's set need to restore: the set restore would take
    (the newest that proves itself with the key given, or ``set_id``), so a planted newer
    set cannot name what is installed. Only names come from the manifest (a package per
    kind and server major), never an option."""
    from offsite.errors import BadInput, OffsiteError
    from offsite.sets.stored import scan
    from offsite.sets.trust import Verifier
    from offsite.sources import kind_class
    from offsite.storage import open_storage

    opened = open_storage(dest, storage)
    with Verifier(opened, trust) as verifier:
        found = [s for s in scan(opened).current() if set_id in (None, s.id)]
        if set_id is None:
            sets = verifier.usable(found)
        else:
            sets = [s for s in found if verifier.refusal(s, named=True) is None]
    if not sets:
        raise BadInput(f"no set {set_id} in {dest}" if set_id else f"no complete set in {dest}")
    packages: list[str] = []
    for e in sets[-1].manifest.entries:
        if entry in (None, e.name):
            try:
                needed = kind_class(e.kind).restore_packages(e.stats)
            except OffsiteError:  # a kind this offsite does not know: restore says so
                needed = []
            packages += [p for p in needed if p not in packages]
    return packages
