"""SFTP servers (``sftp://user@host[:port]/path``), through paramiko.

Keys only, never a password: ``OFFSITE_SFTP_KEY`` (the private key's text, as a CI
secret holds it) or ``OFFSITE_SFTP_KEY_FILE``, with ``OFFSITE_SFTP_KEY_PASSPHRASE``
when it is encrypted; then the SSH agent, and ``~/.ssh``'s default keys when no key was
named. The server's host key must be known (``~/.ssh/known_hosts``,
``/etc/ssh/ssh_known_hosts``, or known_hosts lines in ``OFFSITE_SFTP_KNOWN_HOSTS``)
unless the user opts out with ``--sftp-insecure-host-key``.

The URL's path is absolute; ``sftp://host/~/backups`` is relative to the login folder.

``put`` writes a hidden ``.name.partial-XXXX`` beside the key and renames it over the
key at the end, like the local folder. It sends segments of 8 MiB, pipelined, each
confirmed before the next is read; a dropped connection is reconnected (backoff with
jitter) and only the segment in flight, still in memory, is sent again. Reads pick up
at their offset the same way. Partial files a crashed run left behind are what
``incomplete_uploads`` reports, so ``prune`` removes them after a day.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import os
import posixpath
import random
import secrets
import socket
import stat as statmode
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO, Callable, TypeVar, cast
from urllib.parse import unquote, urlsplit

from offsite.errors import BadInput, MalformedURL, MissingExtra, StorageDenied, StorageError
from offsite.storage.base import CHUNK, ObjectInfo
from offsite.storage.registry import register
from offsite.storage.settings import SftpSettings, StorageSettings
from offsite.streams import Readable, read_exactly
from offsite.urls import redact

SEGMENT = 8 * CHUNK
ATTEMPTS = 6  # per operation, waiting about 0.5, 1, 2, 4, 8 s between: OFFSITE_SFTP_ATTEMPTS
TIMEOUT = 30.0
PARTIAL = ".partial-"
T = TypeVar("T")

# paramiko logs a dropped connection at ERROR; with no handler Python would print it.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class SftpAddress:
    user: str | None
    host: str
    port: int
    root: str  # absolute, or relative to the login folder; no trailing slash

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def parse_url(url: str) -> SftpAddress:
    """``sftp://user@host[:port]/path``; ``/~/path`` is relative to the login folder."""
    parts = urlsplit(url)
    shown = redact(url)
    try:
        port = parts.port or 22
    except ValueError:
        raise MalformedURL(
            "destination", shown, "the port is not a number from 1 to 65535"
        ) from None
    if not parts.hostname:
        raise MalformedURL("destination", shown, "no host: sftp://user@host[:port]/path")
    if parts.password is not None:
        raise MalformedURL(
            "destination", shown, "no password in the URL: use a key (OFFSITE_SFTP_KEY)"
        )
    path = unquote(parts.path)
    if path in ("", "/~", "/~/"):
        root = "."
    elif path.startswith("/~/"):
        root = path[3:].rstrip("/") or "."
    else:
        root = path.rstrip("/") or "/"
    user = unquote(parts.username) if parts.username else None
    return SftpAddress(user, parts.hostname, port, root)


def _attempts() -> int:
    value = os.environ.get("OFFSITE_SFTP_ATTEMPTS", "")
    if not value:
        return ATTEMPTS
    if not value.isdigit() or int(value) < 1:
        raise BadInput(f"OFFSITE_SFTP_ATTEMPTS is a whole number from 1, not {value!r}")
    return int(value)


def _backoff(attempt: int) -> float:
    return float(min(16.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


class _Transient(Exception):
    """The connection failed or dropped: worth another attempt."""


class _UnknownHost(Exception):
    """The server's host key is in no known_hosts."""


def _load_key(paramiko: Any) -> tuple[Any, str]:
    """The private key the environment names, or None; and where it came from."""
    text = os.environ.get("OFFSITE_SFTP_KEY", "").strip()
    path = os.environ.get("OFFSITE_SFTP_KEY_FILE", "")
    passphrase = os.environ.get("OFFSITE_SFTP_KEY_PASSPHRASE") or None
    if not text and not path:
        return None, "the SSH agent, ~/.ssh"
    where = "OFFSITE_SFTP_KEY" if text else f"OFFSITE_SFTP_KEY_FILE ({path})"
    if not text:
        try:
            with open(os.path.expanduser(path)) as fh:
                text = fh.read().strip()
        except OSError as exc:
            raise BadInput(f"{where}: {exc.strerror or exc}") from None
    text = text.replace("\r\n", "\n").replace("\\n", "\n") + "\n"  # secrets pasted as one line
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text), password=passphrase), where
        except paramiko.PasswordRequiredException:
            raise BadInput(
                f"the key in {where} is encrypted: set OFFSITE_SFTP_KEY_PASSPHRASE"
            ) from None
        except (paramiko.SSHException, ValueError, TypeError):
            continue
    hint = " or the passphrase is wrong" if passphrase else ""
    raise BadInput(f"{where} holds no Ed25519, ECDSA or RSA private key{hint}")


class SftpStorage:
    def __init__(self, url: str, settings: SftpSettings) -> None:
        self.url = url
        self.address = parse_url(url)
        try:
            import paramiko
        except ImportError:
            raise MissingExtra("sftp://", "paramiko", "sftp") from None
        self._paramiko = paramiko
        self._insecure = settings.insecure_host_key
        self._key, self._key_source = _load_key(paramiko)
        self._ssh: Any = None
        self._sftp: Any = None

    # --- connection ---------------------------------------------------------------

    def _where(self) -> str:
        a = self.address
        return f"{a.user + '@' if a.user else ''}{a.host}:{a.port}"

    def _connect(self) -> Any:
        if self._alive():
            return self._sftp
        self._drop()
        paramiko = self._paramiko
        a = self.address
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_HostKeyPolicy(self._insecure))
        with contextlib.suppress(OSError):
            client.load_system_host_keys()
        with contextlib.suppress(OSError):
            client.load_system_host_keys("/etc/ssh/ssh_known_hosts")
        keys = client.get_host_keys()
        for line in os.environ.get("OFFSITE_SFTP_KNOWN_HOSTS", "").splitlines():
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
            if entry is not None and entry.key is not None:
                for name in entry.hostnames:
                    keys.add(name, entry.key.get_name(), entry.key)
        try:
            client.connect(
                a.host, a.port, username=a.user, pkey=self._key,
                allow_agent=True, look_for_keys=self._key is None, timeout=TIMEOUT,
                banner_timeout=TIMEOUT, auth_timeout=TIMEOUT,
            )  # fmt: skip
            transport = client.get_transport()
            transport.set_keepalive(30)
            self._ssh, self._sftp = client, client.open_sftp()
            self._sftp.get_channel().settimeout(TIMEOUT * 4)
        except _UnknownHost as exc:
            client.close()
            raise BadInput(
                f"{self.url}: the host key of {a.known_hosts_name} ({exc}) is not known: "
                f"add the output of `ssh-keyscan -p {a.port} {a.host}` to ~/.ssh/known_hosts "
                "or OFFSITE_SFTP_KNOWN_HOSTS, or pass --sftp-insecure-host-key"
            ) from None
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise BadInput(
                f"{self.url}: the host key of {a.known_hosts_name} does not match known_hosts "
                f"(it offered {exc.key.get_name()} {exc.key.fingerprint}): if the server's "
                "key changed on purpose, update known_hosts"
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise StorageDenied(
                self.url, f"access denied: {self._where()} refused the key ({self._key_source})"
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise _Transient(f"cannot connect to {self._where()}: {_reason(exc)}") from None
        return self._sftp

    def _drop(self) -> None:
        if self._ssh is not None:
            with contextlib.suppress(Exception):
                self._ssh.close()
        self._ssh = self._sftp = None

    def _alive(self) -> bool:
        transport = self._ssh.get_transport() if self._ssh is not None else None
        return transport is not None and bool(transport.is_active())

    def _retrying(self, what: str, action: Callable[[Any], T]) -> T:
        """Run ``action(sftp)``, reconnecting when the connection fails or drops; an
        error the server answers with (no such file, permission denied) is final."""
        paramiko = self._paramiko
        last = ""
        attempts = _attempts()
        for attempt in range(attempts):
            if attempt:
                time.sleep(_backoff(attempt))
            try:
                sftp = self._connect()
            except _Transient as exc:
                last = str(exc)
                continue
            try:
                return action(sftp)
            except FileNotFoundError:
                raise
            except PermissionError:
                raise StorageDenied(self.url, f"permission denied {what}") from None
            except (OSError, EOFError, paramiko.SSHException) as exc:
                # paramiko's SFTP channel can see the connection end before the transport
                # thread does: "Server connection dropped" is a lost connection either way.
                dropped = isinstance(exc, (EOFError, socket.timeout)) or str(exc).startswith(
                    "Server connection dropped"
                )
                if self._alive() and not dropped:
                    raise StorageError(self.url, f"{what}: {_reason(exc)}") from None
                last = f"connection lost: {_reason(exc)}"
                self._drop()
        raise StorageError(self.url, f"{what}: {last} ({attempts} attempts)")

    # --- paths --------------------------------------------------------------------

    def _path(self, key: str) -> str:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise StorageError(self.url, f"refusing key {key!r}")
        return posixpath.join(self.address.root, *parts)

    def _key_of(self, path: str) -> str:
        return path[len(self.address.root) :].lstrip("/")

    def _makedirs(self, sftp: Any, folder: str) -> None:
        missing: list[str] = []
        while folder not in ("", ".", "/"):
            try:
                if statmode.S_ISDIR(sftp.stat(folder).st_mode or 0):
                    break
                raise StorageError(self.url, f"{folder} exists and is not a folder")
            except FileNotFoundError:
                missing.append(folder)
                folder = posixpath.dirname(folder)
        for path in reversed(missing):
            try:
                sftp.mkdir(path)
            except OSError:
                if not statmode.S_ISDIR(sftp.stat(path).st_mode or 0):
                    raise

    # --- the protocol -------------------------------------------------------------

    def put(self, key: str, stream: Readable) -> int:
        path = self._path(key)
        folder, name = posixpath.split(path)
        tmp = posixpath.join(folder, f".{name}{PARTIAL}{secrets.token_hex(4)}")
        self._retrying(f"creating {folder}", lambda s: self._makedirs(s, folder))
        written = 0
        try:
            while True:
                data = read_exactly(stream, SEGMENT)
                if not data and written:
                    break

                def write(sftp: Any, data: bytes = data, at: int = written) -> None:
                    self._write(sftp, tmp, at, data)

                self._retrying(f"writing {key}", write)
                written += len(data)
                if not data:
                    break
            self._retrying(f"committing {key}", lambda s: self._commit(s, tmp, path, written))
        except BaseException:
            if self._alive():
                with contextlib.suppress(Exception):
                    self._sftp.remove(tmp)
            raise
        return written

    def _write(self, sftp: Any, tmp: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of ``tmp``, confirmed; after a reconnect, the
        first ``offset`` bytes (confirmed before) stay and anything after them goes."""
        if offset == 0:
            fh = sftp.open(tmp, "wb")
        else:
            sftp.truncate(tmp, offset)
            fh = sftp.open(tmp, "r+b")
            fh.seek(offset)
        try:
            fh.set_pipelined(True)
            fh.write(data)
        finally:
            fh.close()  # waits for every pipelined write to be acknowledged
        size = sftp.stat(tmp).st_size
        if size != offset + len(data):
            raise StorageError(self.url, f"{tmp} has {size} bytes, {offset + len(data)} were sent")

    def _commit(self, sftp: Any, tmp: str, path: str, size: int) -> None:
        try:
            sftp.posix_rename(tmp, path)  # OpenSSH's atomic rename over an existing file
        except FileNotFoundError:
            # A retry after a lost answer: the rename happened when the file is in place.
            st = sftp.stat(path)
            if st.st_size != size:
                raise
        except OSError as exc:  # a server without the extension: not atomic, but works
            if not self._alive() or "unsupported" not in str(exc).lower():
                raise
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(path)
            sftp.rename(tmp, path)

    def create(self, key: str, data: bytes) -> bool:
        """Written to a partial file, then renamed with SFTP's plain rename, which refuses
        to replace an existing file (unlike ``posix-rename``): the server arbitrates."""
        path = self._path(key)
        folder, name = posixpath.split(path)
        tmp = posixpath.join(folder, f".{name}{PARTIAL}{secrets.token_hex(4)}")
        self._retrying(f"creating {folder}", lambda s: self._makedirs(s, folder))

        def attempt(sftp: Any) -> bool:
            with sftp.open(tmp, "wb") as out:
                out.write(data)
            try:
                sftp.rename(tmp, path)
            except OSError:
                with contextlib.suppress(OSError):
                    sftp.remove(tmp)
                try:
                    sftp.stat(path)
                except FileNotFoundError:
                    raise StorageError(self.url, f"creating {key} failed") from None
                return False
            return True

        return self._retrying(f"creating {key}", attempt)

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, _ResumingFile(self, key, self._path(key)))

    def _walk(self, sftp: Any, folder: str, out: builtins.list[tuple[str, Any]]) -> None:
        try:
            entries = sftp.listdir_attr(folder)
        except FileNotFoundError:
            return
        for attr in sorted(entries, key=lambda a: a.filename):
            path = posixpath.join(folder, attr.filename)
            if statmode.S_ISDIR(attr.st_mode or 0):
                self._walk(sftp, path, out)
            elif statmode.S_ISREG(attr.st_mode or 0):
                out.append((path, attr))

    def _files(self, prefix: str = "") -> builtins.list[tuple[str, Any]]:
        """(path, attributes) of every regular file in the folder ``prefix`` names."""
        start = self.address.root
        if "/" in prefix:
            start = posixpath.join(start, *[p for p in prefix.split("/")[:-1] if p])

        def walk(sftp: Any) -> builtins.list[tuple[str, Any]]:
            out: builtins.list[tuple[str, Any]] = []
            self._walk(sftp, start, out)
            return out

        return self._retrying(f"listing {start}", walk)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path, attr in self._files(prefix):
            key = self._key_of(path)
            if PARTIAL not in attr.filename and key.startswith(prefix):
                yield ObjectInfo(key, attr.st_size or 0, _when(attr))

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            attr = self._retrying(f"reading {key}", lambda s: s.stat(path))
        except FileNotFoundError:
            return None
        if not statmode.S_ISREG(attr.st_mode or 0):
            return None
        return ObjectInfo(key, attr.st_size or 0, _when(attr))

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            self._retrying(f"deleting {key}", lambda s: s.remove(path))
        self._retrying(f"deleting {key}", lambda s: self._prune_empty(s, posixpath.dirname(path)))

    def _prune_empty(self, sftp: Any, folder: str) -> None:
        """Remove folders left empty, up to (not including) the root."""
        root = self.address.root
        while folder != root and folder.startswith(root.rstrip("/") + "/"):
            try:
                sftp.rmdir(folder)  # refused while the folder holds anything
            except OSError:
                return
            folder = posixpath.dirname(folder)

    # --- what a crashed run left behind (HasUploads) ------------------------------

    def incomplete_uploads(self) -> builtins.list[tuple[str, str, datetime]]:
        found = []
        for path, attr in self._files():
            if PARTIAL in attr.filename:
                folder, name = posixpath.split(path)
                final = posixpath.join(folder, name[1 : name.index(PARTIAL)])
                found.append((self._key_of(final), self._key_of(path), _when(attr)))
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        path = self._path(upload_id)
        if PARTIAL not in posixpath.basename(path):
            raise StorageError(self.url, f"{upload_id!r} is not an interrupted upload")
        with contextlib.suppress(FileNotFoundError):
            self._retrying(f"removing {upload_id}", lambda s: s.remove(path))
        self._retrying(
            f"removing {upload_id}", lambda s: self._prune_empty(s, posixpath.dirname(path))
        )


class _HostKeyPolicy:
    """paramiko's missing-host-key policy: refuse, or with the user's opt-out, warn."""

    def __init__(self, insecure: bool) -> None:
        self.insecure = insecure

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        fingerprint = f"{key.get_name()} {key.fingerprint}"
        if not self.insecure:
            raise _UnknownHost(fingerprint)
        print(
            f"offsite: warning: not checking the host key of {hostname} ({fingerprint}): "
            "--sftp-insecure-host-key",
            file=sys.stderr,
        )


class _ResumingFile:
    """An object's bytes, fetched 8 MiB ahead with pipelined reads; after a dropped
    connection the fetch picks up at its offset on a new one."""

    def __init__(self, storage: SftpStorage, key: str, path: str) -> None:
        self._storage = storage
        self._key = key
        self._path = path
        self._offset = 0  # of the next byte to fetch
        self._buffer = memoryview(b"")
        self._fh: Any = None
        self._size = storage._retrying(f"reading {key}", self._reopen)

    def _reopen(self, sftp: Any) -> int:
        if self._fh is not None:
            with contextlib.suppress(Exception):
                self._fh.close()
        self._fh = sftp.open(self._path, "rb")
        size = int(self._fh.stat().st_size)
        if self._offset and size != self._size:
            raise StorageError(self._storage.url, f"{self._key} changed while it was read")
        return size

    def _fetch(self, sftp: Any) -> bytes:
        if self._fh is None or self._fh.sftp is not sftp:
            self._reopen(sftp)
        end = min(self._size, self._offset + SEGMENT)
        step = self._fh.MAX_REQUEST_SIZE
        chunks = [(at, min(step, end - at)) for at in range(self._offset, end, step)]
        data = b"".join(self._fh.readv(chunks))
        if len(data) != end - self._offset:
            raise StorageError(self._storage.url, f"{self._key} ended early")
        return data

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(SEGMENT), b""))
        if not self._buffer:
            if self._offset >= self._size:
                return b""
            data = self._storage._retrying(f"reading {self._key}", self._fetch)
            self._offset += len(data)
            self._buffer = memoryview(data)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(out)

    def close(self) -> None:
        self._buffer = memoryview(b"")
        if self._fh is not None:
            with contextlib.suppress(Exception):
                self._fh.close()
            self._fh = None

    def __enter__(self) -> _ResumingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _when(attr: Any) -> datetime:
    return datetime.fromtimestamp(attr.st_mtime or 0, timezone.utc)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


@register("sftp")
def _open(url: str, settings: StorageSettings) -> SftpStorage:
    return SftpStorage(url, settings.sftp)
