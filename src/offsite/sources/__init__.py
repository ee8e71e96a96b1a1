"""Sources: one module (or package) per kind, each dumping to a stream and restoring from
one. ``base`` holds the protocol (``Kind`` for a stored entry, ``Source`` for what a run
dumps), ``registry`` chooses a class by URL scheme or by manifest kind.

May import: errors, names, urls, github, table, stream, oci, wal.
"""

from offsite.sources.base import (
    Inspection,
    Kind,
    Prepared,
    RestoreOptions,
    RunContext,
    Source,
    SourceOptions,
)
from offsite.sources.registry import from_exec, from_url, kind_class
from offsite.sources.restorer import Restorer

__all__ = [
    "Inspection",
    "Kind",
    "Prepared",
    "RestoreOptions",
    "Restorer",
    "RunContext",
    "Source",
    "SourceOptions",
    "from_exec",
    "from_url",
    "kind_class",
]
