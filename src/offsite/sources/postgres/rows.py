"""Rows per table: counted in a dump's SQL (the COPY blocks ``pg_restore --file=-`` prints,
for a pg_dump newer than ``archive`` reads) and counted in a database, so a drill can hold
the two against each other."""

from __future__ import annotations

from offsite.sources.postgres.conn import Conn
from offsite.sources.process import ErrorFactory

SYSTEM_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp'"
)
# Tables whose rows a dump holds: ordinary tables and partitions (partitioned parents hold
# none), minus tables that belong to an extension.
TABLES = f"""
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {SYSTEM_SCHEMAS}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""
USER_OBJECTS = f"""
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {SYSTEM_SCHEMAS})
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {SYSTEM_SCHEMAS})
     + (SELECT count(*) FROM pg_largeobject_metadata)
"""


def _identifiers(text: str) -> list[str]:
    """The dotted identifiers at the start of ``text``: '"My S"."t" (a)' → ['My S', 't']."""
    names: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == '"':
            j, name = i + 1, []
            while j < len(text):
                if text[j] == '"':
                    if text[j + 1 : j + 2] == '"':
                        name.append('"')
                        j += 2
                        continue
                    break
                name.append(text[j])
                j += 1
            names.append("".join(name))
            i = j + 1
        else:
            j = i
            while j < len(text) and text[j] not in ". (":
                j += 1
            names.append(text[i:j])
            i = j
        if text[i : i + 1] != ".":
            break
        i += 1
    return names


class CopyCounter:
    """Counts the data lines of each ``COPY … FROM stdin;`` block in pg_restore's SQL."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self._buf = b""  # always starts at the beginning of a line
        self._table: str | None = None
        self._count = 0

    def feed(self, chunk: bytes) -> None:
        buf = self._buf + chunk
        pos = 0
        while pos < len(buf):
            if self._table is None:
                start = pos if buf.startswith(b"COPY ", pos) else buf.find(b"\nCOPY ", pos)
                if start < 0:
                    last = buf.rfind(b"\n", pos)
                    pos = last + 1 if last >= 0 else pos
                    break
                start += 0 if start == pos and buf.startswith(b"COPY ", pos) else 1
                end = buf.find(b"\n", start)
                if end < 0:
                    pos = start
                    break
                names = _identifiers(buf[start + 5 : end].decode("utf-8", "replace"))
                self._table, self._count = ".".join(names), 0
                pos = end + 1
            elif buf.startswith(b"\\.\n", pos):
                self.rows[self._table] = self._count
                self._table = None
                pos += 3
            else:
                term = buf.find(b"\n\\.\n", pos)
                if term >= 0:
                    self._count += buf.count(b"\n", pos, term + 1)
                    pos = term + 1
                    continue
                last = buf.rfind(b"\n", pos)
                if last >= 0:
                    self._count += buf.count(b"\n", pos, last + 1)
                    pos = last + 1
                break
        self._buf = buf[pos:]


def count_rows(conn: Conn, fail: ErrorFactory, database: str | None = None) -> dict[str, int]:
    """Exact rows per table, counted in the database."""
    sql = (
        "SELECT format('SELECT %L, count(*) FROM %I.%I', n || '.' || r, n, r) "
        f"FROM ({TABLES}) AS t(n, r) \\gexec\n"
    )
    out = conn.psql(sql, fail, database)
    rows: dict[str, int] = {}
    for line in out.splitlines():
        name, sep, count = line.rpartition("\x1f")
        if sep:
            rows[name] = int(count)
    return rows
