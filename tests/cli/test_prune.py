"""prune on a local destination: dry run, removal, incomplete sets, refusals."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from offsite.crypto.modes import Encryption
from offsite.sets.manifest import Entry, Manifest

IDS = ["20240101T020000Z", "20240102T020000Z", "20240103T020000Z", "20240103T140000Z"]


def _make_set(dest: Path, set_id: str) -> None:
    folder = dest / set_id
    folder.mkdir(parents=True)
    (folder / "e.out").write_bytes(b"x")
    entry = Entry("e", "command", "exec:x", "e.out", 1, "0" * 64, 1, "none", Encryption("none"))
    (folder / "manifest.json").write_text(Manifest(set_id, "t", "t", (entry,)).to_json())


def _dest(tmp_path: Path) -> Path:
    dest = tmp_path / "dest"
    for set_id in IDS:
        _make_set(dest, set_id)
    return dest


def test_dry_run_changes_nothing_and_gives_reasons(cli, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    before = sorted(p.relative_to(dest) for p in dest.rglob("*"))
    r = cli("prune", dest, "--keep-daily", "2", "--dry-run", "--json")
    assert r.code == 0, r.err
    sets = {s["id"]: s for s in json.loads(r.out)["sets"]}
    assert sets["20240103T140000Z"]["reasons"] == ["daily 1/2"]
    assert sets["20240102T020000Z"]["reasons"] == ["daily 2/2"]
    assert not sets["20240103T020000Z"]["keep"] and not sets["20240101T020000Z"]["keep"]
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == before
    text = cli("prune", dest, "--keep-daily", "2", "--dry-run").out
    assert "20240103T020000Z  remove" in text and "would remove 2" in text


def test_prune_removes_sets_and_old_incomplete_ones(cli, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    for name, age_days in (("20231201T000000Z", 3), ("20240104T000000Z", 0)):
        (dest / name).mkdir()
        part = dest / name / "db.sqlite"
        part.write_bytes(b"half")
        old = time.time() - age_days * 86400 - 60
        os.utime(part, (old, old))
    r = cli("prune", dest, "--keep-last", "1", "--keep-within", "26h")
    assert r.code == 0, r.err
    assert sorted(p.name for p in dest.iterdir()) == [
        "20240103T020000Z",  # 12h before the newest set; 20240102T020000Z was 36h
        "20240103T140000Z",
        "20240104T000000Z",  # incomplete but young: a backup may still be writing it
    ]
    assert json.loads(cli("list", dest, "--json").out)["sets"][0]["id"] == "20240103T020000Z"


def test_refusals(cli, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    r = cli("prune", dest)
    assert r.code == 2 and "no retention rule" in r.err
    r = cli("prune", dest, "--keep-within", "7x")
    assert r.code == 2 and "duration" in r.err
    r = cli("prune", dest / IDS[0], "--keep-last", "1")  # a gh run download folder
    assert r.code == 2 and "single downloaded set" in r.err
    assert len(list(dest.iterdir())) == len(IDS)


def test_partial_files_a_killed_run_left_are_removed_after_a_day(cli, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    old = dest / "20240104T020000Z" / ".db.sqlite.zst.partial-1a2b3c4d"  # only a partial
    old.parent.mkdir()
    old.write_bytes(b"half")
    day_old = time.time() - 2 * 86400
    os.utime(old, (day_old, day_old))
    fresh = dest / IDS[-1] / ".late.out.partial-5e6f7a8b"  # a run still writing
    fresh.write_bytes(b"half")
    r = cli("prune", dest, "--keep-last", "10", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["interrupted_uploads_aborted"] == ["20240104T020000Z/db.sqlite.zst"]
    assert not old.parent.exists() and fresh.exists()
