"""What a backend lets out: ``StorageError`` (``ObjectMissing`` for a key that is not there)
and nothing else, so ``fanout``, ``restore``, ``prune`` and ``copy`` never translate
``OSError`` themselves.

Every backend class wears ``@guarded``: each protocol method, and every read of a stream
``open`` returns, turns a ``FileNotFoundError`` into ``ObjectMissing`` and any other
``OSError`` into ``StorageError``, both naming the destination. ``OffsiteError`` passes
as it is, and so does whatever the stream given to ``put`` raised: a source's failure
reaching ``put`` through its stream stays the source's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from offsite.errors import ObjectMissing, OffsiteError, StorageError

T = TypeVar("T", bound=type)
_PLAIN = ("create", "stat", "delete", "incomplete_uploads", "abort_upload")


def _translated(url: str, key: str, exc: OSError, reading: bool = True) -> StorageError:
    if reading and isinstance(exc, FileNotFoundError):
        return ObjectMissing(url, key)
    return StorageError(url, exc.strerror or str(exc) or type(exc).__name__)


def _key(args: tuple[Any, ...]) -> str:
    return args[0] if args and isinstance(args[0], str) else ""


class _GuardedStream:
    """A stream from ``open`` whose reads raise ``StorageError`` only."""

    def __init__(self, inner: Any, url: str, key: str) -> None:
        self._inner, self._url, self._key = inner, url, key

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._inner.read(size)
        except OffsiteError:
            raise
        except OSError as exc:
            raise _translated(self._url, self._key, exc) from exc
        return data

    def close(self) -> None:
        try:
            self._inner.close()
        except OSError as exc:
            raise _translated(self._url, self._key, exc) from exc

    def __enter__(self) -> _GuardedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _plain(method: Callable[..., Any]) -> Callable[..., Any]:
    reading = method.__name__ != "create"  # a path missing on a write is no absent object

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OffsiteError:
            raise
        except OSError as exc:
            raise _translated(self.url, _key(args), exc, reading) from exc

    return call


class _Watched:
    """The stream ``put`` reads, remembering what its reads raised."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.raised: BaseException | None = None

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._inner.read(size)
        except BaseException as exc:
            self.raised = exc
            raise
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _put(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, key: str, stream: Any) -> Any:
        watched = _Watched(stream)
        try:
            return method(self, key, watched)
        except OffsiteError:
            raise
        except OSError as exc:
            if exc is watched.raised:
                raise  # the stream's own failure, not the destination's
            raise _translated(self.url, key, exc, reading=False) from exc

    return call


def _open(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, key: str) -> Any:
        try:
            return _GuardedStream(method(self, key), self.url, key)
        except OffsiteError:
            raise
        except OSError as exc:
            raise _translated(self.url, key, exc) from exc

    return call


def _listing(method: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from method(self, *args, **kwargs)
        except OffsiteError:
            raise
        except OSError as exc:
            raise _translated(self.url, _key(args), exc) from exc

    return call


def guarded(cls: T) -> T:
    """Wrap the protocol methods ``cls`` defines itself (see the module docstring)."""
    for name in _PLAIN:
        if name in cls.__dict__:
            setattr(cls, name, _plain(cls.__dict__[name]))
    if "put" in cls.__dict__:
        cls.put = _put(cls.__dict__["put"])  # type: ignore[attr-defined]
    if "open" in cls.__dict__:
        cls.open = _open(cls.__dict__["open"])  # type: ignore[attr-defined]
    if "list" in cls.__dict__:
        cls.list = _listing(cls.__dict__["list"])  # type: ignore[attr-defined]
    return cls
