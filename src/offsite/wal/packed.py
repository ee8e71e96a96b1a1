"""A WAL file as the archive stores it: a zstd skippable frame holding offsite's record of
the plain file (its SHA-256 and size, its name and cluster, when it was pushed; ``zstd -d``
passes over it), then the file compressed, with zstd's own checksum. The record names the
file and its cluster, so a stored file copied under another name is refused when fetched;
its push time, sealed with the file, is what the monitor judges freshness by."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import time
from dataclasses import dataclass

SKIPPABLE = 0x184D2A50  # a zstd skippable frame's magic number
TAG = b"offsite-wal 1\n"
MAX_FILE = 1 << 30  # PostgreSQL's largest WAL segment
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Record:
    """What a stored file says of its plain content, and what it is."""

    sha256: str
    size: int
    name: str
    system_id: str
    pushed: int | None = None  # when it was pushed (Unix seconds): the monitor's freshness


def pack(plain: bytes, name: str, system_id: str) -> bytes:
    """The record frame, then ``plain`` compressed. The record names the file and its
    cluster, so a stored file copied under another name is refused when fetched."""
    import zstandard

    record = TAG + json.dumps(
        {"sha256": hashlib.sha256(plain).hexdigest(), "size": len(plain), "name": name,
         "system_id": system_id, "pushed": int(time.time())}
    ).encode()  # fmt: skip
    frame = struct.pack("<II", SKIPPABLE, len(record)) + record
    return frame + zstandard.ZstdCompressor(level=3, write_checksum=True).compress(plain)


def record_of(packed: bytes) -> tuple[Record, int]:
    """The record a packed file starts with, and where its compressed content starts;
    ValueError when there is none."""
    if len(packed) < 8:
        raise ValueError("it is too short")
    magic, length = struct.unpack_from("<II", packed)
    if magic != SKIPPABLE or length > 4096 or packed[8 : 8 + len(TAG)] != TAG:
        raise ValueError("it does not start with offsite's record")
    try:
        fields = json.loads(packed[8 + len(TAG) : 8 + length])
        sha256, size = fields["sha256"], fields["size"]
        name, system_id = str(fields["name"]), str(fields["system_id"])
    except (ValueError, KeyError, TypeError):
        raise ValueError("its record does not parse") from None
    if not (isinstance(sha256, str) and _SHA256.match(sha256)):
        raise ValueError("its record has no SHA-256")
    if not (isinstance(size, int) and 0 <= size <= MAX_FILE):
        raise ValueError("its record has no size")
    pushed = fields.get("pushed")  # an older offsite's records have none
    if not (pushed is None or (isinstance(pushed, int) and pushed >= 0)):
        raise ValueError("its record has a push time that is not one")
    return Record(sha256, size, name, system_id, pushed), 8 + length


def unpack(packed: bytes, name: str, system_id: str) -> bytes:
    """The plain file ``name`` of cluster ``system_id``, checked against its record;
    ValueError saying what is wrong."""
    return unpack_record(packed, name, system_id)[0]


def unpack_record(packed: bytes, name: str, system_id: str) -> tuple[bytes, Record]:
    """``unpack``, and the record that the plain file matched."""
    import zstandard

    record, start = record_of(packed)
    if (record.name, record.system_id) != (name, system_id):
        raise ValueError(f"it is {record.name} of cluster {record.system_id}, stored here")
    reader = zstandard.ZstdDecompressor().stream_reader(packed[start:], read_across_frames=True)
    try:  # a frame may claim any size: never more than the record's is read
        plain = reader.read(record.size + 1)
    except zstandard.ZstdError as exc:
        raise ValueError(f"it does not decompress ({exc})") from None
    if len(plain) != record.size or hashlib.sha256(plain).hexdigest() != record.sha256:
        raise ValueError("its content does not match its recorded SHA-256")
    return plain, record
