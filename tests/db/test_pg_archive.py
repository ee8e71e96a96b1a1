"""The PostgreSQL dump's self-check (``sources/postgres/archive.py``) against real dumps of
a throwaway server: it counts what pg_restore renders, and fails every damaged stream."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from offsite.sources.postgres import CopyCounter
from offsite.sources.postgres.archive import ArchiveCheck
from offsite.sources.postgres.toc import ArchiveError
from tests.db.test_postgres import make_db
from tests.servers import PG_PASSWORD, Postgres, pg_bin


def _dump(pg: Postgres, database: str, *extra: str) -> bytes:
    """What pg_dump writes to a pipe (not seekable, as offsite reads it)."""
    argv = [pg_bin("pg_dump") or "pg_dump", "-Fc", *extra, "-d",
            f"postgresql://{pg.user}@127.0.0.1:{pg.port}/{database}"]  # fmt: skip
    done = subprocess.run(
        " ".join(f"'{a}'" for a in argv) + " | cat", shell=True, check=True,
        capture_output=True, env={"PGPASSWORD": PG_PASSWORD, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return done.stdout


def _rendered_rows(pg: Postgres, dump: bytes) -> dict[str, int]:
    """Rows per table as pg_restore renders them (the check this one replaced)."""
    sql = subprocess.run([pg_bin("pg_restore") or "pg_restore", "--file=-"], input=dump,
                         capture_output=True, check=True).stdout  # fmt: skip
    counter = CopyCounter()
    counter.feed(sql)
    return counter.rows


def _check(data: bytes, piece: int) -> dict[str, int]:
    check = ArchiveCheck()
    for i in range(0, len(data), piece):
        check.feed(data[i : i + piece])
    return check.finish()


@pytest.fixture(scope="module")
def dumped(pg: Postgres) -> bytes:
    database = make_db(pg, rows=3000)  # odd names, an empty table, a large object
    pg.sql(database, "CREATE TABLE public.wide AS SELECT g, repeat('w', 70000) AS big "
                     "FROM generate_series(1, 3) g;")  # rows longer than 64 KiB  # fmt: skip
    return _dump(pg, database, "-Z0")


@pytest.mark.parametrize("piece", [1, 5, 6, 7, 64, 4099, 1 << 20])
def test_rows_are_what_pg_restore_renders_whatever_the_pieces(
    pg: Postgres, dumped: bytes, piece: int
) -> None:
    rows = _check(dumped, piece)
    assert rows == _rendered_rows(pg, dumped)
    assert rows["Audit Log.order events"] == 3000 and rows["public.empty_table"] == 0
    assert rows["public.wide"] == 3


def test_every_cut_fails(dumped: bytes) -> None:
    """A dump cut anywhere fails, at a block's edge too (pg_restore would pass some)."""
    cuts = sorted({*random.Random(7).sample(range(1, len(dumped)), 300), len(dumped) - 1})
    for cut in cuts:
        with pytest.raises(ArchiveError):
            _check(dumped[:cut], 4096)


def test_appended_bytes_and_flipped_framing_fail(dumped: bytes) -> None:
    with pytest.raises(ArchiveError, match=r"more data after its last block|ends inside"):
        _check(dumped + b"\x01\x00\x00\x00\x00", 4096)
    with pytest.raises(ArchiveError):
        _check(dumped + b"x", 4096)
    with pytest.raises(ArchiveError, match="does not start"):
        _check(b"PGDMQ" + dumped[5:], 4096)
    # a block's header changed: an unknown type, or a block the contents do not announce
    first = _data_start(dumped)
    for index, value in ((first, 7), (first + 2, 99)):
        broken = bytearray(dumped)
        broken[index] = value
        with pytest.raises(ArchiveError):
            _check(bytes(broken), 4096)


def test_a_compressed_dump_is_refused_not_misread(pg: Postgres, dumped: bytes) -> None:
    database = make_db(pg, rows=10)
    with pytest.raises(ArchiveError, match="compressed"):
        _check(_dump(pg, database), 4096)  # pg_dump's default: zlib


def _data_start(dump: bytes) -> int:
    """Where the first data block starts: the shortest prefix whose contents parse."""
    for i in range(1, len(dump)):
        probe = ArchiveCheck()
        probe.feed(dump[:i])
        if probe._head is None:
            return i
    raise AssertionError("no data block")


def test_offsets_make_a_pipe_dump_what_pg_dump_writes_to_a_file(
    pg: Postgres, tmp_path: Path
) -> None:
    """restore --jobs stores each block's position in its staged copy: then it is, but for
    the creation date, byte for byte the dump pg_dump writes to a seekable file."""
    database = make_db(pg, rows=500)
    piped = _dump(pg, database, "-Z0")
    path = tmp_path / "file.pgdump"
    subprocess.run([pg_bin("pg_dump") or "pg_dump", "-Fc", "-Z0", "-f", str(path), "-d",
                    f"postgresql://{pg.user}@127.0.0.1:{pg.port}/{database}"],
                   check=True, env={"PGPASSWORD": PG_PASSWORD})  # fmt: skip
    seekable = path.read_bytes()
    check = ArchiveCheck()
    check.feed(piped)
    check.finish()
    patched = bytearray(piped)
    for where, stored in check.offsets():
        patched[where : where + len(stored)] = stored
    assert len(patched) == len(seekable)
    differ = [i for i in range(len(seekable)) if patched[i] != seekable[i]]
    assert all(i < 80 for i in differ), differ[:20]  # the header's date and time only
    assert [i for i in range(len(piped)) if piped[i] != seekable[i] and i >= 80]  # it did work


def test_recorded_offsets_are_taken_only_when_they_are_the_blocks_own(dumped: bytes) -> None:
    """A restore takes the data blocks' offsets from the manifest instead of walking the
    chunks to them only when they name exactly the blocks the contents announce, in order,
    after the contents; any other list leaves the walk in charge."""
    walked = ArchiveCheck()
    walked.feed(dumped)
    walked.finish()
    starts = walked.starts()
    assert len(starts) >= 2 and list(starts.values()) == sorted(starts.values())

    def taken(recorded: object) -> ArchiveCheck | None:
        check = ArchiveCheck()
        check.feed(dumped[: _data_start(dumped)])
        return check if check.known_starts(recorded) else None

    check = taken(dict(starts))
    assert check is not None and check.offsets() == walked.offsets()
    first, second = list(starts)[:2]
    wrong = [
        {**starts, first: starts[second]},  # not increasing
        {**starts, first: 3},  # inside the contents
        {k: v for k, v in starts.items() if k != first},  # one missing
        {**starts, "999999": starts[second] + 1},  # one more than announced
        {**starts, first: True},  # not a number
        list(starts.values()),
        None,
    ]
    assert all(taken(recorded) is None for recorded in wrong)
