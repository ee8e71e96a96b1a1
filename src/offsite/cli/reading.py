"""The option blocks of the verbs that read a destination's sets (list, restore, verify,
prune, drill, and copy and monitor for trust): DEST or ``--config``, which sets
(``--id``/``--latest``/``--all``), what proves a set is the user's, how to restore. Each
block hands the command one typed value, so the verbs never repeat the parsing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, cast

import click

from offsite.cli.options import (
    F,
    given,
    option,
    passphrase_option,
    read_passphrase,
    read_passphrase_file,
)
from offsite.errors import BadInput


def _trust(kwargs: dict[str, Any], configured: str | None = None) -> Any:
    """The TrustConfig the trust options in ``kwargs`` (taken out) describe; ``configured``:
    the passphrase variable a --config file names, used when --passphrase-env was not given."""
    from offsite.sets.trust import TrustConfig

    variable = kwargs.pop("passphrase_env")
    path = kwargs.pop("passphrase_file")
    if configured and not given(click.get_current_context(), "passphrase_env"):
        variable = configured
    return TrustConfig(
        passphrase=read_passphrase_file(path) if path else read_passphrase(variable),
        trust_keys=tuple(kwargs.pop("trust_key")),
        allow_unauthenticated=kwargs.pop("allow_unauthenticated"),
        allow_unencrypted=kwargs.pop("allow_unencrypted"),
        passphrase_file=path,
    )


def _with_trust_options(f: Any) -> Any:
    decorated = passphrase_option(f)
    decorated = option(
        "--passphrase-file",
        metavar="PATH",
        help="A file that holds the passphrase (its first line), instead of --passphrase-env.",
    )(decorated)
    decorated = option(
        "--trust-key",
        multiple=True,
        metavar="KEY_OR_FILE",
        help="Sets made for recipients must carry manifest.json.sig by this key (repeatable).",
    )(decorated)
    decorated = option(
        "--allow-unauthenticated",
        is_flag=True,
        help="Accept sets that do not prove they were made with your key (warns).",
    )(decorated)
    return option(
        "--allow-unencrypted",
        is_flag=True,
        help="Accept unencrypted sets although a key is configured (warns).",
    )(decorated)


def trust_options(f: F) -> F:
    """What proves a set was made with the user's key (SPEC §7), for every command that
    reads sets; the command receives them as one ``trust`` argument (a TrustConfig)."""
    import functools

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(*args, trust=_trust(kwargs), **kwargs)

    return cast(F, _with_trust_options(wrapper))


def _reading(f: F, trust: bool) -> F:
    import functools

    from offsite.config import load

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        path = kwargs.pop("config_path")
        config = load(path) if path else None
        dest = kwargs.pop("dest") or _configured_destination(config)
        if trust:
            kwargs["trust"] = _trust(kwargs, _configured_variable(config))
        return f(*args, dest=dest, config=config, **kwargs)

    decorated: Any = _with_trust_options(wrapper) if trust else wrapper
    decorated = option(
        "--config",
        "config_path",
        metavar="FILE",
        help="A configuration file (offsite.yml): DEST defaults to its first destination"
        + (", its encryption names the passphrase variable." if trust else "."),
    )(decorated)
    decorated = click.argument("dest", required=False, metavar="[DEST]")(decorated)
    return cast(F, decorated)


def reading_options(f: F) -> F:
    """What a command that reads one destination's sets takes (restore, verify, prune,
    drill): DEST, ``--config FILE`` (SPEC §4: DEST defaults to the file's first
    destination, its encryption names the passphrase variable, ``prune`` reads its
    retention) and the trust options. The command receives ``dest``, ``config`` (the file
    as written, or None: a value is expanded only where it is used, so a variable the
    command does not need may stay unset) and ``trust``."""
    return _reading(f, trust=True)


def destination_options(f: F) -> F:
    """DEST or ``--config FILE`` alone, for a command that decrypts nothing (list)."""
    return _reading(f, trust=False)


def _configured_variable(config: Any) -> str | None:
    """The passphrase variable a --config file's encryption names, when it holds a value:
    an unset one leaves --passphrase-env (OFFSITE_PASSPHRASE) in charge."""
    from offsite.config import expand

    encryption = config.encryption if config is not None else None
    if encryption is None or not encryption.passphrase_env:
        return None
    where = f"{config.path}: encryption.passphrase-env"
    variable = expand(encryption.passphrase_env, os.environ, where)
    return variable if os.environ.get(variable) else None


def _configured_destination(config: Any) -> str:
    """The first destination of a --config file: ``github-artifacts`` reads this
    repository's artifacts (``gh-artifacts://$GITHUB_REPOSITORY``)."""
    from offsite.config import expand
    from offsite.github.artifacts import ARTIFACTS

    if config is None:
        raise BadInput("name the destination DEST (or give --config FILE with destinations)")
    if not config.destinations:
        raise BadInput(f"{config.path}: no destinations: name the destination DEST")
    first = expand(str(config.destinations[0]), os.environ, f"{config.path}: destinations")
    first = first.strip()
    if first == ARTIFACTS:
        repository = os.environ.get("GITHUB_REPOSITORY")
        if not repository:
            raise BadInput(
                f"{config.path}: github-artifacts is read as gh-artifacts://OWNER/REPO: "
                "name DEST (or set GITHUB_REPOSITORY)"
            )
        return f"gh-artifacts://{repository}"
    return first


@dataclass(frozen=True)
class Which:
    """Which sets a command works on: one by id, the newest (the default), or every one."""

    set_id: str | None = None
    every: bool = False


def which_options(verb: str, every: bool = False) -> Callable[[F], F]:
    """``--id ID``, ``--latest`` (and with ``every``, ``--all``): one selector, given at
    most once; the command receives ``which`` (a Which)."""
    import functools

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            set_id, latest = kwargs.pop("set_id"), kwargs.pop("latest")
            all_sets = kwargs.pop("every") if every else False
            if sum(bool(x) for x in (set_id, latest, all_sets)) > 1:
                names = "--id, --latest and --all" if every else "--id and --latest"
                raise BadInput(f"choose one of {names}")
            return f(*args, which=Which(set_id, all_sets), **kwargs)

        decorated: Any = wrapper
        if every:
            decorated = option("--all", "every", is_flag=True, help=f"{verb} every complete set.")(
                decorated
            )
        decorated = option(
            "--latest", is_flag=True, help=f"{verb} the newest complete set (the default)."
        )(decorated)
        decorated = option("--id", "set_id", metavar="ID", help=f"{verb} this set.")(decorated)
        return cast(F, decorated)

    return decorate


def restore_options(f: F) -> F:
    """What restore and drill both take: --entry, --force, --jobs, --no-owner; the command
    receives ``entry`` and ``options`` (a RestoreOptions)."""
    import functools

    from offsite.sources import RestoreOptions

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from offsite.pitr import parse_time

        to_time = kwargs.pop("to_time")
        to_lsn = kwargs.pop("to_lsn")
        if to_time and to_lsn:
            raise BadInput("choose one of --to-time and --to-lsn")
        if to_lsn:
            from offsite.wal.names import lsn_value

            lsn_value(to_lsn)
        options = RestoreOptions(
            force=kwargs.pop("force"),
            jobs=kwargs.pop("jobs") or 0,
            no_owner=kwargs.pop("no_owner"),
            to_time=parse_time(to_time) if to_time else None,
            to_lsn=to_lsn,
            program=kwargs.pop("server_offsite"),
        )
        return f(*args, options=options, **kwargs)

    decorated: Any = option("--no-owner", is_flag=True,
                            help="PostgreSQL: do not restore object owners.")(wrapper)  # fmt: skip
    decorated = option(
        "--to-time",
        metavar="TIME",
        help="A base backup: recover to this time (ISO 8601 with a zone, e.g. "
        "2026-11-26T14:05:00Z) with the WAL archived beside it; default: the latest.",
    )(decorated)
    decorated = option(
        "--to-lsn", metavar="LSN", help="A base backup: recover to this WAL position instead."
    )(decorated)
    decorated = option(
        "--server-offsite",
        metavar="PROGRAM",
        help="A base backup: the offsite the recovered server runs as its restore_command, "
        "where the server's user has another (default: this one, by absolute path).",
    )(decorated)
    decorated = option(
        "--jobs",
        type=click.IntRange(min=1),
        default=None,
        help="PostgreSQL: restore with N parallel workers, staging the decoded dump in "
        "TMPDIR. Default: one per core into a database the restore creates (dropped again "
        "if it fails); 1 into an existing one, in one transaction. --jobs 1: always one "
        "transaction, streamed, nothing staged.",
    )(decorated)
    decorated = option("--force", is_flag=True, help="Restore over a non-empty target.")(decorated)
    decorated = option("--entry", metavar="NAME", help="Only this entry.")(decorated)
    return cast(F, decorated)
