"""The storage protocol every destination implements.

Streams, not values: ``put`` reads a stream of unknown length and ``open`` returns one.
What a backend raises is ``StorageError`` only (``ObjectMissing`` for an absent key): each
backend class wears ``guard.guarded``, so no caller translates ``OSError``.
``put`` must never leave an object that looks complete when the stream raises: a local
folder writes to a temporary name and renames, an object store aborts the upload.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

from offsite.stream.readers import Readable

CHUNK = 1 << 20


def may_hold(folder: str, prefix: str) -> bool:
    """Whether the folder ``folder`` (a key prefix without its slash) can hold keys that
    start with ``prefix``: a listing by prefix descends into no other (never into
    ``wal/`` to list sets)."""
    return (folder + "/").startswith(prefix) or prefix.startswith(folder + "/")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class Storage(Protocol):
    url: str

    def put(self, key: str, stream: Readable) -> int:
        """Store everything ``stream`` yields under ``key``; return the byte count."""

    def create(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` only if no object has that key, in one operation
        the store itself arbitrates (create-if-absent); False when one was already there.
        Two runs that race for a key: exactly one gets True (SPEC §7)."""

    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object's bytes; ``ObjectMissing`` if absent (a backend
        raises FileNotFoundError; ``guard.guarded`` turns it into that)."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every committed object whose key starts with ``prefix``."""

    def stat(self, key: str) -> ObjectInfo | None:
        """The object's info, or None when there is no such object."""

    def delete(self, key: str) -> None:
        """Remove the object; absent objects are not an error."""


@runtime_checkable
class HasUploads(Protocol):
    """An object store whose interrupted uploads can outlive the process (S3 multipart):
    ``prune`` aborts the ones older than a day, when the process that began them could
    not (the store was unreachable)."""

    def incomplete_uploads(self) -> list[tuple[str, str, datetime]]:
        """(key, upload id, start) of every upload never completed nor aborted."""

    def abort_upload(self, key: str, upload_id: str) -> None: ...


@runtime_checkable
class ExplainsMissing(Protocol):
    """A store that can say why a set it once held is gone (an expired artifact)."""

    def why_missing(self, set_id: str) -> str | None: ...


def bucket_and_prefix(url: str, container: str = "bucket") -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix/``); the prefix is empty
    or ends with ``/``. ``container`` is what the store calls its top level."""
    from offsite.errors import BadInput

    scheme, _, rest = url.partition("://")
    top, _, prefix = rest.partition("/")
    if not top:
        raise BadInput(
            f"{scheme} destination {url!r} has no {container}: {scheme}://{container}[/prefix]"
        )
    if "@" in top:  # no bucket or container has one: credentials, which URLs must not carry
        from offsite.urls import redact

        raise BadInput(f"{scheme} destination {redact(url)!r}: no credentials in the URL "
                       "(they would show in ps and logs): give them by environment")  # fmt: skip
    prefix = prefix.strip("/")
    return top, f"{prefix}/" if prefix else ""


def put_bytes(storage: Storage, key: str, data: bytes) -> int:
    import io

    return storage.put(key, io.BytesIO(data))


def get_bytes(storage: Storage, key: str) -> bytes:
    with storage.open(key) as fh:
        return fh.read()
