"""The local folder backend: atomic puts, listings without partial files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from offsite.errors import StorageError, UnknownScheme
from offsite.storage import known_schemes, open_storage
from offsite.storage.base import get_bytes, put_bytes
from offsite.storage.local import LocalStorage


def test_put_list_open_stat_delete(tmp_path: Path) -> None:
    s = open_storage(f"file://{tmp_path}/dest")
    assert isinstance(s, LocalStorage)
    assert put_bytes(s, "a/b.bin", b"hello") == 5
    put_bytes(s, "a/c.bin", b"")
    assert [(o.key, o.size) for o in s.list()] == [("a/b.bin", 5), ("a/c.bin", 0)]
    assert [o.key for o in s.list("a/b")] == ["a/b.bin"]
    assert get_bytes(s, "a/b.bin") == b"hello"
    info = s.stat("a/b.bin")
    assert info is not None and info.size == 5
    assert s.stat("a/nope") is None
    s.delete("a/b.bin")
    s.delete("a/c.bin")
    s.delete("a/c.bin")  # absent is fine
    assert list(s.list()) == []
    assert not (tmp_path / "dest" / "a").exists()  # empty folders go too


def test_a_failing_stream_leaves_nothing(tmp_path: Path) -> None:
    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1, /) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise OSError("network gone")
            return b"x" * 1000

        def close(self) -> None:
            pass

    s = LocalStorage(str(tmp_path))
    put_bytes(s, "keep/old.bin", b"old")
    with pytest.raises(OSError, match="network gone"):
        s.put("set/new.bin", Broken())
    assert [o.key for o in s.list()] == ["keep/old.bin"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keep", "old.bin"]


def test_partial_files_are_hidden(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / ".x.bin.partial-abcd").write_bytes(b"half")
    s = LocalStorage(str(tmp_path))
    assert list(s.list()) == []


def test_keys_cannot_escape(tmp_path: Path) -> None:
    s = LocalStorage(str(tmp_path / "d"))
    with pytest.raises(StorageError):
        s.put("../escape", io.BytesIO(b"x"))


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(UnknownScheme) as info:
        open_storage("nosuch://bucket/x")
    assert "file" in known_schemes()
    assert "known: " in info.value.message() and "file" in info.value.message()
    assert info.value.exit_code == 2


def test_the_backend_lets_out_storage_errors_only(tmp_path: Path) -> None:
    """No caller translates OSError: an absent key is ObjectMissing, anything else the
    file system refuses is a StorageError naming the destination (guard.guarded)."""
    from offsite.errors import ObjectMissing

    s = LocalStorage(str(tmp_path))
    put_bytes(s, "set/a.bin", b"a")
    with pytest.raises(ObjectMissing) as missing:
        s.open("set/none.bin")
    assert missing.value.message() == f"{tmp_path}: no object 'set/none.bin' there"
    with pytest.raises(StorageError) as raised:
        s.open("set")  # a folder, not an object
    assert not isinstance(raised.value, OSError)
    assert raised.value.message().startswith(f"{tmp_path}: ")
    with pytest.raises(StorageError) as raised:
        put_bytes(s, "set/a.bin/inside", b"x")  # a file where a folder must go
    assert raised.value.message().startswith(f"{tmp_path}: ")
    assert get_bytes(s, "set/a.bin") == b"a"


def test_a_large_object_is_whole_after_its_writing_was_started_early(tmp_path: Path) -> None:
    """Objects larger than the write-behind step are handed to the kernel as they are
    written (posix_fadvise), and still read back whole, byte for byte."""
    from offsite.storage.local import WRITE_BEHIND

    data = os.urandom(1 << 20) * (WRITE_BEHIND // (1 << 20) * 2 + 3)
    storage = open_storage(str(tmp_path))
    assert storage.put("set/big.bin", io.BytesIO(data)) == len(data)
    assert get_bytes(storage, "set/big.bin") == data
