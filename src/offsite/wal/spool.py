"""Asynchronous archiving (SPEC §8: pushing and fetching ahead): the spool folder, and the
answer a call can give from it before the rest of offsite is even imported.

``wal push … --async``: a background process (:mod:`offsite.wal.ahead`) pushes every WAL
file PostgreSQL has ready (``pg_wal/archive_status/*.ready``) and, once a file is stored
at every destination, records it as ``<spool>/<NAME>.ok`` (its plain SHA-256 and size). A
call for NAME exits 0 when that record matches the file PostgreSQL gives it, so exit 0
still means durable; anything else goes the whole way, which starts the background
process and waits for it, or pushes the file itself.

``wal fetch … --async``: a background process fetches, checked, the segments after the one
last asked for into the spool; a call whose file is there moves it into place. Anything
else (the first file, a history file, a file not there or corrupt) goes the whole way,
which tells "not there" (1) from "corrupt" (3) as a plain fetch does.

A spool belongs to one cluster in one data directory (its system identifier, the folder's
device and inode) and one set of options (the command line, the ``OFFSITE_*`` variables and
those that choose where storage is): change any and the calls start a new one. A secret's
value never goes into its name. It holds plain WAL and the records that say "durable", so
it is used only when it is the user's own, mode 0700, never through a symlink, in a folder
others cannot swap it out of. This module imports nothing but the standard library's
lightest modules: a call answered here costs an interpreter's start and a hash.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time

from offsite.stream.digest import file_sha256  # stdlib only: archive_command's fast path

# wal push's and wal fetch's options as the command line gives them (tests/cli/test_wal.py
# checks these against the click commands): a token that is neither is not answered here
FLAGS = frozenset({"--no-encrypt", "--no-key-cache", "--sftp-insecure-host-key", "--async",
                   "--ahead"})  # fmt: skip
VALUES = frozenset({
    "--to", "--from", "--recipient", "--key-sha256", "--passphrase-file", "--passphrase-env",
    "--key-cache", "--system-id", "--spool", "--s3-endpoint-url", "--s3-region", "--s3-sse",
    "--s3-kms-key-id", "--s3-storage-class", "--s3-object-lock-mode", "--s3-object-lock-days",
    "--artifacts-branch", "--not-there-exit",
})  # fmt: skip
# variables that choose where storage is, besides offsite's own
STORAGE_VARIABLES = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
    "STORAGE_EMULATOR_HOST", "AZURE_STORAGE_ACCOUNT",
)  # fmt: skip
SECRET_WORDS = ("PASSPHRASE", "PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY")
_HEX = frozenset("0123456789ABCDEF")
TRUE = ("1", "true", "t", "yes", "y", "on")  # click's true for a flag's variable
LOCK = "lock"
WANT = "want"  # fetch: the segment the server asked for last, and its size
LOG = "ahead.log"
WAIT = 300.0  # seconds a push call waits for the process ahead before pushing itself
STARTING = 5.0  # seconds a process ahead may take to start
FAILED = ".failed"  # fetch: a file the process ahead found corrupt (the call says why)
# the process ahead runs in the data directory: never import from there (``python -m``
# would put it first on sys.path, and a restored data directory comes from a backup)
LAUNCH = ("import os, sys\n"
          "if sys.path and sys.path[0] in ('', os.getcwd()): del sys.path[0]\n"
          "from offsite.launch import main; main()")  # fmt: skip


def cache_home() -> str:
    """``~/.cache/offsite`` (``$XDG_CACHE_HOME`` honoured): the archive keys and spools of
    this host's user."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "offsite")


def default_base() -> str:
    """``$OFFSITE_SPOOL``, else ``~/.cache/offsite/spool``."""
    return os.environ.get("OFFSITE_SPOOL") or os.path.join(cache_home(), "spool")


def is_segment(name: str) -> bool:
    return len(name) == 24 and set(name) <= _HEX


def is_wal_file(name: str) -> bool:
    """A segment, history or backup history file (names.py's rule, without ``re``)."""
    if is_segment(name):
        return True
    head, _, tail = name.partition(".")
    if tail == "partial":  # the last segment of a timeline a promotion ended
        return is_segment(head)
    if tail == "history":
        return len(head) == 8 and set(head) <= _HEX
    if tail.endswith(".backup") and is_segment(head):
        offset = tail[: -len(".backup")]
        return len(offset) == 8 and set(offset) <= _HEX
    return False


def parse(args: list[str]) -> tuple[list[str], dict[str, list[str]]] | None:
    """The positional arguments and the options of ``wal push``/``wal fetch``; None for
    anything this parser is not sure to read as click does."""
    positional: list[str] = []
    options: dict[str, list[str]] = {}
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            positional.extend(tokens)
            break
        if token.startswith("--"):
            name, eq, value = token.partition("=")
            if name in FLAGS and not eq:
                options.setdefault(name, []).append("")
                continue
            if name not in VALUES:
                return None
            if not eq:
                following = next(tokens, None)
                if following is None or following.startswith("-"):
                    return None
                value = following
            options.setdefault(name, []).append(value)
        elif token.startswith("-"):
            return None
        else:
            positional.append(token)
    return positional, options


class Spool:
    """One spool folder: where a data directory's pushes (or fetches) with one set of
    options keep their records and files."""

    def __init__(self, verb: str, args: list[str], folder: str) -> None:
        self.verb = verb
        self.args = args  # the command line after ``wal VERB``, to start the process ahead
        self.folder = folder

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def usable(self, create: bool = False) -> bool:
        """Whether the folder is ours to trust (created, 0700, when ``create``)."""
        if create:
            try:
                os.makedirs(os.path.dirname(self.folder), mode=0o700, exist_ok=True)
                os.mkdir(self.folder, 0o700)
            except FileExistsError:
                pass
            except OSError:
                return False
        try:
            st = os.lstat(self.folder)
            parent = os.stat(os.path.dirname(self.folder))
        except OSError:
            return False
        mine = stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077
        # a folder others may write to could have ours renamed away and another put in
        swappable = parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX
        return mine and parent.st_uid in (0, os.geteuid()) and not swappable

    # -- push: the records of what is durable ------------------------------------------
    def record(self, name: str) -> tuple[str, int] | None:
        """What ``<NAME>.ok`` says was stored everywhere: the plain SHA-256 and size."""
        try:
            fd = os.open(self.path(name + ".ok"), os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                sha256, size = fh.read(128).decode().split()
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if len(sha256) != 64 or not size.isdigit():
            return None
        return sha256, int(size)

    def write_record(self, name: str, sha256: str, size: int) -> None:
        self._write(name + ".ok", f"{sha256} {size}\n".encode())

    def write_error(self, name: str) -> None:
        """The background process failed on ``name``: the call pushes it itself, and says
        why in its own words."""
        self._write(name + ".error", b"")

    def _write(self, name: str, data: bytes) -> None:
        temp = self.path(f".{name}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(temp, self.path(name))

    def mark_failed(self, name: str) -> None:
        self._write(name + FAILED, b"")

    def pop_error(self, name: str) -> bool:
        """Whether the background process failed on ``name``; taken (the next call retries)."""
        try:
            os.unlink(self.path(name + ".error"))
        except OSError:
            return False
        return True

    # -- fetch: what the server asked for last -----------------------------------------
    def want(self, name: str, size: int) -> None:
        self._write(WANT, f"{name} {size}".encode())

    def wanted(self) -> tuple[str, int, float] | None:
        """The segment asked for last, its size, and when it was asked."""
        try:
            with open(self.path(WANT), "rb") as fh:
                name, size = fh.read(64).decode().split()
                when = os.fstat(fh.fileno()).st_mtime
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return (name, int(size), when) if is_segment(name) and size.isdigit() else None

    # -- the process ahead ---------------------------------------------------------------
    def running(self) -> bool:
        """Whether a process ahead holds the folder's lock."""
        import fcntl

        try:
            fd = os.open(self.path(LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False  # no locks on this file system: never wait on a process ahead
        finally:
            os.close(fd)
        return False

    def start(self) -> int | None:
        """Start the process ahead (it exits at once when one already runs), in a session
        of its own, its output in ``ahead.log``: its process id, None if it did not start."""
        argv = [sys.executable, "-c", LAUNCH, "wal", self.verb, *self.args, "--ahead"]
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, self.path(LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]  # fmt: skip
        try:  # the caller goes on without it if it cannot start
            return os.posix_spawn(
                sys.executable, argv, os.environ, file_actions=actions, setsid=True
            )
        except OSError:
            return None


def locate(verb: str, args: list[str], cwd: str | None = None) -> tuple[Spool, list[str]] | None:
    """The spool of a ``wal VERB`` call given ``--async``, and the call's positional
    arguments; None when the call is not asynchronous or not one this parser reads."""
    parsed = parse(args)
    if parsed is None:
        return None
    positional, options = parsed
    if "--async" not in options and os.environ.get("OFFSITE_ASYNC", "").lower() not in TRUE:
        return None
    base = options.get("--spool", [""])[-1] or default_base()
    here = os.path.realpath(cwd or os.getcwd())
    keyed = sorted((n, v) for n, values in options.items() if n != "--ahead" for v in values)
    digest = hashlib.sha256(repr((verb, here, cluster(here), keyed, _environment())).encode())
    folder = os.path.join(os.path.abspath(base), f"{verb}-{digest.hexdigest()[:24]}")
    return Spool(verb, [a for a in args if a != "--ahead"], folder), positional


def cluster(folder: str) -> tuple[int, int, bytes]:
    """The data directory's device and inode, and its cluster's system identifier (the
    first 8 bytes of ``global/pg_control``): a new cluster restored at the same path has
    a spool of its own, never the old one's segments."""
    try:
        st = os.stat(folder)
        with open(os.path.join(folder, "global", "pg_control"), "rb") as fh:
            system_id = fh.read(8)
    except OSError:
        return (0, 0, b"")
    return (st.st_dev, st.st_ino, system_id)


def _environment() -> list[tuple[str, str]]:
    """What of the environment keys a spool: offsite's variables and where storage is; of
    a secret, its name only (the spool's name must not let anyone test a guess of it)."""
    found = []
    for name, value in os.environ.items():
        if name.startswith("OFFSITE_") or name in STORAGE_VARIABLES:
            secret = any(word in name for word in SECRET_WORDS)
            found.append((name, "" if secret else value))
    return sorted(found)


def pushed(spool: Spool, path: str) -> bool:
    """Whether the background process stored the file at ``path`` everywhere, as it is."""
    record = spool.record(os.path.basename(path))
    if record is None:
        return False
    try:
        if os.stat(path).st_size != record[1]:
            return False
        return file_sha256(path)[0] == record[0]
    except OSError:
        return False


_waited: set[tuple[str, str]] = set()  # (spool, file) this process waited for already


def confirmed(spool: Spool, path: str) -> bool:
    """Whether the process ahead stored the file at ``path`` everywhere: started if none
    runs, and waited for. False, and the call pushes the file itself, for a file
    PostgreSQL has not marked ready (pushed by hand), one whose record says other content,
    and one the process ahead failed on or did not come to. The quick answer waits (before
    click loads); the command then asks again only what it can see at once."""
    name = os.path.basename(path)
    ready = os.path.join(os.path.dirname(os.path.abspath(path)), "archive_status", name + ".ready")
    if not (spool.usable(create=True) and is_wal_file(name) and os.path.exists(ready)):
        return False
    if (spool.folder, name) in _waited:
        return pushed(spool, path)
    _waited.add((spool.folder, name))
    if pushed(spool, path):
        return True
    if spool.record(name) is not None or spool.pop_error(name):
        return False
    return _wait_pushed(spool, path)


def _wait_pushed(spool: Spool, path: str) -> bool:
    started, name = time.monotonic(), os.path.basename(path)
    seen = spool.running()
    child = None if seen else spool.start()
    while time.monotonic() - started < WAIT:
        if pushed(spool, path):
            return True
        if spool.pop_error(name):
            return False
        if spool.running():
            seen = True
        elif seen or time.monotonic() - started > STARTING or _ended(child):
            return pushed(spool, path)  # it ended: with our file, or without it
        time.sleep(0.01)
    return False


def _ended(child: int | None) -> bool:
    """Whether the process ahead this call started has exited (it could not run: the
    command line or the storage is wrong, and the command says why at once)."""
    if child is None:
        return False
    try:
        return os.waitpid(child, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


def take(spool: Spool, name: str, target: str) -> int | None:
    """Move the fetched-ahead segment ``name`` to ``target``: its size, or None when the
    spool does not have it."""
    source = spool.path(name)
    try:
        size = os.lstat(source).st_size
        os.rename(source, target)
    except FileNotFoundError:
        return None
    except OSError:  # another file system: copy, then drop the spooled one
        import shutil

        try:
            shutil.copyfile(source, target)
            os.unlink(source)
        except OSError:
            return None
    return size


def answer(argv: list[str]) -> int | None:
    """The exit code of a ``wal push``/``wal fetch`` call the spool can answer on its
    own, else None (the whole command runs)."""
    if len(argv) < 2 or argv[0] != "wal" or argv[1] not in ("push", "fetch"):
        return None
    found = locate(argv[1], argv[2:])
    if found is None or "--ahead" in argv:
        return None
    spool, positional = found
    if argv[1] == "push":  # the spool made here if need be, for the first call to wait
        if len(positional) == 1 and confirmed(spool, positional[0]):
            return 0
        return None
    if not spool.usable():
        return None
    if len(positional) != 2 or not is_segment(positional[0]):
        return None
    size = take(spool, positional[0], positional[1])
    if size is None:
        return None
    try:
        spool.want(positional[0], size)
    except OSError:
        return 0
    if not spool.running():
        spool.start()
    return 0
