"""The monitor: are the backups fresh, and does anyone hear when they are not.

May import: errors, names, urls, retry, github, table, crypto, storage, sets, wal.
"""
