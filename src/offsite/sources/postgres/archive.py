"""The self-check of a PostgreSQL dump, read as it streams by: pg_dump's custom format
(``-Fc -Z0``), parsed and checked block by block, with the rows of each table counted.

What it proves, as ``pg_restore --file=-`` did before it (bench/RESULTS.md says why it
was replaced: rendering the dump as SQL and parsing that took more CPU than compression):
- the header and the whole table of contents parse (magic, a version offsite knows, no
  compression, every entry's fields);
- after it come exactly the data blocks the contents announce, in their order, each one
  framed whole: chunk lengths, large objects, and for a table's COPY data the end marker
  ``\\.``; the stream ends right after the last block. A dump cut anywhere, even at a
  block's edge, or with anything appended, fails: pg_restore accepts trailing bytes;
- rows per table: the COPY lines of its block (pg_dump 11 to 17 write one chunk per row;
  for a newer archive the lines are counted in the bytes).

Format: ``src/bin/pg_dump/pg_backup_archiver.c`` (``ReadHead``, ``ReadToc``) and
``pg_backup_custom.c``: integers are a sign byte and ``intSize`` bytes, little-endian;
strings an integer length (-1: NULL) and the bytes. Written to a pipe, the contents come
first and the data blocks after, in the contents' order. The header and the contents are
``toc.py``'s; the blocks after them are walked here.
"""

from __future__ import annotations

import struct
from typing import Callable, Protocol

from offsite.sources.postgres.toc import (
    MAX_CONTENTS,
    ArchiveError,
    Cursor,
    DataEntry,
    NeedMore,
    TocEntry,
    read_contents,
)
from offsite.stream.readers import Readable

ONE_CHUNK_A_ROW = (1, 16)  # up to here a COPY row is one chunk; past it, lines are counted
BLK_DATA, BLK_BLOBS = 1, 3
END_OF_COPY = b"\\.\n\n\n"  # the end marker pg_dump writes after a table's COPY rows


class ArchiveCheck:
    """Feed it the dump's bytes in order (``feed``), then ``finish``: the rows per table,
    or ``ArchiveError``. Memory: the contents, and a few bytes across chunk edges."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self._head: bytearray | None = bytearray()  # until the contents are parsed
        self._tried = 0
        self._expected: list[DataEntry] = []
        self._next = 0  # index of the next expected block
        self._entry: DataEntry | None = None  # the block being read
        self._in_blob = False
        self._state = "block"  # block | chunk | payload | oid
        self._remaining = 0  # payload bytes still to come
        self._carry = b""  # the start of a header cut by a chunk edge
        self._chunks = 0  # of the current block
        self._lines = 0
        self._tail = b""  # the last bytes of the current block's last chunk
        self._count_lines = False
        self._int = struct.Struct("<BI")
        self._int_size = 4
        self._offset_size = 8
        self._base = 0  # the stream offset of the piece ``_blocks`` reads
        self._carry_at = 0  # the stream offset of the carried header's first byte
        self._starts: list[int] = []  # each data block's stream offset, in order
        self.read = 0
        self.contents_end: int | None = None  # where the data blocks start, once known
        self.toc: list[TocEntry] = []  # every entry of the contents, once parsed

    # -- the contents -------------------------------------------------------------------
    def _parse_head(self, final: bool) -> bytes | None:
        """The bytes after the contents once they are parsed, else None."""
        assert self._head is not None
        if len(self._head) > MAX_CONTENTS:
            raise ArchiveError(f"its table of contents is larger than {MAX_CONTENTS >> 20} MiB")
        # parsed again only once half as much again has come: linear, not quadratic
        if not final and self._tried and len(self._head) < self._tried * 3 // 2:
            return None
        self._tried = len(self._head)
        cursor = Cursor(self._head)
        try:
            version, self._offset_size, self._expected, self.toc = read_contents(cursor)
        except NeedMore:
            if final:
                raise ArchiveError(self._where("inside its table of contents")) from None
            return None
        self._int_size = cursor.int_size
        self._int = struct.Struct("<BI" if cursor.int_size == 4 else "<BQ")
        self._count_lines = version > ONE_CHUNK_A_ROW
        rest = bytes(self._head[cursor.pos :])
        self._base = self.contents_end = cursor.pos
        self._head = None
        return rest

    # -- the data blocks ----------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.read += len(data)
        if self._head is not None:
            self._head += data
            rest = self._parse_head(final=False)
            if rest is None:
                return
            data = rest
        else:
            self._base = self.read - len(data)
        self._blocks(data)

    def _header(self, data: bytes, pos: int, size: int) -> tuple[bytes, int] | None:
        """``size`` header bytes starting at ``pos`` (after any carried ones), or None
        when the chunk ends first (they are carried to the next one)."""
        need = size - len(self._carry)
        if not self._carry:
            self._carry_at = self._base + pos
        if len(data) - pos < need:
            self._carry += data[pos:]
            return None
        header = self._carry + data[pos : pos + need]
        self._carry = b""
        return header, pos + need

    def _blocks(self, data: bytes) -> None:
        pos, end = 0, len(data)
        hsize = 1 + self._int_size
        unpack = self._int.unpack_from
        while pos < end:
            state = self._state
            if state == "payload":
                take = min(self._remaining, end - pos)
                if self._count_lines and self._entry is not None and self._entry.copy:
                    self._lines += data.count(b"\n", pos, pos + take)
                keep = len(END_OF_COPY)
                self._tail = (self._tail + data[max(pos, pos + take - keep) : pos + take])[-keep:]
                self._remaining -= take
                pos += take
                if self._remaining == 0:
                    self._state = "chunk"
                continue
            if state == "chunk" and not self._carry and not self._count_lines:
                # the fast path: whole chunks inside this piece of the stream
                chunks = 0
                while pos + hsize <= end:
                    sign, length = unpack(data, pos)
                    stop = pos + hsize + length
                    if sign or length == 0 or stop > end:
                        break
                    chunks += 1
                    pos = stop
                if chunks:
                    self._chunks += chunks
                    self._tail = data[max(pos - len(END_OF_COPY), 0) : pos]
                    continue
            if state == "block":
                got = self._header(data, pos, 1 + hsize)
                if got is None:
                    return
                header, pos = got
                self._start_block(header[0], self._signed(header[1:]))
                self._starts.append(self._carry_at)
                continue
            got = self._header(data, pos, hsize)
            if got is None:
                return
            header, pos = got
            value = self._signed(header)
            if state == "oid":
                if value == 0:
                    self._end_block()
                elif value < 0:
                    raise ArchiveError(self._where(f"a large object numbered {value}"))
                else:
                    self._state = "chunk"
                continue
            # a chunk's length
            if value < 0:
                raise ArchiveError(self._where(f"a chunk of {value} bytes"))
            if value == 0:
                if self._in_blob:
                    self._state = "oid"
                else:
                    self._end_block()
                continue
            self._chunks += 1
            self._remaining = value
            self._tail = b""
            self._state = "payload"

    def _signed(self, raw: bytes) -> int:
        sign = raw[0]
        if sign not in (0, 1):
            raise ArchiveError(self._where(f"a sign byte of {sign}"))
        value = int.from_bytes(raw[1:], "little")
        return -value if sign else value

    def _start_block(self, kind: int, dump_id: int) -> None:
        if self._next >= len(self._expected):
            raise ArchiveError(self._where("more data after its last block"))
        expected = self._expected[self._next]
        if dump_id != expected.dump_id:
            raise ArchiveError(
                self._where(f"block {dump_id} where its contents announce {expected.dump_id}")
            )
        if kind not in (BLK_DATA, BLK_BLOBS):
            raise ArchiveError(self._where(f"a block of unknown type {kind}"))
        self._entry, self._in_blob = expected, kind == BLK_BLOBS
        self._chunks = self._lines = 0
        self._tail = b""
        self._state = "oid" if self._in_blob else "chunk"

    def _end_block(self) -> None:
        entry = self._entry
        assert entry is not None
        if entry.copy:
            if self._tail != END_OF_COPY:
                raise ArchiveError(f"the COPY data of {entry.table} ends without its end marker")
            rows = self._lines - 3 if self._count_lines else self._chunks - 1
            self.rows[entry.table] = self.rows.get(entry.table, 0) + rows
        self._next += 1
        self._entry = None
        self._state = "block"

    def _where(self, what: str) -> str:
        return f"{what} (byte {self.read} of the dump)"

    def finish(self) -> dict[str, int]:
        """The rows per table, once the stream ended where a whole dump ends."""
        if self._head is not None:
            rest = self._parse_head(final=True)
            assert rest is not None
            self._blocks(rest)
        if self._state != "block" or self._carry:
            raise ArchiveError(self._where("it ends inside a data block"))
        if self._next < len(self._expected):
            missing = len(self._expected) - self._next
            raise ArchiveError(self._where(f"it ends {missing} data block(s) early"))
        return dict(sorted(self.rows.items()))

    def begun(self, since: int = 0) -> list[tuple[int, int]]:
        """The data blocks whose header has passed, from the ``since``-th on: each one's
        entry number and stream offset. A block ends where the next one begins, or where
        the stream ends."""
        starts = self._starts[since:]
        return [(entry.dump_id, start) for entry, start in zip(self._expected[since:], starts)]

    def starts(self) -> dict[str, int]:
        """After ``finish``: each data block's stream offset by its entry number, as a
        backup records them (``data_offsets``), so that a restore need not walk the
        dump's chunks to find them (``known_starts``)."""
        return {str(e.dump_id): start for e, start in zip(self._expected, self._starts)}

    def known_starts(self, recorded: object) -> bool:
        """Once the contents are parsed: take the blocks' offsets a backup recorded
        instead of walking the chunks to them. False, and nothing taken, unless they name
        exactly the blocks the contents announce, in order, after the contents, each
        further on than the one before (else the restore walks the dump as before)."""
        if self._head is not None or self.contents_end is None or not isinstance(recorded, dict):
            return False
        starts: list[int] = []
        last = self.contents_end - 1
        for entry in self._expected:
            start = recorded.get(str(entry.dump_id))
            if not isinstance(start, int) or isinstance(start, bool) or start <= last:
                return False
            starts.append(start)
            last = start
        if len(recorded) != len(starts):
            return False
        self._starts = starts
        return True

    def offsets(self) -> list[tuple[int, bytes]]:
        """After ``finish``: where each data block's offset is stored in the contents and
        the bytes to store there (flag 2, "set", and the block's position). A dump written
        to a pipe has none; ``pg_restore --jobs`` reading a file that lacks them scans it
        from the start for every table, so a restore writes them into its staged copy."""
        return [
            (entry.flag_at, b"\x02" + start.to_bytes(self._offset_size, "little"))
            for entry, start in zip(self._expected, self._starts)
        ]


class Feeds(Protocol):
    def feed(self, data: bytes) -> None: ...


class CheckingReader:
    """``inner`` as it is, every byte fed to a check on the way."""

    def __init__(self, inner: Readable, check: Feeds) -> None:
        self._inner, self.check = inner, check

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        if data:
            self.check.feed(data)
        return data

    def close(self) -> None:
        self._inner.close()


class SelfChecked(CheckingReader):
    """A dump's bytes through its check: a break the check finds (an exception of
    ``breaks``) fails the entry with ``fail``, one line, no traceback."""

    def __init__(
        self,
        inner: Readable,
        check: Feeds,
        fail: Callable[[str], Exception],
        breaks: tuple[type[Exception], ...] = (ArchiveError,),
    ) -> None:
        super().__init__(inner, check)
        self._fail, self._breaks = fail, breaks

    def read(self, size: int = -1, /) -> bytes:
        try:
            return super().read(size)
        except self._breaks as exc:
            raise self._fail(f"self-check failed: {exc}") from None
