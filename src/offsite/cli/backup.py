"""offsite backup SOURCE... --to DEST"""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

import click
from click.core import ParameterSource

from offsite.backup import BackupConfig, BackupResult, run_backup
from offsite.baseline import Incremental
from offsite.cli import outputs
from offsite.cli.options import (
    Lines,
    emit_json,
    extras_options,
    given,
    image_options,
    incremental_options,
    json_option,
    option,
    passphrase_option,
    read_passphrase,
    read_passphrase_file,
    repo_options,
    split_pairs,
    storage_options,
)
from offsite.config import EncryptionSpec
from offsite.config import load as load_config
from offsite.crypto.keys import DEFAULT_PASSPHRASE_ENV, EncryptionConfig
from offsite.errors import BadInput, OffsiteError
from offsite.github import artifacts, gha
from offsite.github.repos import RepoChoice
from offsite.monitor.ping import ping
from offsite.oci.packages import ImageChoice
from offsite.selection import Request, select
from offsite.shards import parse_shard
from offsite.sources.repo_extras import RepoExtras
from offsite.storage.settings import StorageSettings
from offsite.stream.pipeline import COMPRESSIONS
from offsite.stream.progress import Progress
from offsite.table import entries
from offsite.urls import local_path, scheme_of

COMMANDLINE = ParameterSource.COMMANDLINE


def _encryption(
    ctx: click.Context, no_encrypt: bool, recipients: tuple[str, ...], passphrase_env: str,
    passphrase_file: str | None,
) -> EncryptionConfig:  # fmt: skip
    """What the command line chose. A passphrase file given by ``OFFSITE_PASSPHRASE_FILE``
    (set for every command on a host) only says where the passphrase is, where one is
    used: it never turns sets made for recipients, or unencrypted ones, into a passphrase's."""
    on_command_line = ctx.get_parameter_source("passphrase_file") is COMMANDLINE
    if no_encrypt:
        if recipients or (passphrase_file and on_command_line):
            raise BadInput("--no-encrypt contradicts --recipient and --passphrase-file")
        return EncryptionConfig("none")
    if recipients:
        if given(ctx, "passphrase_env") or (passphrase_file and on_command_line):
            raise BadInput("choose one of --passphrase-env, --passphrase-file and --recipient")
        return EncryptionConfig("recipients", recipients=recipients)
    if passphrase_file and not given(ctx, "passphrase_env"):
        return EncryptionConfig("passphrase", passphrase=read_passphrase_file(passphrase_file))
    if passphrase_file and on_command_line:
        raise BadInput("choose one of --passphrase-env and --passphrase-file")
    return EncryptionConfig("passphrase", passphrase=read_passphrase(passphrase_env, required=True))


def _explicit(ctx: click.Context) -> set[str]:
    """The parameters given a value on the command line or by environment, which win over
    --config. A flag set false (``OFFSITE_NO_ENCRYPT=false``, as an action passes its
    default) chooses nothing."""
    return {
        name
        for name, value in ctx.params.items()
        if given(ctx, name) and value not in (False, None, ())
    }


def _configured_encryption(spec: EncryptionSpec, passphrase_file: str | None) -> EncryptionConfig:
    if spec.mode == "none":
        return EncryptionConfig("none")
    if spec.mode == "recipients":
        return EncryptionConfig("recipients", recipients=spec.recipients)
    if passphrase_file:  # OFFSITE_PASSPHRASE_FILE: where the file's passphrase is
        return EncryptionConfig("passphrase", passphrase=read_passphrase_file(passphrase_file))
    variable = spec.passphrase_env or DEFAULT_PASSPHRASE_ENV
    return EncryptionConfig("passphrase", passphrase=read_passphrase(variable, required=True))


def _among(folder: str, destinations: tuple[str, ...]) -> bool:
    """Whether ``folder`` is one of the destinations, however it is spelled there."""
    mine = Path(local_path(folder)).expanduser().resolve()
    return any(
        scheme_of(d) == "file" and Path(local_path(d)).expanduser().resolve() == mine
        for d in destinations
    )


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    return dict(split_pairs(values, "--label"))


def _push_metrics(gateway: str, result: BackupResult, shard: tuple[int, int] | None) -> None:
    import time

    from offsite.monitor.metrics import push_run

    # the shards of one plan into one destination are groups of their own
    grouping = {"shard": f"{shard[0]}/{shard[1]}"} if shard else None
    problem = push_run(gateway, "offsite_backup", result.destinations, {
        "offsite_last_success_timestamp_seconds": time.time(),
        "offsite_backup_size_bytes": float(result.manifest.size),
        "offsite_backup_duration_seconds": result.seconds,
    }, grouping)  # fmt: skip
    if problem:
        gha.warn(problem)


def _ping(url: str | None, event: str, body: str = "") -> None:
    if url:
        problem = ping(url, event, body)
        if problem:
            gha.warn(problem)


@click.command("backup", short_help="Back up sources into a new set in each destination.")
@click.argument("urls", nargs=-1, metavar="SOURCE...", envvar="OFFSITE_SOURCE", type=Lines())
@option("--to", "destinations", multiple=True, metavar="DEST", help="Destination (repeatable).")
@option(
    "--name", "names", multiple=True, metavar="NAME=SOURCE", help="A source with an entry name."
)
@option(
    "--exec", "execs", multiple=True, metavar="NAME=COMMAND", help="Back up a command's output."
)
@option("--exclude", "excludes", multiple=True, metavar="PATTERN", help="Skip matching files.")
@option(
    "--pg-globals",
    is_flag=True,
    help="Also dump roles and tablespaces (pg_dumpall --globals-only) as NAME-globals.",
)
@option(
    "--physical",
    is_flag=True,
    help="PostgreSQL: a base backup of the whole cluster (pg_basebackup) for point-in-time "
    "recovery with `offsite wal`, instead of a dump of one database.",
)
@option(
    "--with-wal",
    is_flag=True,
    help="With --physical: put the WAL the base backup needs inside it (self-contained, "
    "no archive needed; restores to the end of the backup only).",
)
@option(
    "--platform",
    metavar="OS/ARCH",
    help="Container images: keep only this platform of a multi-platform index "
    "(default: every platform).",
)
@option("--compress", type=click.Choice(COMPRESSIONS), default="zstd", show_default=True)
@option("--level", type=int, help="Compression level (zstd 1-22, gzip 1-9).")
@passphrase_option
@option(
    "--passphrase-file",
    metavar="PATH",
    help="A file that holds the passphrase (its first line), instead of --passphrase-env.",
)
@option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="KEY_OR_FILE",
    help="Encrypt to this public key: a fingerprint in the keyring or an armored key file.",
)
@option("--no-encrypt", is_flag=True, help="Store the data unencrypted.")
@option(
    "--sign-key",
    metavar="KEY",
    help="Sign manifest.json with this key of your keyring (manifest.json.sig): what proves "
    "a set made for recipients is yours (restore with --trust-key).",
)
@option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Label the set.")
@option(
    "--config",
    "config_path",
    metavar="FILE",
    help="A configuration file (offsite.yml) of named sources, groups and destinations.",
)
@option(
    "--only",
    multiple=True,
    metavar="GROUP",
    help="With --config: only the sources in this group, or with this name (repeatable).",
)
@option(
    "--shard",
    metavar="I/N",
    help="The I-th of N shares of the --config file's sources or a github://OWNER's "
    "repositories (offsite plan prints the matrix).",
)
@option(
    "--mirror-cache",
    metavar="DIR",
    help="Keep repository mirrors here between runs: a run then fetches only what is new.",
)
@option(
    "--jobs",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Repositories fetched at once.",
)
@incremental_options
@repo_options
@image_options
@extras_options
@option(
    "--ping-url",
    default=None,
    help="Dead man's switch (healthchecks.io style): pinged at URL/start, URL, URL/fail.",
)
@option(
    "--pushgateway",
    metavar="URL",
    help="Push this backup's metrics (time, size, duration per destination) to a "
    "Prometheus Pushgateway.",
)
@option(
    "--allow-public-unencrypted",
    is_flag=True,
    help="Store unencrypted sets as GitHub Artifacts of a public repository, which anyone "
    "signed in to GitHub can download (refused without it).",
)
@storage_options
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    urls: tuple[str, ...],
    destinations: tuple[str, ...],
    names: tuple[str, ...],
    execs: tuple[str, ...],
    excludes: tuple[str, ...],
    pg_globals: bool,
    physical: bool,
    with_wal: bool,
    platform: str | None,
    compress: str,
    level: int | None,
    passphrase_env: str,
    passphrase_file: str | None,
    recipients: tuple[str, ...],
    no_encrypt: bool,
    sign_key: str | None,
    labels: tuple[str, ...],
    config_path: str | None,
    only: tuple[str, ...],
    shard: str | None,
    mirror_cache: str | None,
    jobs: int,
    incremental: bool,
    policy: Incremental,
    choice: RepoChoice,
    images: ImageChoice,
    extras: RepoExtras,
    ping_url: str | None,
    pushgateway: str | None,
    allow_public_unencrypted: bool,
    as_json: bool,
    storage: StorageSettings,
) -> int:
    """Back up every SOURCE into one new backup set in each DEST.

    \b
    SOURCE, by kind:
      databases  postgresql://user@host:5432/db (postgres://), mysql://user@host/db or
                 mariadb://… (no db: all), redis://:pass@host:6379/0 (rediss://),
                 mongodb://… (mongodb+srv://), sqlite:///abs/path.db or sqlite:rel/path.db
      files      a file or folder, or file:///path (--exclude PATTERN)
      git        git+<any git URL> (git+https://…, git+ssh://…, git+file:///…),
                 github://OWNER/REPO, or github://OWNER for all its repositories
      images     oci://REGISTRY/REPOSITORY:TAG or @sha256:… (oci+http:// for a local
                 registry; --platform OS/ARCH for one platform), oci://ghcr.io/OWNER
      a command  --exec NAME=COMMAND: its standard output is the entry
    DEST: a folder or file:///path, s3://bucket/prefix, gs://bucket/prefix,
    az://container/prefix, sftp://user@host[:port]/path, github-artifacts (in the actions).

    A URL with a password on the command line shows in `ps`: put it in OFFSITE_SOURCE
    (one per line) instead, or leave the password out and set PGPASSWORD, MYSQL_PWD or
    REDISCLI_AUTH. Encryption is on: set OFFSITE_PASSPHRASE, or give --recipient, or pass
    --no-encrypt.
    """
    file = load_config(config_path) if config_path else None
    for url in (*urls, *(url for _, url in split_pairs(names, "--name"))):
        gha.mask_url_password(url)
    request = Request(
        urls=urls,
        names=tuple(split_pairs(names, "--name")),
        execs=tuple(split_pairs(execs, "--exec")),
        excludes=excludes,
        pg_globals=pg_globals,
        physical=physical,
        with_wal=with_wal,
        platform=platform,
        config=file,
        only=only,
        shard=parse_shard(shard) if shard else None,
        choice=choice,
        images=images,
        extras=extras,
        mirror_cache=Path(mirror_cache).expanduser() if mirror_cache else None,
        incremental=incremental,
    )
    sources = select(request)
    for source in sources:  # the file's, expanded: each password masked before it can show
        gha.mask_url_password(source.url)
    file = file.settings(os.environ) if file else None
    explicit = _explicit(ctx)
    if file and file.destinations and "destinations" not in explicit:
        destinations = file.destinations
    dies = artifacts.dies_with_repository(destinations, [s.url for s in sources])
    if dies:
        gha.warn(dies)
    if file and file.compress and "compress" not in explicit:
        compress = file.compress
    if file and file.level is not None and "level" not in explicit:
        level = file.level
    chosen = explicit & {"no_encrypt", "recipients", "passphrase_env"}
    if ctx.get_parameter_source("passphrase_file") is COMMANDLINE:
        chosen.add("passphrase_file")
    encryption = (
        _configured_encryption(file.encryption, passphrase_file)
        if file and file.encryption and not chosen
        else _encryption(ctx, no_encrypt, recipients, passphrase_env, passphrase_file)
    )
    if encryption.mode == "none":
        artifacts.refuse_public(
            destinations, allow_public_unencrypted,
            "this repository is public: anyone signed in to GitHub can download its "
            "artifacts. Encrypt (OFFSITE_PASSPHRASE or --recipient), or allow it with "
            "--allow-public-unencrypted",
        )  # fmt: skip
    resolved = artifacts.resolve(destinations)
    staging = artifacts.staging_dir()  # inside the actions: the job's artifacts folder
    config = BackupConfig(
        sources=sources,
        destinations=resolved,
        id_space=(staging,) if staging and not _among(staging, resolved) else (),
        encryption=encryption,
        compression=compress,
        level=level,
        labels={**(file.labels if file else {}), **_labels(labels)},
        storage=storage,
        shard=request.shard,
        jobs=jobs,
        sign_key=sign_key,
        incremental=replace(
            policy, full_after=policy.full_after or (file.full_after if file else None)
        ),
        artifacts=staging if artifacts.ARTIFACTS in map(str.strip, destinations) else None,
    )
    if ping_url and not ping_url.startswith(("http://", "https://")):
        raise BadInput("--ping-url is an http(s) address")
    _ping(ping_url, "start")
    try:
        result = run_backup(config, Progress(enabled=not as_json))
    except OffsiteError as exc:
        _ping(ping_url, "fail", exc.message())
        raise
    except BaseException:
        _ping(ping_url, "fail", "interrupted")
        raise
    _ping(ping_url, "", f"backup {result.manifest.id}: {entries(len(result.manifest.entries))}")
    if pushgateway:
        _push_metrics(pushgateway, result, request.shard)
    outputs.publish(result.manifest, result.destinations, outputs.backup_summary(result))
    if as_json:
        emit_json({"manifest": asdict(result.manifest), "destinations": list(destinations),
                   "skipped": list(result.skipped),
                   "full_because": result.full_because or None})  # fmt: skip
    else:
        click.echo(outputs.report(result))
    return 0
