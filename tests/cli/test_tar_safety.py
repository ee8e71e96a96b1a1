"""A tampered set cannot write outside the restore target."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from offsite.manifest import Encryption, Entry, Manifest


def _tar(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _store(dest: Path, payload: bytes) -> None:
    folder = dest / "20240101T000000Z"
    folder.mkdir(parents=True)
    (folder / "files.tar").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    size = len(payload)
    entry = Entry(
        "files", "files", "/x", "files.tar", size, digest, size, "none", Encryption("none")
    )
    (folder / "manifest.json").write_text(
        Manifest("20240101T000000Z", "t", "t", (entry,)).to_json()
    )


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 4
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = size if kind == tarfile.REGTYPE else 0
    return info


def _symlink_then_write_through(outside: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_member("door", tarfile.SYMTYPE, str(outside)))
        tar.addfile(_member("door/evil"), io.BytesIO(b"pwnd"))
    return buf.getvalue()


def test_dot_dot_member_is_refused(cli, tmp_path: Path) -> None:
    _store(tmp_path / "dest", _tar(_member("../escaped"), b"pwnd"))
    target = tmp_path / "work" / "target"
    r = cli("restore", tmp_path / "dest", "--into", target)
    assert r.code == 3 and "unsafe archive member" in r.err
    assert not (tmp_path / "work" / "escaped").exists()
    assert not (tmp_path / "work").exists()  # nothing staged is left behind


def test_writing_through_a_symlink_is_refused(cli, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    _store(tmp_path / "dest", _symlink_then_write_through(outside))
    r = cli("restore", tmp_path / "dest", "--into", tmp_path / "target")
    assert r.code == 3 and "unsafe archive member" in r.err
    assert list(outside.iterdir()) == []


def test_absolute_member_lands_inside_the_target(cli, tmp_path: Path) -> None:
    escape = tmp_path / "abs-escape"
    _store(tmp_path / "dest", _tar(_member(str(escape)), b"pwnd"))
    target = tmp_path / "target"
    assert cli("restore", tmp_path / "dest", "--into", target).code == 0
    assert not escape.exists()
    assert (target / str(escape).lstrip("/")).read_bytes() == b"pwnd"
