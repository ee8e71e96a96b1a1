"""WAL segments as PostgreSQL writes them, as far as ``wal push`` reads them: the first
page's long header (magic, flags, timeline, page address, system identifier, segment and
page size) and the segment's full length."""

from __future__ import annotations

import os
import struct

MAGIC_15 = 0xD110  # PostgreSQL 15's XLOG_PAGE_MAGIC
MIB = 1 << 20


def segment(
    name: str,
    system_id: int | str,
    body: bytes | None = None,
    size: int = MIB,
    magic: int = MAGIC_15,
    timeline: int | None = None,
    address: int | None = None,
) -> bytes:
    """A segment named ``name`` of cluster ``system_id``: its header, then ``body`` (random
    bytes and a recognisable text by default), zero-filled to ``size``; ``timeline`` and
    ``address`` override what the name says."""
    tli, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:24], 16)
    page = (log * ((1 << 32) // size) + seg) * size
    header = struct.pack(
        "<HHIQI4xQII", magic, 0x0002, tli if timeline is None else timeline,
        page if address is None else address, 0, int(system_id), size, 8192,
    )  # fmt: skip
    fill = body if body is not None else os.urandom(4096) + b"wal record " * 90_000
    return (header + fill)[:size].ljust(size, b"\0")
