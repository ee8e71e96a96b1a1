"""Where an ``sftp://user@host[:port]/path`` URL points: the path is absolute;
``sftp://host/~/backups`` is relative to the login folder."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from offsite.errors import MalformedURL
from offsite.urls import redact


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
