"""Hypothesis strategies for what a destination can hold: tar archives with every member
type, hostile names and links, and manifests with wrong types and deep nesting."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from typing import Any

from hypothesis import strategies as st

COMPONENTS = st.sampled_from(
    ["a", "b", "dir", "..", ".", "", "x" * 300, "\udcff\udcfe", "caf\u00e9", "-", " ", "a\nb"]
)
NAMES = st.one_of(
    st.lists(COMPONENTS, min_size=1, max_size=5).map("/".join),
    st.lists(COMPONENTS, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    st.sampled_from(["../sentinel/victim", "SENTINEL/victim", "./a", "a/./b", "a//b", "\x00a"]),
    st.text(max_size=20),
)
TYPES = st.sampled_from(
    [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
     tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"Z"]
)  # fmt: skip
MODES = st.sampled_from([0o644, 0o755, 0o4755, 0o2775, 0o1777, 0o000, 0o500, 0o7777])
FORMATS = st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])


@st.composite
def members(draw: Any, sentinel: str) -> tuple[tarfile.TarInfo, bytes]:
    name = draw(NAMES).replace("SENTINEL", sentinel)
    info = tarfile.TarInfo(name)
    info.type = draw(TYPES)
    info.mode = draw(MODES)
    info.mtime = draw(st.integers(min_value=0, max_value=2**33))
    if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = draw(NAMES).replace("SENTINEL", sentinel)
    data = draw(st.binary(max_size=64)) if info.type in tarfile.REGULAR_TYPES else b""
    info.size = len(data)
    return info, data


@st.composite
def archives(draw: Any, sentinel: str) -> bytes:
    """A tar of up to 8 members; members tarfile cannot write (a NUL, a name too long for
    the format) are left out, so every archive is one a tar tool could have made."""
    fmt = draw(FORMATS)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as tar:  # fmt: skip
        for info, data in draw(st.lists(members(sentinel), max_size=8)):
            try:
                tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
            except (ValueError, UnicodeError):
                continue
    return buf.getvalue()


@st.composite
def mangled(draw: Any, sentinel: str) -> bytes:
    """A valid archive with bytes flipped, cut or appended: headers with huge, negative and
    non-numeric sizes, bad checksums, truncated data."""
    data = bytearray(draw(archives(sentinel)))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=600))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def valid_manifest(set_id: str = "20240101T000000Z") -> dict[str, Any]:
    return {
        "id": set_id, "created_at": "2024-01-01T00:00:00Z", "finished_at": "2024-01-01T00:00:01Z",
        "entries": [{
            "name": "files", "kind": "files", "source": "/srv", "file": "files.tar",
            "size": 10, "sha256": "0" * 64, "raw_size": 10, "compression": "none",
            "encryption": {"mode": "none", "cipher": None, "recipients": []},
            "stats": {"files": 1}, "restore_hint": "tar -xf files.tar",
        }],
        "labels": {"env": "prod"}, "origin": None, "tool_version": "0.1", "format": "offsite-manifest/1",
    }  # fmt: skip


PATHS = st.sampled_from(
    [(), ("id",), ("entries",), ("labels",), ("origin",), ("format",), ("entries", 0),
     ("entries", 0, "name"), ("entries", 0, "file"), ("entries", 0, "size"),
     ("entries", 0, "sha256"), ("entries", 0, "kind"), ("entries", 0, "encryption"),
     ("entries", 0, "encryption", "mode"), ("entries", 0, "stats"), ("labels", "env")]
)  # fmt: skip
HOSTILE = st.one_of(
    JSON,
    st.sampled_from(["../../evil", "/etc/passwd", "a/b", ".hidden", "manifest.json", "\x00",
                     -1, 2**70, 1e308, "offsite-manifest/9", "29991231T000000Z", [], {}])
)  # fmt: skip


@st.composite
def manifests(draw: Any) -> str | bytes:
    """Manifest texts: a valid one with up to three fields replaced by hostile values, or
    any JSON, or deep nesting, or bytes that are not UTF-8."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        depth = draw(st.sampled_from([10, 1000, 100_000]))
        return "[" * depth + "]" * depth
    if kind == 1:
        return json.dumps(draw(JSON))
    if kind == 2:
        return draw(st.binary(max_size=200))
    data = valid_manifest()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(PATHS)
        value = copy.deepcopy(draw(HOSTILE))  # sampled values are shared objects
        if not path:
            data = value
            break
        target: Any = data
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass
    return json.dumps(data, ensure_ascii=draw(st.booleans()))
