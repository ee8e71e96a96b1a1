"""offsite restore DEST --into TARGET"""

from __future__ import annotations

from dataclasses import asdict, replace

import click

from offsite.cli.options import emit_json, json_option, option, read_storage_options
from offsite.cli.reading import Which, reading_options, restore_options, which_options
from offsite.cli.rebuilt import report_rebuilt
from offsite.config import Config
from offsite.errors import BadInput
from offsite.github import gha
from offsite.github.rebuild_report import Options
from offsite.restore import RestoreRequest, run_restore
from offsite.restore_github import is_github_target
from offsite.restore_github import run as github_run
from offsite.sets.trust import TrustConfig
from offsite.sources import RestoreOptions
from offsite.storage.settings import StorageSettings
from offsite.stream.progress import Progress
from offsite.table import human_duration, human_size, markdown, render
from offsite.urls import redact

RESTORED = ("entry", "kind", "size", "time", "restored to")


@click.command("restore", short_help="Restore a set, or one entry, into a target.")
@reading_options
@which_options("Restore")
@option("--into", required=True, metavar="TARGET", help="Where to restore: a path or URL.")
@restore_options
@option(
    "--pace",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="github://: seconds between writes (GitHub asks one a second "
    "for content creation; 0 for a server with no such limit).",
)
@option(
    "--dry-run",
    is_flag=True,
    help="github://: check the token and print what would be made, per kind, with the "
    "estimated requests and time; write nothing.",
)
@option(
    "--map-user",
    multiple=True,
    metavar="OLD=NEW",
    help="github://: a user of the backup as another on the target (assignees, protection).",
)
@option(
    "--map-team",
    multiple=True,
    metavar="OLD=NEW",
    help="github://: a team of the backup as another on the target (protection).",
)
@read_storage_options
@json_option
def command(
    dest: str,
    config: Config | None,
    which: Which,
    into: str,
    entry: str | None,
    options: RestoreOptions,
    trust: TrustConfig,
    as_json: bool,
    storage: StorageSettings,
    pace: float,
    dry_run: bool,
    map_user: tuple[str, ...],
    map_team: tuple[str, ...],
) -> int:
    """Restore a backup set (or one entry of it) from DEST into TARGET.

    DEST: a destination (a folder, s3://, gs://, az://, sftp://, gh-artifacts://OWNER/REPO)
    or a folder fetched with `gh run download`. TARGET: github://OWNER/REPO (github://OWNER:
    every repository of the set) rebuilds a repository in GitHub with its issues, pull
    requests, releases and settings (run it again after a failure: it resumes);
    else, by the entry's kind, a database URL (postgresql://, mysql://, mongodb://) for a
    database, a path for SQLite, a folder for files, a file for a command's output or a
    Redis RDB, a folder or a git remote
    (git+URL, github://OWNER/REPO) for a repository, a folder (an OCI image layout) or
    oci://REGISTRY/REPOSITORY[:TAG] for a container image; for a set of several entries
    without --entry, a folder that gets one item per entry.
    """
    options = replace(options, archive=dest, passphrase_file=trust.passphrase_file)
    github_only = {"--pace": pace != 1.0, "--dry-run": dry_run, "--map-user": bool(map_user),
                   "--map-team": bool(map_team)}  # fmt: skip
    if not is_github_target(into) and any(github_only.values()):
        named = ", ".join(k for k, v in github_only.items() if v)
        raise BadInput(f"{named}: only for a restore into github://OWNER/REPO")
    request = RestoreRequest(
        source=dest,
        into=into,
        set_id=which.set_id,
        entry=entry,
        options=options,
        trust=trust,
        storage=storage,
    )
    if is_github_target(into):
        rebuild = Options(pace=pace, force=options.force, dry_run=dry_run,
                          users=_pairs("--map-user", map_user),
                          teams=_pairs("--map-team", map_team))  # fmt: skip
        return report_rebuilt(github_run(request, rebuild, Progress(enabled=not as_json)),
                              as_json)  # fmt: skip
    done = run_restore(request, Progress(enabled=not as_json))
    table = [(r.entry, r.kind, human_size(r.size), human_duration(r.seconds), redact(r.location))
             for r in done]  # fmt: skip
    title = f"### offsite restore of set `{done[0].set_id}` from `{redact(dest)}`"
    gha.append_summary(title + "\n\n" + markdown(RESTORED, table))
    if as_json:
        emit_json({"restored": [asdict(r) for r in done]})
        return 0
    rows = [
        (r.entry, r.kind, human_size(r.size), human_duration(r.seconds), r.location) for r in done
    ]
    click.echo(f"restored set {done[0].set_id}")
    click.echo(render(RESTORED, rows, right=(2, 3)))
    for r in done:
        if r.kind == "pg-base":
            click.echo(
                f"{r.entry}: start a server of the same major version on it, as the user that "
                f"owns it: pg_ctl -D {r.location} start; it recovers to "
                f"{'the target' if options.to_time or options.to_lsn else 'the end of the archive'}"
                " and then promotes. It keeps the archive_command it was backed up with: once"
                " promoted it archives there on a new timeline; for a test, start it with"
                " -o '-c archive_mode=off'"
            )
    return 0


def _pairs(flag: str, given: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in given:
        old, sep, new = value.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise BadInput(f"{flag} {value!r}: use OLD=NEW")
        pairs.append((old.strip(), new.strip()))
    return tuple(pairs)
