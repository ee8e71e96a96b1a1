"""One SFTP connection, kept open between operations, and the retry around each operation.

Keys only, never a password: ``OFFSITE_SFTP_KEY`` (the private key's text, as a CI
secret holds it) or ``OFFSITE_SFTP_KEY_FILE``, with ``OFFSITE_SFTP_KEY_PASSPHRASE``
when it is encrypted; then the SSH agent, and ``~/.ssh``'s default keys when no key was
named. The server's host key must be known (``~/.ssh/known_hosts``,
``/etc/ssh/ssh_known_hosts``, or known_hosts lines in ``OFFSITE_SFTP_KNOWN_HOSTS``)
unless the user opts out with ``--sftp-insecure-host-key``.

A connection that fails or drops is made again (``retry``'s backoff, ``ATTEMPTS`` times or
``OFFSITE_SFTP_ATTEMPTS``); an error the server answers with is final.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
from typing import Any, Callable, TypeVar

from offsite import retry
from offsite.errors import BadInput, MissingExtra, StorageDenied, StorageError
from offsite.github import gha
from offsite.storage.settings import SftpSettings
from offsite.storage.sftp.address import SftpAddress

ATTEMPTS = 6  # per operation, waiting about 0.5, 1, 2, 4, 8 s between: OFFSITE_SFTP_ATTEMPTS
TIMEOUT = 30.0
T = TypeVar("T")

# paramiko logs a dropped connection at ERROR; with no handler Python would print it.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


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


class _HostKeyPolicy:
    """paramiko's missing-host-key policy: refuse, or with the user's opt-out, warn."""

    def __init__(self, insecure: bool) -> None:
        self.insecure = insecure

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        fingerprint = f"{key.get_name()} {key.fingerprint}"
        if not self.insecure:
            raise _UnknownHost(fingerprint)
        gha.warn(
            f"not checking the host key of {hostname} ({fingerprint}): --sftp-insecure-host-key"
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


class Session:
    """The connection a ``SftpStorage`` works through."""

    def __init__(self, url: str, address: SftpAddress, settings: SftpSettings) -> None:
        self.url = url
        self.address = address
        try:
            import paramiko
        except ImportError:
            raise MissingExtra("sftp://", "paramiko", "sftp") from None
        self._paramiko = paramiko
        self._insecure = settings.insecure_host_key
        self._key, self._key_source = _load_key(paramiko)
        self._ssh: Any = None
        self._sftp: Any = None

    @property
    def sftp(self) -> Any:
        """The open SFTP channel, or None."""
        return self._sftp

    def _where(self) -> str:
        a = self.address
        return f"{a.user + '@' if a.user else ''}{a.host}:{a.port}"

    def connect(self) -> Any:
        if self.alive():
            return self._sftp
        self.drop()
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
                "or OFFSITE_SFTP_KNOWN_HOSTS, once you checked its fingerprint"
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

    def drop(self) -> None:
        if self._ssh is not None:
            with contextlib.suppress(Exception):
                self._ssh.close()
        self._ssh = self._sftp = None

    def alive(self) -> bool:
        transport = self._ssh.get_transport() if self._ssh is not None else None
        return transport is not None and bool(transport.is_active())

    def retrying(self, what: str, action: Callable[[Any], T]) -> T:
        """Run ``action(sftp)``, reconnecting when the connection fails or drops; an
        error the server answers with (no such file, permission denied) is final."""
        paramiko = self._paramiko
        last = ""
        attempts = retry.count_from_env("OFFSITE_SFTP_ATTEMPTS", ATTEMPTS)
        for _ in retry.attempts(attempts):
            try:
                sftp = self.connect()
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
                if self.alive() and not dropped:
                    raise StorageError(self.url, f"{what}: {_reason(exc)}") from None
                last = f"connection lost: {_reason(exc)}"
                self.drop()
        raise StorageError(self.url, f"{what}: {last} ({attempts} attempts)")
