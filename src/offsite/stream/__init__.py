"""The stream: bytes in motion, never a whole file in memory.

``readers`` holds the reader protocol and its wrappers (counting, hashing, checked), the
chunk size and a file's SHA-256; ``pipeline`` runs the stages (compress, decompress, a
source's writer, gpg) on threads joined by OS pipes, where a failed stage can never pass
for end-of-data; ``progress`` is the progress line; ``safetar`` extracts a tar stream under
the trust rules of SPEC §7. Nothing here knows sets, storage or GitHub.

May import: errors, table.
"""
