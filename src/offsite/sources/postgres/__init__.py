"""PostgreSQL, one concern a module: ``conn`` (reaching the server, finding client tools),
``rows`` (counting rows in a dump's SQL and in a database), ``dump`` (a database's
``pg_dump``, checked as it streams, and its restore), ``globals`` (roles and tablespaces),
``basebackup`` (the cluster's base backup for point-in-time recovery), ``basecheck`` (its tar
walked and checked against its manifest as it streams), ``recovery`` (its restore, set up to
recover), ``archive`` (a custom-format dump read as it streams), ``parallel``
(``pg_restore --jobs``), ``staging`` (its staged dump, handed to loaders as it grows),
``scratch`` (a throwaway server for drills)."""

from offsite.sources.postgres.basebackup import PgBaseSource
from offsite.sources.postgres.conn import Conn, server_major, tool
from offsite.sources.postgres.dump import PgRestorer, PostgresSource
from offsite.sources.postgres.globals import PgGlobalsSource
from offsite.sources.postgres.rows import CopyCounter, count_rows

__all__ = [
    "Conn",
    "CopyCounter",
    "PgBaseSource",
    "PgGlobalsSource",
    "PgRestorer",
    "PostgresSource",
    "count_rows",
    "server_major",
    "tool",
]
