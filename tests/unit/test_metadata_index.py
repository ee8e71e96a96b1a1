"""The metadata index read back from a base (SPEC §10) is untrusted input: anything but
the names and fingerprints offsite writes is refused with ValueError (the run is then
full); ``settle`` makes a restored folder exactly what a diff's index lists."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from offsite.github.metadata_index import INDEX_FORMAT, Index, settle

SHA = "a" * 64


def _index(items: object, pages: object = None) -> bytes:
    return json.dumps({"format": INDEX_FORMAT, "items": items, "pages": pages or {}}).encode()


def test_an_index_offsite_wrote_round_trips() -> None:
    index = Index({"issues": {"1.json": SHA}, "pull-reviews": {"7/70.json": SHA},
                   "release-assets": {"3/app.tar.gz": "asset:9:120:2026-01-01T00:00:00Z:None"},
                   "settings": {"repository.json": SHA}},
                  {"issues": [{"etag": 'W/"x"', "keys": ["1.json"]}],
                   "pull-reviews/7": [{"etag": "", "keys": ["7/70.json"]}]}, "o/r")  # fmt: skip
    again = Index.loads(index.to_bytes())
    assert (again.items, again.pages) == (index.items, index.pages)


@pytest.mark.parametrize(
    "data",
    [
        _index({"issues": {"../../x.json": SHA}}),  # climbs
        _index({"settings": {"../../outside": SHA}}),  # settings are repository.json only
        _index({"issues": {"1.json\0issues/2.json": SHA}}),  # a NUL splits a deleted list
        _index({"issues": {"/etc/passwd": SHA}}),
        _index({"pull-reviews": {"70.json": SHA}}),  # a review names its pull request
        _index({"issues": {"7/1.json": SHA}}),  # ... and nothing else nests
        _index({"release-assets": {"3/app": "garbage"}}),  # an asset's fingerprint shape
        _index({"release-assets": {"3/.hidden": "asset:1:2:x"}}),
        _index({"issues": {"1.json": "not a digest"}}),
        _index({"secrets": {"1.json": SHA}}),  # no such kind
        _index({"issues": {"1.json": SHA}}, {"issues": [{"etag": "x", "keys": [[1]]}]}),
        _index({"issues": {"1.json": SHA}}, {"issues": [{"etag": "x", "keys": ["2.json"]}]}),
        _index({"issues": {}}, {"../x": []}),  # pages of no list offsite reads
        _index({"issues": {}}, {"issues": [{"keys": []}]}),  # a page without its ETag
        b"[" * 100_000 + b"]" * 100_000,  # nested past the recursion limit
        json.dumps({"format": "something else", "items": {}, "pages": {}}).encode(),
        b"not json",
    ],
)
def test_anything_else_is_refused_with_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        Index.loads(data)


def _write(folder: Path, rel: str, data: bytes) -> str:
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    (folder / rel).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_settle_removes_what_the_index_does_not_list_and_checks_what_it_does(
    tmp_path: Path,
) -> None:
    keep = _write(tmp_path, "issues/1.json", b"{}\n")
    _write(tmp_path, "issues/2.json", b"{}\n")  # deleted since the base
    _write(tmp_path, "pull-reviews/7/70.json", b"{}\n")  # its pull request's reviews, gone
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_text("mine")
    index = Index({"issues": {"1.json": keep}}, {})
    (tmp_path / "index.json").write_bytes(index.to_bytes())
    assert settle(tmp_path) == []
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "index.json", "issues", "issues/1.json"
    ]  # fmt: skip
    assert outside.read_text() == "mine"

    (tmp_path / "issues" / "1.json").write_bytes(b"[]\n")  # the diff left a stale item
    index.items["issues"]["3.json"] = SHA  # ... and lacks one it lists
    (tmp_path / "index.json").write_bytes(index.to_bytes())
    problems = settle(tmp_path)
    assert problems == ["issues/1.json: its SHA-256 is not the index's", "issues/3.json: missing"]
