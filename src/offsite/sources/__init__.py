"""Sources: one module per kind, each dumping to a stream and restoring from one."""

from offsite.sources.base import Inspection, RestoreOptions, Restorer, Source
from offsite.sources.registry import from_exec, from_url, kind_class

__all__ = [
    "Inspection",
    "RestoreOptions",
    "Restorer",
    "Source",
    "from_exec",
    "from_url",
    "kind_class",
]
