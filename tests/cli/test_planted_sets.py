"""What a writer to the destination can plant (SPEC §7): a manifest offsite refuses makes
its own set invalid and never blocks the others; a set dated in the future is never the
latest and never counted by retention."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from offsite.names import set_id_for
from tests.conftest import only_set

FUTURE = "29991231T000000Z"
# newer than the real set, but not in the future: only its manifest keeps it from latest
PLANTED = set_id_for(datetime.now(timezone.utc) + timedelta(minutes=30))


@pytest.fixture
def real(cli, tmp_path: Path, tree: Path) -> Path:
    """A destination holding one real set, unencrypted."""
    dest = tmp_path / "dest"
    r = cli("backup", "--name", f"files={tree}", "--to", dest, "--no-encrypt")
    assert r.code == 0, r.err
    return dest


def _plant(dest: Path, set_id: str, manifest: str | bytes, like: Path | None = None) -> Path:
    folder = dest / set_id
    if like is not None:
        shutil.copytree(like, folder)
    else:
        folder.mkdir()
    (folder / "manifest.json").write_bytes(
        manifest if isinstance(manifest, bytes) else manifest.encode()
    )
    return folder


def _edited(real_set: Path, **changes: object) -> str:
    data = json.loads((real_set / "manifest.json").read_text())
    entry_changes = changes.pop("entry", {})
    data.update(changes)
    if entry_changes:
        data["entries"][0].update(entry_changes)
    return json.dumps(data)


BAD = [
    pytest.param(lambda real: _edited(real, id=None), id="id-null"),
    pytest.param(lambda real: "[" * 100_000 + "]" * 100_000, id="deep-nesting"),
    pytest.param(lambda real: _edited(real, entry={"name": "../../evil"}), id="climbing-name"),
    pytest.param(
        lambda real: _edited(real, entry={"file": "../../etc/passwd"}), id="climbing-file"
    ),
    pytest.param(lambda real: _edited(real, entry={"size": -5}), id="negative-size"),
    pytest.param(lambda real: _edited(real, entry={"sha256": "zz"}), id="not-hex"),
    pytest.param(lambda real: _edited(real, entries="nope"), id="entries-not-a-list"),
    pytest.param(lambda real: _edited(real, id="20991231T000000Z"), id="id-not-the-folder"),
    pytest.param(lambda real: b"\xff\xfe garbage", id="not-utf8"),
    pytest.param(
        lambda real: '{"format": "offsite-manifest/1", "id": ' + "9" * 5000 + "}", id="huge-integer"
    ),
]


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_manifest_makes_one_invalid_set(cli, tmp_path: Path, real: Path, bad) -> None:
    real_set = only_set(real)
    planted = _plant(real, PLANTED, bad(real_set), like=real_set)
    listed = cli("list", real)
    assert listed.code == 0 and "Traceback" not in listed.err
    assert f"{PLANTED} INVALID" in listed.out and real_set.name in listed.out
    checked = cli("verify", real, "--all")
    assert checked.code == 1
    assert PLANTED in checked.out + checked.err
    target = tmp_path / "work" / "restored"
    restored = cli("restore", real, "--into", target)  # the latest valid set: the real one
    assert restored.code == 0, restored.err
    assert f"restored set {real_set.name}" in restored.out
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil.out").exists()
    named = cli("restore", real, "--id", PLANTED, "--into", tmp_path / "other")
    assert named.code == 1 and "is not valid" in named.err and "Traceback" not in named.err
    assert not (tmp_path / "other").exists()
    pruned = cli("prune", real, "--keep-last", "1")
    assert pruned.code == 0, pruned.err
    assert planted.exists() and real_set.exists()  # neither counted nor removed
    assert f"not counted nor removed: set {PLANTED}" in pruned.err


def test_a_newer_format_needs_a_newer_offsite(cli, tmp_path: Path, real: Path) -> None:
    real_set = only_set(real)
    _plant(real, PLANTED, _edited(real_set, format="offsite-manifest/9"), real_set)
    named = cli("restore", real, "--id", PLANTED, "--into", tmp_path / "o")
    assert named.code == 2 and "needs a newer offsite" in named.err


def test_a_future_dated_set_is_never_latest_nor_counted(cli, tmp_path: Path, real: Path) -> None:
    real_set = only_set(real)
    planted = _plant(real, FUTURE, _edited(real_set, id=FUTURE), like=real_set)
    listed = cli("list", real)
    assert f"{FUTURE} FUTURE" in listed.out
    restored = cli("restore", real, "--into", tmp_path / "restored")
    assert restored.code == 0, restored.err
    assert f"restored set {real_set.name}" in restored.out
    assert f"set {FUTURE} is dated in the future" in restored.err
    pruned = cli("prune", real, "--keep-within", "1d")
    assert pruned.code == 0, pruned.err
    assert real_set.exists() and planted.exists()
    assert f"not counted nor removed: set {FUTURE}: dated in the future" in pruned.err


@pytest.mark.parametrize("folder", ["20269999T000000Z", "backup-20261399T000000Z"])
def test_a_set_id_with_no_such_date_is_no_set(cli, tmp_path: Path, real: Path, folder) -> None:
    """The shape of an id with a date that does not exist (a planted folder, an artifact):
    passed over, never a traceback in list, restore, prune or the monitor."""
    real_set = only_set(real)
    impossible = folder.removeprefix("backup-")
    _plant(real, folder, _edited(real_set, id=impossible), like=real_set)
    for argv in (["list", real], ["restore", real, "--into", tmp_path / "r"],
                 ["prune", real, "--keep-last", "1"],
                 ["monitor", "--storage", real, "--max-age", "1d"]):  # fmt: skip
        r = cli(*argv)
        assert r.code == 0, (argv[0], r.err)
        assert impossible not in r.out
    assert (real / folder).exists() and real_set.exists()


def test_an_unknown_entry_kind_needs_a_newer_offsite(cli, tmp_path: Path, real: Path) -> None:
    real_set = only_set(real)
    manifest = real_set / "manifest.json"
    manifest.write_text(_edited(real_set, entry={"kind": "oci-volume"}))
    r = cli("restore", real, "--into", tmp_path / "o")
    assert r.code == 2 and "kind 'oci-volume' needs a newer offsite" in r.err
    assert not (tmp_path / "o").exists()


def test_two_entries_into_one_place_are_refused(cli, tmp_path: Path) -> None:
    """A folder entry `z.tar` and LFS objects `z` would both restore into `<into>/z.tar`:
    the folder's symlinks could then carry the objects anywhere."""
    folder = tmp_path / "dest" / "20240101T000000Z"
    folder.mkdir(parents=True)

    def entry(name: str, kind: str, file: str) -> dict[str, object]:
        return {"name": name, "kind": kind, "source": "x", "file": file, "size": 0,
                "sha256": "0" * 64, "raw_size": 0, "compression": "none",
                "encryption": {"mode": "none"}}  # fmt: skip

    (folder / "manifest.json").write_text(json.dumps({
        "format": "offsite-manifest/1", "id": "20240101T000000Z", "created_at": "x",
        "finished_at": "x", "entries": [entry("z.tar", "files", "z.tar.tar"),
                                        entry("z", "git-lfs", "z.tar")],
    }))  # fmt: skip
    r = cli("restore", tmp_path / "dest", "--into", tmp_path / "out")
    assert r.code == 2 and "would restore into the same place" in r.err
    assert not (tmp_path / "out").exists()
