"""What PostgreSQL archives: WAL segments, timeline histories, backup history files, and
the positions in the WAL (LSNs) a base backup starts and stops at.

A name that is none of these is refused before it can become a storage key or a path.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from offsite.errors import BadInput

_NAME = re.compile(r"^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$")
_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
BASE_KIND = "pg-base"  # the entry kind of a base backup


def check_name(name: str) -> str:
    """``name`` when PostgreSQL could have asked to archive it, else BadInput."""
    if not _NAME.fullmatch(name):
        raise BadInput(f"{name!r} is not the name of a WAL file, history file or backup file")
    return name


def is_wal_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def is_segment(name: str) -> bool:
    return bool(_SEGMENT.fullmatch(name))


def timeline_of(name: str) -> int:
    return int(name[:8], 16)


def system_id_of_datadir(datadir: Path) -> str | None:
    """The cluster's system identifier, from ``global/pg_control`` (its first field), or
    None when ``datadir`` is not a data directory. PostgreSQL runs ``archive_command`` and
    ``restore_command`` in its data directory."""
    try:
        with open(datadir / "global" / "pg_control", "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    return str(struct.unpack("<Q", head)[0]) if len(head) == 8 else None


def lsn_value(lsn: str) -> int:
    """``16/B374D848`` as a number (a position in the WAL, in bytes); BadInput when it is
    not one. Base backups record their LSNs as such numbers."""
    high, sep, low = lsn.partition("/")
    try:
        if not sep:
            raise ValueError
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise BadInput(f"{lsn!r} is not an LSN (like 16/B374D848)") from None


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
