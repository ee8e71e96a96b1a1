"""Finding sets: complete, incomplete, downloaded artifacts; allocating ids."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from offsite.crypto.modes import Encryption
from offsite.sets.manifest import Entry, Manifest
from offsite.sets.reserve import allocate_id
from offsite.sets.stored import scan, select
from offsite.storage.base import put_bytes
from offsite.storage.local import LocalStorage


def _manifest(set_id: str) -> bytes:
    entry = Entry("e", "command", "exec:x", "e.out", 1, "0" * 64, 1, "none", Encryption("none"))
    return Manifest(set_id, "t", "t", (entry,)).to_json().encode()


def test_scan_sorts_complete_and_reports_incomplete(tmp_path: Path) -> None:
    s = LocalStorage(str(tmp_path))
    for sid in ("20240102T000000Z", "20240101T000000Z", "20240101T000000Z-2"):
        put_bytes(s, f"{sid}/e.out", b"x")
        put_bytes(s, f"{sid}/manifest.json", _manifest(sid))
    put_bytes(s, "20240103T000000Z/e.out", b"x")  # no manifest
    put_bytes(s, "unrelated/readme.txt", b"x")
    put_bytes(s, "20240104T000000Z/manifest.json", b"{not json")
    found = scan(s)
    assert [x.id for x in found.sets] == [
        "20240101T000000Z",
        "20240101T000000Z-2",
        "20240102T000000Z",
    ]
    assert [i.prefix for i in found.incomplete] == ["20240103T000000Z/"]
    assert len(found.problems) == 1 and "20240104T000000Z" in found.problems[0]
    assert select(s).id == "20240102T000000Z"


def test_downloaded_artifacts_are_sets(tmp_path: Path) -> None:
    one = LocalStorage(str(tmp_path / "one"))  # gh run download -n backup-<id> -D one
    put_bytes(one, "manifest.json", _manifest("20240101T000000Z"))
    assert select(one).prefix == ""
    many = LocalStorage(str(tmp_path / "many"))  # gh run download -D many
    put_bytes(many, "backup-20240101T000000Z/manifest.json", _manifest("20240101T000000Z"))
    assert select(many).key("e.out") == "backup-20240101T000000Z/e.out"


def test_allocate_id_adds_suffix_on_clash(tmp_path: Path) -> None:
    a, b = LocalStorage(str(tmp_path / "a")), LocalStorage(str(tmp_path / "b"))
    moment = datetime(2024, 2, 16, 15, 0, 0, tzinfo=timezone.utc)
    assert allocate_id([a, b], moment) == "20240216T150000Z"
    put_bytes(b, "20240216T150000Z/x", b"")  # even an incomplete set holds the id
    assert allocate_id([a, b], moment) == "20240216T150000Z-2"
    put_bytes(a, "20240216T150000Z-2/x", b"")
    assert allocate_id([a, b], moment) == "20240216T150000Z-3"


def test_shard_jobs_take_disjoint_ids_even_in_a_shared_destination(tmp_path: Path) -> None:
    shared = LocalStorage(str(tmp_path / "s3-like"))
    moment = datetime(2024, 2, 16, 15, 0, 0, tzinfo=timezone.utc)
    ids = [allocate_id([shared], moment, (i, 3)) for i in (1, 2, 3)]
    assert ids == ["20240216T150000Z-1", "20240216T150000Z-2", "20240216T150000Z-3"]
    for set_id in ids:
        put_bytes(shared, f"{set_id}/manifest.json", _manifest(set_id))
    # a second run in the same second: each shard moves on by N, still disjoint
    assert [allocate_id([shared], moment, (i, 3)) for i in (1, 2, 3)] == [
        "20240216T150000Z-4",
        "20240216T150000Z-5",
        "20240216T150000Z-6",
    ]
    assert [s.id for s in scan(shared).sets] == ids  # every one a complete set


def test_finding_sets_never_walks_the_wal_archive(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """SPEC §8: a large archive must not slow list, restore or prune of sets."""
    import offsite.storage.local as local

    s = LocalStorage(str(tmp_path))
    put_bytes(s, "20240101T000000Z/e.out", b"x")
    put_bytes(s, "20240101T000000Z/manifest.json", _manifest("20240101T000000Z"))
    for n in range(50):
        put_bytes(s, f"wal/7312345678901234567/0000000100000000000000{n:02X}.zst", b"w")
    put_bytes(s, "drills/20240101T000000Z/20240102T000000Z.json", b"{}")
    walked: list[str] = []
    real_walk = local.os.walk

    def walk(top, *args, **kwargs):  # type: ignore[no-untyped-def]
        for dirpath, dirnames, filenames in real_walk(top, *args, **kwargs):
            walked.append(Path(dirpath).relative_to(tmp_path).as_posix())
            yield dirpath, dirnames, filenames

    monkeypatch.setattr(local.os, "walk", walk)
    assert [x.id for x in scan(s).sets] == ["20240101T000000Z"]
    assert walked and not [w for w in walked if w.startswith(("wal", "drills"))], walked
