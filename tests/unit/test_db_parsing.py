"""Counting rows from dump text, database URLs, and the drill's row comparison."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from offsite.drill import compare_rows
from offsite.errors import MalformedURL
from offsite.sources.mysql import Client, RowCounter
from offsite.sources.postgres import Conn, CopyCounter

PG_SQL = (
    b"SET statement_timeout = 0;\n"
    b'COPY "My Schema"."T ""1""" (id, "weird col") FROM stdin;\n'
    b"1\tline with \\n escaped newline\n"
    b"2\t\\\\.\n"  # a value of backslash-dot is escaped, not the end marker
    b"3\tCOPY public.fake FROM stdin;\n"
    b"\\.\n"
    b"\n"
    b"COPY public.empty (x) FROM stdin;\n"
    b"\\.\n"
    b"COPY public.plain  FROM stdin;\n"
    b"a\nb\n"
    b"\\.\n"
    b"SELECT pg_catalog.setval('s', 5, true);\n"
)
PG_ROWS = {'My Schema.T "1"': 3, "public.empty": 0, "public.plain": 2}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(PG_SQL)])
def test_copy_counter_counts_rows_whatever_the_chunking(size: int) -> None:
    counter = CopyCounter()
    for i in range(0, len(PG_SQL), size):
        counter.feed(PG_SQL[i : i + size])
    assert counter.rows == PG_ROWS


MY_SQL = (
    b"-- MariaDB dump\n"
    b"USE `shop`;\n"
    b"CREATE TABLE `t` (\n  `id` int\n);\n"
    b"INSERT INTO `t` VALUES (1,'a\\'),(b'),(2,NULL),(3,0x00FF);\n"
    b"CREATE TABLE `odd``name` (x int);\n"
    b"INSERT INTO `odd``name` VALUES\n"
    b"(1,'(('),\n"
    b"(2,'x'),\n"
    b"(3,'));');\n"
    b"CREATE TABLE `empty` (x int);\n"
    b"USE `other`;\n"
    b"CREATE TABLE `t` (x int);\n"
    b"INSERT INTO `t` VALUES (9);\n"
    b"-- Dump completed on 2024-02-16 15:00:00\n"
)


@pytest.mark.parametrize("size", [1, 5, 17, len(MY_SQL)])
def test_mysql_row_counter_reads_both_insert_layouts(size: int) -> None:
    counter = RowCounter(qualify=True)
    for i in range(0, len(MY_SQL), size):
        counter.feed(MY_SQL[i : i + size])
    assert counter.rows == {"shop.t": 3, "shop.odd`name": 3, "shop.empty": 0, "other.t": 1}
    assert b"-- Dump completed" in counter.tail


def test_postgres_connection_string_carries_no_password() -> None:
    conn = Conn.parse("postgresql://app:p%40ss%2Fword@db.example:6543/my%20db?sslmode=require")
    assert conn.conninfo() == "postgresql://app@db.example:6543/my%20db?sslmode=require"
    assert conn.env["PGPASSWORD"] == "p@ss/word"
    assert conn.label == "postgresql://app:***@db.example:6543/my%20db?sslmode=require"


def test_postgres_url_needs_a_database() -> None:
    with pytest.raises(MalformedURL, match="name a database"):
        Conn.parse("postgresql://app:secret@db.example/")


def test_bad_port_is_a_malformed_url_without_the_password() -> None:
    with pytest.raises(MalformedURL) as caught:
        Conn.parse("postgresql://app:secret@db.example:99999/x")
    assert "secret" not in caught.value.message()


def test_mysql_defaults_file_is_0600_and_quotes_the_password() -> None:
    client = Client("mysql://root:a%22b%5Cc%20d@db.example:3307/shop?ssl-ca=/etc/ca.pem")
    with client.defaults_file() as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        text = Path(path).read_text()
    assert not os.path.exists(path)
    assert 'password="a\\"b\\\\c d"' in text
    assert "port=3307" in text and 'ssl-ca="/etc/ca.pem"' in text


def test_compare_rows_reports_differences_and_missing_tables() -> None:
    expected = {"a": 1, "b": 2, "c": 3}
    assert compare_rows(expected, {"a": 1, "b": 2, "c": 3, "extra": 9}) == []
    assert compare_rows(expected, {"a": 1, "b": 5}) == [
        "table b: 5 rows, manifest says 2",
        "table c: missing after restore (3 rows expected)",
    ]
