"""Database URLs split into the parts the client tools take, the password kept apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from offsite.errors import MalformedURL


@dataclass(frozen=True)
class DbURL:
    scheme: str
    host: str | None
    port: int | None
    user: str | None
    password: str | None = field(repr=False)
    database: str | None  # the path without its leading '/', unquoted; None when empty
    query: dict[str, str]

    @classmethod
    def parse(cls, url: str, kind: str) -> DbURL:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise MalformedURL(kind, _without_password(url), str(exc)) from None
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
        return cls(
            scheme=parts.scheme.lower(),
            host=parts.hostname or None,
            port=port,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            database=path or None,
            query=dict(parse_qsl(parts.query)),
        )

    def with_database(self, database: str | None) -> DbURL:
        return DbURL(
            self.scheme, self.host, self.port, self.user, self.password, database, self.query
        )


def _without_password(url: str) -> str:
    """Best effort for a URL too malformed for ``redact``: drop everything before '@'."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
