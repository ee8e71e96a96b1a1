"""Splitting source and destination URLs into a scheme and the rest; removing passwords."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case; ``file`` for a plain path.

    A single letter followed by ``:`` is a Windows drive, not a scheme.
    """
    m = _SCHEME.match(url)
    if not m or len(m.group(1)) == 1:
        return "file"
    return m.group(1).lower()


def local_path(url: str) -> str:
    """The filesystem path of a plain path or a ``file://`` URL."""
    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            from offsite.errors import MalformedURL

            raise MalformedURL("file", url, "only local paths are supported (file:///path)")
        from urllib.parse import unquote

        return unquote(parts.path)
    if url.startswith("file:"):
        return url[len("file:") :]
    return url


def _mask_userinfo(url: str) -> str | None:
    """``scheme://user:***@rest`` when the text between ``://`` and the last ``@`` holds a
    ``:`` after a plain user name: a password that was not percent-encoded (``/``, ``#``,
    ``[``, ``@`` in it) breaks ``urlsplit``, but must not reach a message either."""
    scheme, _, rest = url.partition("://")
    at = rest.rfind("@")
    if at < 0 or ":" not in rest[:at]:
        return None
    user = rest[:at].split(":", 1)[0]
    if any(c in user for c in "/?#"):  # that ':' and '@' lie past the authority
        return None
    return f"{scheme}://{user}:***@{rest[at + 1 :]}"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``; anything not URL-shaped as it is."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _mask_userinfo(url) or url
    tail = f"{parts.path}?{parts.query}#{parts.fragment}"
    if parts.password is None or "@" in tail:
        return _mask_userinfo(url) or url
    userinfo = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}:***@{host}"
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
