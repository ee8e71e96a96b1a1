"""Destinations: a small protocol (base.py), chosen by URL scheme (registry.py).

May import: errors, names, urls, retry, github, stream.
"""

from offsite.storage.base import ObjectInfo, Storage
from offsite.storage.registry import known_schemes, open_storage, register

__all__ = ["ObjectInfo", "Storage", "known_schemes", "open_storage", "register"]
