"""Continuous archiving of PostgreSQL's write-ahead log (SPEC §8).

``offsite wal push %p`` as ``archive_command`` and ``offsite wal fetch %f %p`` as
``restore_command``: each WAL file is stored under ``wal/<system identifier>/`` in every
destination, compressed and encrypted with the archive's own data key.

May import: errors, urls, github, stream, crypto, storage, sets.
"""
