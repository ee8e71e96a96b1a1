"""The check of a base backup as it streams by (SPEC §8): pg_basebackup's tar, walked.

The check reads the whole tar: every member's header (with its checksum) and bytes, each
regular file's SHA-256, and the ``backup_manifest`` pg_basebackup appends to a tar it
writes to standard output. Every file the manifest lists must be there with its size
and SHA-256 (``--manifest-checksums=SHA256``), the manifest's own checksum must hold,
and nothing may be in the tar that the manifest does not list (but WAL, in the
self-contained mode). PostgreSQL 15's ``pg_verifybackup`` cannot read a tar, so this is
that check, done as the bytes stream by. ``finish`` gives the system identifier (the
first field of ``global/pg_control``), the timeline, the start and stop LSN, and the
start and stop time.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from datetime import datetime, timezone
from typing import Any

from offsite.errors import BadInput
from offsite.wal.names import lsn_value

BLOCK = 512
# what is kept of a few members: the manifest whole (about 170 bytes a file, so 256 MiB is
# 1.5 M files), the label, pg_control's head
KEEP = {"backup_manifest": 256 << 20, "backup_label": 1 << 16, "global/pg_control": 16}


class TarError(ValueError):
    pass


class BaseBackupCheck:
    """Feed it the tar's bytes in order, then ``finish``: the stats, or TarError."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._member: str | None = None
        self._remaining = 0  # bytes of the current member still to come
        self._padding = 0
        self._hash: Any = None
        self._size = 0
        self._kept: bytearray | None = None
        self._ended = False
        self.files: dict[str, tuple[int, str]] = {}  # regular file: (size, sha256)
        self.kept: dict[str, bytes] = {}

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._remaining:
                take = min(self._remaining, len(view))
                piece = view[:take]
                self._hash.update(piece)
                if self._kept is not None and len(self._kept) < KEEP[self._member or ""]:
                    self._kept += piece
                self._remaining -= take
                view = view[take:]
                if not self._remaining:
                    self._end_member()
                continue
            if self._padding:
                take = min(self._padding, len(view))
                if any(view[:take]):
                    raise TarError("a member's padding is not zeros")
                self._padding -= take
                view = view[take:]
                continue
            need = BLOCK - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) == BLOCK:
                header, self._buf = bytes(self._buf), bytearray()
                self._header(header)

    def _header(self, header: bytes) -> None:
        if self._ended:
            if header.strip(b"\0"):
                raise TarError("bytes after the end of the archive")
            return
        if not header.strip(b"\0"):
            self._ended = True
            return
        computed = sum(header[:148]) + 8 * 32 + sum(header[156:])
        if _octal(header[148:156]) != computed:
            raise TarError("a member header's checksum does not match")
        name = header[:100].rstrip(b"\0").decode("utf-8", "surrogateescape")
        prefix = header[345:500].rstrip(b"\0").decode("utf-8", "surrogateescape")
        if prefix:
            name = f"{prefix}/{name}"
        kind = header[156:157]
        size = _octal(header[124:136])
        if size < 0:
            raise TarError(f"member {name!r} has no readable size")
        if kind in (b"0", b"\0"):
            self._member = name.removeprefix("./")
            self._remaining, self._size = size, size
            self._padding = -size % BLOCK
            self._hash = hashlib.sha256()
            self._kept = bytearray() if self._member in KEEP else None
            if not size:
                self._end_member()
        elif size:
            raise TarError(f"member {name!r} of type {kind!r} has data")

    def _end_member(self) -> None:
        assert self._member is not None
        self.files[self._member] = (self._size, self._hash.hexdigest())
        if self._kept is not None:
            self.kept[self._member] = bytes(self._kept)
        self._member, self._kept = None, None

    def finish(self) -> dict[str, Any]:
        try:
            return self._finish()
        except (KeyError, TypeError, ValueError, AttributeError, BadInput) as exc:
            if isinstance(exc, TarError):
                raise
            detail = exc.message() if isinstance(exc, BadInput) else repr(exc)
            raise TarError(f"its backup_manifest is not PostgreSQL's: {detail}") from None

    def _finish(self) -> dict[str, Any]:
        if self._remaining or self._buf or not self._ended:
            raise TarError("the archive ends early")
        raw = self.kept.get("backup_manifest")
        if raw is None:
            raise TarError("no backup_manifest at its end")
        manifest = _manifest(raw)
        listed = {_path_of(f): f for f in manifest["Files"]}
        for path, entry in listed.items():
            found = self.files.get(path)
            if found is None:
                raise TarError(f"{path} is in the manifest, not in the backup")
            if found[0] != entry.get("Size") or found[1] != entry.get("Checksum"):
                raise TarError(f"{path} does not match its manifest entry")
        extra = [
            p for p in self.files if p not in listed and p != "backup_manifest"
            and not p.startswith("pg_wal/")
        ]  # fmt: skip
        if extra:
            raise TarError(f"{extra[0]} is in the backup but not in its manifest")
        control = self.kept.get("global/pg_control", b"")
        if len(control) < 8:
            raise TarError("no global/pg_control")
        ranges = manifest["WAL-Ranges"]
        label = self.kept.get("backup_label", b"").decode("utf-8", "replace")
        started = re.search(r"^START TIME: (.+)$", label, re.M)
        stats: dict[str, Any] = {  # numbers only, as every entry's stats (the schema)
            "system_id": struct.unpack("<Q", control[:8])[0],
            "timeline": int(ranges[-1]["Timeline"]),
            "start_lsn": lsn_value(str(ranges[0]["Start-LSN"])),
            "stop_lsn": lsn_value(str(ranges[-1]["End-LSN"])),
            "stop_time": int(datetime.now(timezone.utc).timestamp()),
            "files": len(self.files),
            "wal_included": any(p.startswith("pg_wal/") for p in self.files),
        }
        begun = _label_time(started.group(1)) if started else None
        if begun is not None:
            stats["start_time"] = begun
        return stats


def _octal(field: bytes) -> int:
    """A tar header's octal number; -1 when it is not one."""
    text = field.strip(b"\0 ")
    try:
        return int(text, 8) if text else -1
    except ValueError:
        return -1


def _path_of(entry: dict[str, Any]) -> str:
    """A manifest file's path: ``Path``, or for a name that is not UTF-8 ``Encoded-Path``
    (hex), as the tar's names are read (surrogate escapes for such bytes)."""
    if "Path" in entry:
        return str(entry["Path"])
    return bytes.fromhex(str(entry["Encoded-Path"])).decode("utf-8", "surrogateescape")


def _manifest(raw: bytes) -> dict[str, Any]:
    """backup_manifest, its own checksum checked (SHA-256 of all before that line)."""
    cut = raw.rfind(b'"Manifest-Checksum"')
    line_start = raw.rfind(b"\n", 0, cut) + 1
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise TarError("its backup_manifest does not parse") from None
    want = manifest.get("Manifest-Checksum") if isinstance(manifest, dict) else None
    if cut < 0 or hashlib.sha256(raw[:line_start]).hexdigest() != want:
        raise TarError("its backup_manifest's checksum does not match")
    files, ranges = manifest.get("Files"), manifest.get("WAL-Ranges")
    if not isinstance(files, list) or not isinstance(ranges, list) or not ranges:
        raise TarError("its backup_manifest lists no files or no WAL range")
    if any(f.get("Checksum-Algorithm") != "SHA256" for f in files):
        raise TarError("its backup_manifest has no SHA-256 checksums")
    return dict(manifest)


def _label_time(text: str) -> int | None:
    """backup_label's ``2026-11-26 16:30:22 UTC`` in seconds since the epoch (UTC only)."""
    found = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (UTC|GMT)$", text.strip())
    if not found:
        return None
    when = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(when.timestamp())
