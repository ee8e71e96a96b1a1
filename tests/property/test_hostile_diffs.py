"""A diff is untrusted like any archive (SPEC §10, §7): generated deleted lists and diff tars
over an extracted base, whose folder holds a symlink out of the target. Whatever they name,
nothing outside the target changes: a path is removed or written inside it, or the diff
is refused (UnsafeMember, exit 1). In process: 300 cases a run."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from offsite.errors import UnsafeMember
from offsite.stream import safetar
from tests.property.test_untrusted_input import PROPERTY

PARTS = st.sampled_from(["dir", "file", "link", "..", ".", "", "x", "dir/link", "/"])
PATHS = st.lists(PARTS, min_size=1, max_size=4).map("/".join)


def _base(root: Path, outside: Path) -> None:
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "sub").chmod(0o700)
    os.utime(root / "dir" / "sub", ns=(10**18, 10**18))
    (root / "dir" / "kept").write_text("kept")
    (root / "file").write_text("file")
    os.symlink(outside, root / "link")
    os.symlink(outside, root / "dir" / "link")


def _snapshot(folder: Path) -> dict[str, object]:
    """Files' bytes, and folders' modes and mtimes: what a diff must not change outside."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file()
        else (p.stat().st_mode, p.stat().st_mtime_ns)
        for p in [folder, *folder.rglob("*")]
    }  # fmt: skip


def _tar(members: list[tuple[str, str]], outside: Path) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, str(outside)
                tar.addfile(info)
            else:
                info.size = 5
                tar.addfile(info, io.BytesIO(b"owned"))
    data.seek(0)
    return data


@PROPERTY(300)
@given(
    deleted=st.lists(PATHS, max_size=4),
    members=st.lists(st.tuples(PATHS, st.sampled_from(["file", "dir", "link"])), max_size=4),
)
def test_a_diff_never_changes_anything_outside_its_target(
    deleted: list[str], members: list[tuple[str, str]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outside, root = Path(tmp, "outside"), Path(tmp, "root")
        outside.mkdir()
        root.mkdir()
        (outside / "precious").write_text("precious")
        (outside / "kept").write_text("outside's")
        (outside / "sub").mkdir()  # what a base's dir/sub would be put back onto
        _base(root, outside)
        before = _snapshot(outside)
        try:
            folders = safetar.open_folders(root)
            safetar.remove(root, deleted, "e", folders)
            safetar.extract(_tar(members, outside), root, "e", lambda _: None, over=folders)
        except UnsafeMember:
            pass
        assert _snapshot(outside) == before
        assert sorted(p.name for p in outside.iterdir()) == ["kept", "precious", "sub"]
