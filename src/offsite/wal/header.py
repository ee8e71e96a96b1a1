"""A WAL segment's first page checked against its name before it is archived (SPEC §8).

The first page of every segment carries a long header (``XLogLongPageHeaderData`` in
PostgreSQL's ``access/xlog_internal.h``): magic, flags, timeline, the page's address in
the WAL, then the cluster's system identifier, the segment size and the page size. A
segment pushed under name ``TTTTTTTTXXXXXXXXYYYYYYYY`` must say timeline ``T``, start at
the address that segment number stands for, be as long as the segment size it names, and
belong to the cluster the push is for. A page magic offsite does not know is a warning,
not a refusal: a newer server must never stall on it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from offsite.errors import BadInput

XLP_LONG_HEADER = 0x0002
_LONG_HEADER = struct.Struct("<HHIQI4xQII")  # magic, info, tli, pageaddr, rem_len, sysid, …
# XLOG_PAGE_MAGIC of the servers offsite is tested with and their neighbours
KNOWN_MAGIC = {0xD098: 11, 0xD101: 12, 0xD106: 13, 0xD10D: 14, 0xD110: 15, 0xD113: 16, 0xD116: 17}
MIN_SEGMENT, MAX_SEGMENT = 1 << 20, 1 << 30


@dataclass(frozen=True)
class LongHeader:
    magic: int
    timeline: int
    page_address: int
    system_id: str
    segment_size: int

    @classmethod
    def of(cls, data: bytes) -> LongHeader | None:
        """The long header ``data`` starts with; None when it has none."""
        if len(data) < _LONG_HEADER.size:
            return None
        magic, info, tli, pageaddr, _, sysid, seg_size, _ = _LONG_HEADER.unpack_from(data)
        if not info & XLP_LONG_HEADER:
            return None
        return cls(magic, tli, pageaddr, str(sysid), seg_size)


def check_segment(name: str, data: bytes, system_id: str | None) -> tuple[str, str | None]:
    """The system identifier of the segment ``data`` pushed as ``name`` (a segment's name,
    ``.partial`` or not), and a warning to print (an unknown page magic) or None.
    BadInput, naming what does not match, when the segment is not the one its name says,
    or of another cluster than ``system_id`` (the data directory's, or --system-id)."""
    header = LongHeader.of(data)
    if header is None:
        raise BadInput(f"{name} does not start with a WAL segment's long page header")
    size = header.segment_size
    if size & (size - 1) or not MIN_SEGMENT <= size <= MAX_SEGMENT:
        raise BadInput(f"{name} names a segment size of {size} bytes, which no server makes")
    if len(data) != size:
        raise BadInput(f"{name} is {len(data)} bytes; its header says a segment is {size}")
    timeline, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:24], 16)
    per_log = (1 << 32) // size
    if seg >= per_log:
        raise BadInput(f"{name} is not a segment name for {size}-byte segments")
    if header.timeline != timeline:
        raise BadInput(f"{name} holds WAL of timeline {header.timeline}, not {timeline}")
    if header.page_address != (log * per_log + seg) * size:
        address = f"{header.page_address >> 32:X}/{header.page_address & 0xFFFFFFFF:08X}"
        raise BadInput(f"{name} starts at WAL address {address}, not where its name says")
    if system_id is not None and header.system_id != system_id:
        raise BadInput(
            f"{name} belongs to the cluster {header.system_id}, not {system_id} (this data "
            "directory's, or --system-id)"
        )
    warning = None
    if header.magic not in KNOWN_MAGIC:
        warning = (f"{name} has page magic {header.magic:#06x}, which offsite does not know "
                   "(a newer server?): archived all the same")  # fmt: skip
    return header.system_id, warning
