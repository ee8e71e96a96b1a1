"""A tampered set cannot write outside the restore target (SPEC §7): crafted archives
built here, restored through the CLI, with a sentinel outside the target that must not
change at all (bytes, mode and mtime)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from offsite.crypto.modes import Encryption
from offsite.sets.manifest import Entry, Manifest


def _store(dest: Path, payload: bytes, kind: str = "files") -> None:
    folder = dest / "20240101T000000Z"
    folder.mkdir(parents=True)
    (folder / "files.tar").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    size = len(payload)
    entry = Entry("files", kind, "/x", "files.tar", size, digest, size, "none", Encryption("none"))
    (folder / "manifest.json").write_text(
        Manifest("20240101T000000Z", "t", "t", (entry,)).to_json()
    )


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 4, mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    info.size = size if kind == tarfile.REGTYPE else 0
    return info


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _state(path: Path) -> list[tuple[str, int, int, int, bytes]]:
    """Everything about ``path`` and what is below it that a write could change."""
    found = []
    for p in [path, *sorted(path.rglob("*"))]:
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        found.append((str(p), st.st_mode, st.st_mtime_ns, st.st_nlink, data))
    return found


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    folder = tmp_path / "sentinel"
    folder.mkdir()
    (folder / "victim").write_bytes(b"precious")
    os.utime(folder / "victim", (1_000_000, 1_000_000))
    os.utime(folder, (1_000_000, 1_000_000))
    return folder


ATTACKS = [
    pytest.param(
        lambda s: _tar(
            (_member("door", tarfile.LNKTYPE, str(s / "victim")), b""),
            (_member("door"), b"pwnd"),
        ),
        id="hardlink-outside-then-write",
    ),
    pytest.param(
        lambda s: _tar(
            (_member("door", tarfile.LNKTYPE, "../sentinel/victim"), b""),
            (_member("door"), b"pwnd"),
        ),
        id="hardlink-climbing-then-write",
    ),
    pytest.param(
        lambda s: _tar(
            (_member("door", tarfile.SYMTYPE, str(s)), b""), (_member("door/victim"), b"pwnd")
        ),
        id="write-through-symlink",
    ),
    pytest.param(
        lambda s: _tar(
            (_member("door", tarfile.SYMTYPE, str(s)), b""),
            (_member("door", tarfile.DIRTYPE), b""),
            (_member("door/victim"), b"pwnd"),
        ),
        id="symlink-then-folder-of-same-name",
    ),
    pytest.param(
        lambda s: _tar(
            (_member("a/victim"), b"pwnd"), (_member("a", tarfile.SYMTYPE, str(s)), b"")
        ),
        id="folder-then-symlink-over-it",
    ),
    pytest.param(
        lambda s: _tar(
            (_member("link", tarfile.SYMTYPE, str(s / "victim")), b""),
            (_member("hard", tarfile.LNKTYPE, "link"), b""),
        ),
        id="hardlink-to-a-symlink",
    ),
    pytest.param(lambda s: _tar((_member("../sentinel/victim"), b"pwnd")), id="dot-dot"),
    pytest.param(
        lambda s: _tar((_member("a/../../sentinel/victim"), b"pwnd")), id="dot-dot-inside"
    ),
    pytest.param(lambda s: _tar((_member(str(s / "victim")), b"pwnd")), id="absolute"),
    pytest.param(
        lambda s: _tar(
            (_member("ok"), b"fine"),
            (_member("x", tarfile.LNKTYPE, "later"), b""),
            (_member("later"), b"late"),
        ),
        id="hardlink-forward",
    ),
]


@pytest.mark.parametrize("archive", ATTACKS)
def test_an_unsafe_member_fails_the_entry_and_changes_nothing(
    cli, tmp_path: Path, sentinel: Path, archive
) -> None:
    _store(tmp_path / "dest", archive(sentinel))
    before = _state(sentinel)
    work = tmp_path / "work"
    r = cli("restore", tmp_path / "dest", "--into", work / "target")
    assert r.code == 1, r.err
    assert "refusing the archive member" in r.err
    assert "Traceback" not in r.err
    assert _state(sentinel) == before
    assert not work.exists()  # nothing staged is left behind, not even the parent folder


def test_devices_fifos_and_setuid_bits_are_dropped_with_a_warning(
    cli, tmp_path: Path, sentinel: Path
) -> None:
    chr_dev = _member("null", tarfile.CHRTYPE)
    chr_dev.devmajor, chr_dev.devminor = 1, 3
    archive = _tar(
        (chr_dev, b""),
        (_member("pipe", tarfile.FIFOTYPE), b""),
        (_member("tool", mode=0o4755), b"#!/x"),
        (_member("shared", tarfile.DIRTYPE, mode=0o2775), b""),
    )
    _store(tmp_path / "dest", archive)
    target = tmp_path / "target"
    r = cli("restore", tmp_path / "dest", "--into", target)
    assert r.code == 0, r.err
    assert not os.path.lexists(target / "null") and not os.path.lexists(target / "pipe")
    assert "not creating the device node 'null'" in r.err
    assert "not creating the FIFO 'pipe'" in r.err
    assert "setuid/setgid bit of file 'tool'" in r.err
    assert stat.S_IMODE((target / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "shared").stat().st_mode) == 0o775


def test_links_inside_the_archive_are_restored(cli, tmp_path: Path, sentinel: Path) -> None:
    """A symlink may point anywhere (it is only a link), a hardlink at an earlier member."""
    before = _state(sentinel)
    archive = _tar(
        (_member("dir", tarfile.DIRTYPE, mode=0o555), b""),
        (_member("dir/data"), b"data"),
        (_member("dir/again", tarfile.LNKTYPE, "dir/data"), b""),
        (_member("out", tarfile.SYMTYPE, str(sentinel / "victim")), b""),
        (_member("dir/rel", tarfile.SYMTYPE, "data"), b""),
    )
    _store(tmp_path / "dest", archive)
    target = tmp_path / "target"
    r = cli("restore", tmp_path / "dest", "--into", target)
    assert r.code == 0, r.err
    assert (target / "dir" / "again").stat().st_ino == (target / "dir" / "data").stat().st_ino
    assert os.readlink(target / "out") == str(sentinel / "victim")
    assert os.readlink(target / "dir" / "rel") == "data"
    assert stat.S_IMODE((target / "dir").stat().st_mode) == 0o555
    assert _state(sentinel) == before
    (target / "dir").chmod(0o755)


def test_a_later_member_replaces_an_earlier_one_without_writing_through_it(
    cli, tmp_path: Path
) -> None:
    archive = _tar(
        (_member("a"), b"aaaa"),
        (_member("b", tarfile.LNKTYPE, "a"), b""),
        (_member("b"), b"bbbb"),
    )
    _store(tmp_path / "dest", archive)
    target = tmp_path / "target"
    assert cli("restore", tmp_path / "dest", "--into", target).code == 0
    assert (target / "a").read_bytes() == b"aaaa"
    assert (target / "b").read_bytes() == b"bbbb"


def test_garbage_is_not_a_tar(cli, tmp_path: Path) -> None:
    _store(tmp_path / "dest", b"\x00garbage" * 200)
    r = cli("restore", tmp_path / "dest", "--into", tmp_path / "target")
    assert r.code == 1 and "not a readable tar archive" in r.err
    assert not (tmp_path / "target").exists()
