"""The head of a pg_dump custom-format archive: its header and table of contents, read
from bytes that may not all be there yet (``NeedMore`` until they are).

Format: ``src/bin/pg_dump/pg_backup_archiver.c`` (``ReadHead``, ``ReadToc``): integers are a
sign byte and ``intSize`` bytes, little-endian; strings an integer length (-1: NULL) and
the bytes. ``archive.py`` walks the data blocks that follow.
"""

from __future__ import annotations

from typing import NamedTuple

MAGIC = b"PGDMP"
OLDEST, NEWEST = (1, 12), (1, 16)  # pg_dump 11 … 17
MAX_CONTENTS = 256 << 20  # a table of contents larger than this is not a dump's


class ArchiveError(Exception):
    """The stream is not a whole custom-format dump: the message says where it breaks."""


class NeedMore(Exception):
    pass


class Cursor:
    """Reads the header and the contents from bytes that may not all be there yet."""

    def __init__(self, data: bytes | bytearray) -> None:
        self.data, self.pos, self.int_size = data, 0, 4

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NeedMore
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def int(self) -> int:
        sign = self.byte()
        value = int.from_bytes(self.take(self.int_size), "little")
        if sign not in (0, 1):
            raise ArchiveError(f"a sign byte of {sign} at byte {self.pos - self.int_size - 1}")
        return -value if sign else value

    def str(self) -> str | None:
        length = self.int()
        if length < -1:
            raise ArchiveError(f"a string of length {length} at byte {self.pos}")
        return None if length == -1 else self.take(length).decode("utf-8", "replace")


class TocEntry(NamedTuple):
    """One entry of the contents, as a restore schedules it."""

    dump_id: int
    desc: str  # TABLE, TABLE DATA, INDEX, CONSTRAINT, ...
    section: int  # NONE, PRE_DATA, DATA, POST_DATA: 1 to 4
    deps: tuple[int, ...]


class DataEntry:
    __slots__ = ("copy", "dump_id", "flag_at", "table")

    def __init__(self, dump_id: int, table: str, copy: bool, flag_at: int) -> None:
        self.dump_id, self.table, self.copy = dump_id, table, copy
        self.flag_at = flag_at  # where its data offset (flag byte, then offset) is stored


def read_contents(c: Cursor) -> tuple[tuple[int, int], int, list[DataEntry], list[TocEntry]]:
    """The archive's version, its offset size, the entries that announce a data block,
    in order, and every entry."""
    if c.take(5) != MAGIC:
        raise ArchiveError("it does not start as a pg_dump custom-format archive")
    major, minor = c.byte(), c.byte()
    version = (major, minor)
    if major > 1 or minor > 0:
        c.byte()  # revision
    if not OLDEST <= version <= NEWEST:
        raise ArchiveError(f"archive version {major}.{minor} is not one offsite reads")
    c.int_size = c.byte()
    if c.int_size not in (4, 8):
        raise ArchiveError(f"an integer size of {c.int_size}")
    offset_size = c.byte()
    if offset_size not in (4, 8):
        raise ArchiveError(f"an offset size of {offset_size}")
    if c.byte() != 1:
        raise ArchiveError("it is not in the custom format")
    compression = c.byte() if version >= (1, 15) else c.int()
    if compression != 0:
        raise ArchiveError("it is compressed (pg_dump --compress=0 is what offsite runs)")
    for _ in range(7):  # the creation date
        c.int()
    for _ in range(3):  # database name, server version, pg_dump version
        c.str()
    count = c.int()
    if count < 0:
        raise ArchiveError(f"{count} entries in its contents")
    with_data: list[DataEntry] = []
    toc: list[TocEntry] = []
    seen: set[int] = set()
    for _ in range(count):
        dump_id, had_data = c.int(), c.int()
        if dump_id <= 0 or dump_id in seen:
            raise ArchiveError(f"an entry numbered {dump_id} in its contents")
        seen.add(dump_id)
        c.str(), c.str()  # tableoid, oid
        tag, desc = c.str() or "", c.str() or ""
        section = c.int()
        c.str(), c.str()  # definition, drop statement
        copy = c.str()
        namespace = c.str() or ""
        c.str()  # tablespace
        if version >= (1, 14):
            c.str()  # table access method
        if version >= (1, 16):
            c.int()  # relkind
        c.str(), c.str()  # owner, "with oids"
        deps = []
        while (dep := c.str()) is not None:  # dependencies, ended by a NULL
            if dep.isdigit():
                deps.append(int(dep))
        flag_at = c.pos
        flag = c.byte()
        c.take(offset_size)
        if flag not in (1, 2, 3):
            raise ArchiveError(f"entry {dump_id} has a data offset flag of {flag}")
        if had_data:
            table = f"{namespace}.{tag}" if desc == "TABLE DATA" else ""
            with_data.append(DataEntry(dump_id, table, bool(table and copy), flag_at))
        toc.append(TocEntry(dump_id, desc, section, tuple(deps)))
    return version, offset_size, with_data, toc
