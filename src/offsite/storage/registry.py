"""Destination backends registered by URL scheme."""

from __future__ import annotations

import importlib
from typing import Callable

from offsite.errors import UnknownScheme
from offsite.storage.base import Storage
from offsite.storage.settings import StorageSettings
from offsite.urls import redact, scheme_of

Factory = Callable[[str, StorageSettings], Storage]

_BACKENDS: dict[str, Factory] = {}
# Modules that register backends; imported on first lookup. A cloud SDK is imported
# inside its backend, so a missing extra surfaces when that scheme is used, not here.
_MODULES = (
    "offsite.storage.local",
    "offsite.storage.s3",
    "offsite.storage.gcs",
    "offsite.storage.azure",
    "offsite.storage.sftp",
    "offsite.storage.gh_artifacts",
)


def register(*schemes: str) -> Callable[[Factory], Factory]:
    def decorate(factory: Factory) -> Factory:
        for scheme in schemes:
            if scheme in _BACKENDS and _BACKENDS[scheme] is not factory:
                raise RuntimeError(f"storage scheme {scheme!r} is registered twice")
            _BACKENDS[scheme] = factory
        return factory

    return decorate


def _load() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def known_schemes() -> list[str]:
    _load()
    return sorted(_BACKENDS)


def open_storage(url: str, settings: StorageSettings | None = None) -> Storage:
    _load()
    scheme = scheme_of(url)
    factory = _BACKENDS.get(scheme)
    if factory is None:
        raise UnknownScheme("destination", scheme, redact(url), ", ".join(known_schemes()))
    return factory(url, settings or StorageSettings())
