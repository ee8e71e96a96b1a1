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


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``; anything not URL-shaped as it is."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    userinfo = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}:***@{host}"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
