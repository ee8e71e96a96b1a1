"""offsite wal push %p --to DEST / offsite wal fetch %f %p --from DEST"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from offsite.cli.options import (
    option,
    passphrase_option,
    read_passphrase,
    read_passphrase_file,
    read_storage_options,
    storage_options,
)
from offsite.crypto.keys import EncryptionConfig
from offsite.errors import BadInput
from offsite.storage.settings import StorageSettings

if TYPE_CHECKING:
    from offsite.wal.spool import Spool


@click.group("wal", short_help="Archive PostgreSQL's WAL: its archive_command and restore_command.")
def command() -> None:
    """Continuous archiving for point-in-time recovery. In postgresql.conf:

    \b
      archive_mode = on
      archive_command = 'offsite wal push %p --to DEST --passphrase-file FILE --async'
      archive_timeout = 60     # a quiet database still archives each minute

    \b
    and to recover, in the restored data directory (offsite restore writes it; anything
    but "not there" must stop recovery, never end it):
      restore_command = 'offsite wal fetch %f %p --from DEST --passphrase-file FILE
        --async --not-there-exit 99 || { s=$?; [ $s -eq 99 ] && exit 1; exit 200; }'

    With --async one process pushes (or fetches) ahead of PostgreSQL and each call only
    confirms its file (or moves it into place): exit 0 still means stored everywhere.
    """


def _key_cache(key_cache: Path | None, no_key_cache: bool) -> Path | None:
    from offsite.wal.keycache import default_cache

    if no_key_cache:
        return None
    return key_cache or default_cache()


def _cluster_options(f: click.decorators.FC) -> click.decorators.FC:
    f = option(
        "--system-id",
        metavar="ID",
        help="The cluster's system identifier (default: read from global/pg_control in the "
        "current folder, which is the data directory when PostgreSQL runs the command).",
    )(f)
    f = option(
        "--key-cache",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder for the unwrapped archive key, a 0600 file (default: "
        "~/.cache/offsite/keys), so a push does not stretch the passphrase.",
    )(f)
    f = option("--no-key-cache", is_flag=True, help="Unwrap the archive key on every call.")(f)
    f = passphrase_option(f)
    return option(
        "--passphrase-file",
        metavar="PATH",
        help="A file that holds the passphrase (its first line), instead of --passphrase-env.",
    )(f)


def _async_options(f: click.decorators.FC) -> click.decorators.FC:
    f = option("--ahead", is_flag=True, hidden=True, envvar=None)(f)  # the process ahead
    f = option(
        "--spool",
        metavar="DIR",
        help="Folder for --async's state and files fetched ahead, the user's own, 0700 "
        "(default: $OFFSITE_SPOOL, else ~/.cache/offsite/spool).",
    )(f)
    return option(
        "--async",
        "is_async",
        is_flag=True,
        help="Push (or fetch) ahead in one background process; each call confirms its own "
        "file. As fast as a copy when PostgreSQL waits on archiving or on recovery.",
    )(f)


def _spool(verb: str, is_async: bool) -> Spool | None:
    """The spool of an --async call, keyed by its command line (as the program's own
    quick answer keys it); None without --async or when that line is not one it reads."""
    if not is_async:
        return None
    from offsite.cli.options import State
    from offsite.wal.spool import locate

    args = State.argv
    for i in range(len(args) - 1):
        if args[i : i + 2] == ["wal", verb]:
            found = locate(verb, args[i + 2 :])
            return found[0] if found else None
    return None


def _passphrase(passphrase_env: str, passphrase_file: str | None) -> str | None:
    if passphrase_file:
        return read_passphrase_file(passphrase_file)
    return read_passphrase(passphrase_env)


@command.command("push", short_help="Archive one WAL file (archive_command).")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@option("--to", "destinations", multiple=True, required=True, metavar="DEST",
        help="Destination URL (repeatable): the file is stored in each before exit 0.")  # fmt: skip
@option("--no-encrypt", is_flag=True, help="Store the archive unencrypted.")
@option("--recipient", "recipients", multiple=True, metavar="KEY",
        help="Wrap the archive key to this OpenPGP key (repeatable).")  # fmt: skip
@_cluster_options
@_async_options
@storage_options
def push(
    path: Path,
    destinations: tuple[str, ...],
    no_encrypt: bool,
    recipients: tuple[str, ...],
    system_id: str | None,
    key_cache: Path | None,
    no_key_cache: bool,
    passphrase_env: str,
    passphrase_file: str | None,
    is_async: bool,
    spool: str | None,
    ahead: bool,
    storage: StorageSettings,
) -> int:
    """Store the WAL file PATH (PostgreSQL's %p) under wal/<system id>/ in every
    destination, compressed and encrypted with the archive's key. Exit 0 once it is
    stored everywhere, or was already stored with the same content; other content under
    the same name is refused (exit 1): the archive is never overwritten."""
    from offsite.wal.archiving import Pusher

    if no_encrypt:
        if recipients:
            raise BadInput("--no-encrypt and --recipient contradict each other")
        encryption = EncryptionConfig("none")
    elif recipients:
        encryption = EncryptionConfig("recipients", recipients=recipients)
    else:
        passphrase = _passphrase(passphrase_env, passphrase_file)
        if passphrase is None:
            from offsite.errors import MissingPassphrase

            raise MissingPassphrase(passphrase_env)
        encryption = EncryptionConfig("passphrase", passphrase=passphrase)
    cache = _key_cache(key_cache, no_key_cache)

    def pusher() -> Pusher:
        return Pusher(destinations, storage, encryption, cache, system_id)

    found = _spool("push", is_async)
    if found is None:
        pusher().push(path)
    elif ahead:
        from offsite.wal.ahead import push_ahead

        return _ahead(lambda: push_ahead(pusher, found, path))
    else:
        from offsite.wal.ahead import push_call

        push_call(pusher(), found, path)
    return 0


@command.command("fetch", short_help="Bring back one archived WAL file (restore_command).")
@click.argument("name")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@option("--from", "source", required=True, metavar="DEST", help="Destination URL to read.")
@option("--no-encrypt", is_flag=True,
        help="The archive is unencrypted (else a file without its key is refused).")  # fmt: skip
@option("--key-sha256", metavar="HEX",
        help="Refuse an archive whose key.gpg has another SHA-256.")  # fmt: skip
@option(
    "--not-there-exit",
    type=click.IntRange(1, 125),
    default=1,
    show_default=True,
    metavar="N",
    help="The exit code for a file the archive does not have (recovery's end). offsite "
    "restore writes 99 and maps it to 1, so that nothing else (offsite not starting at "
    "all) can read as the end of the archive.",
)
@_cluster_options
@_async_options
@read_storage_options
def fetch(
    name: str,
    target: Path,
    source: str,
    no_encrypt: bool,
    key_sha256: str | None,
    not_there_exit: int,
    system_id: str | None,
    key_cache: Path | None,
    no_key_cache: bool,
    passphrase_env: str,
    passphrase_file: str | None,
    is_async: bool,
    spool: str | None,
    ahead: bool,
    storage: StorageSettings,
) -> int:
    """Write the archived WAL file NAME (PostgreSQL's %f) to TARGET (%p). Exit 1 when
    the archive does not have it (recovery has reached the end of the archive), 3 when
    it has it but the file is corrupt or does not decrypt: recovery must stop there."""
    from offsite.wal.archiving import Fetcher

    passphrase = _passphrase(passphrase_env, passphrase_file)
    cache = _key_cache(key_cache, no_key_cache)

    def fetcher() -> Fetcher:
        return Fetcher(source, storage, passphrase, cache, system_id, not no_encrypt, key_sha256)

    from offsite.errors import WalMissing

    found = _spool("fetch", is_async)
    try:
        if found is None:
            fetcher().fetch(name, target)
        elif ahead:
            from offsite.wal.ahead import fetch_ahead

            return _ahead(lambda: fetch_ahead(fetcher, found))
        else:
            from offsite.wal.ahead import fetch_call

            fetch_call(fetcher, found, name, target)
    except WalMissing as exc:
        # not an error: PostgreSQL asks for files past the archive's end (the next
        # segment, a timeline's .history) to know where recovery ends
        from offsite.github.gha import printable

        click.echo(f"offsite: {printable(exc.message())} (recovery's end)", err=True)
        return not_there_exit
    return 0


def _ahead(work: Callable[[], None]) -> int:
    """The process ahead exits 0 whatever happens (what went wrong goes to its log): a
    postmaster running as PID 1, which inherits it, takes any other status of a child as
    a crashed backend and restarts every session."""
    import traceback

    try:
        work()
    except Exception:
        traceback.print_exc()
    return 0
