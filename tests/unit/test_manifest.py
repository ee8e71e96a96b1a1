from __future__ import annotations

import json
from dataclasses import replace

import pytest

from offsite.crypto.modes import Encryption
from offsite.errors import ManifestError, UnsupportedManifest
from offsite.names import set_id_for, set_time
from offsite.sets.manifest import BaseRef, Companion, Entry, Manifest, Origin


def _manifest() -> Manifest:
    entry = Entry(
        name="db", kind="sqlite", source="sqlite:///x.db", file="db.sqlite.zst.gpg", size=10,
        sha256="a" * 64, raw_size=20, compression="zstd",
        encryption=Encryption("recipients", "AES256", ("F" * 40,)), stats={"rows": {"t": 3}},
        restore_hint="gpg --decrypt …",
    )  # fmt: skip
    origin = Origin("o/r", "backup.yml", "42", "https://github.com/o/r/actions/runs/42", "abc")
    return Manifest("20240216T150000Z", "2024-02-16T15:00:00Z", "2024-02-16T15:01:00Z", (entry,),
                    {"env": "prod"}, origin)  # fmt: skip


def test_json_round_trip() -> None:
    m = _manifest()
    data = json.loads(m.to_json())
    assert data["format"] == "offsite-manifest/1"
    assert data["entries"][0]["encryption"] == {"mode": "recipients", "cipher": "AES256",
                                                 "recipients": ["F" * 40]}  # fmt: skip
    assert Manifest.from_json(m.to_json()) == m


def test_unknown_format_is_refused() -> None:
    data = json.loads(_manifest().to_json())
    data["format"] = "offsite-manifest/4"
    with pytest.raises(UnsupportedManifest) as info:
        Manifest.from_json(json.dumps(data))
    assert info.value.exit_code == 2 and "needs a newer offsite" in info.value.message()


@pytest.mark.parametrize("text", ["{", "[]", '{"format": "offsite-manifest/1"}'])
def test_malformed_manifest(text: str) -> None:
    with pytest.raises(ManifestError):
        Manifest.from_json(text)


def test_set_ids() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2024, 2, 16, 16, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    assert set_id_for(moment) == "20240216T150000Z"
    assert set_time("20240216T150000Z-2") == moment


def test_the_schema_and_the_code_hold_the_same_patterns() -> None:
    """The shipped schema (for anyone's validator) and the code's whole-string checks
    (Python's ``$`` also matches before a newline) must not drift apart."""
    from importlib.resources import files

    from offsite.names import NAME_PATTERN, SET_ID
    from offsite.sets.manifest import FILE, KIND, SHA256

    schema = json.loads(files("offsite.sets").joinpath("schemas/manifest.schema.json").read_text())
    entry = schema["$defs"]["entry"]["properties"]
    assert entry["name"]["pattern"] == NAME_PATTERN
    for field, regex in (("file", FILE), ("kind", KIND), ("sha256", SHA256)):
        assert entry[field]["pattern"] == f"^{regex.pattern}$", field
    assert schema["properties"]["id"]["pattern"] == f"^{SET_ID.pattern}$"
    assert not SET_ID.fullmatch(
        "\u0662\u0660\u0662\u0664\u0660\u0661\u0660\u0661T000000Z"
    )  # Arabic-Indic digits


def _diff() -> Manifest:
    """A format 3 diff: a diff entry with a deleted list, and an unchanged one."""
    m = _manifest()
    files = Entry("src", "files", "/src", "src.tar.zst", 5, "b" * 64, 9, "zstd",
                  Encryption("none"), {"files": 2}, "", "diff",
                  (Companion("deleted", "src.deleted.zst", 3, "c" * 64),))  # fmt: skip
    same = Entry("etc", "files", "/etc", "", 0, "", 0, "zstd", Encryption("none"),
                 delta="unchanged")  # fmt: skip
    db = replace(m.entries[0], delta="full")
    return replace(m, format="offsite-manifest/3", entries=(db, files, same),
                   base=BaseRef("20240215T150000Z", "d" * 64))  # fmt: skip


def test_format_3_round_trips_byte_for_byte() -> None:
    m = _diff()
    data = json.loads(m.to_json())
    assert data["base"] == {"id": "20240215T150000Z", "manifest_sha256": "d" * 64}
    assert "file" not in data["entries"][2] and data["entries"][2]["delta"] == "unchanged"
    back = Manifest.from_json(m.to_json())
    assert back == m and back.to_json() == m.to_json() and back.delta == "diff"
    assert back.size == 10 + 5 + 3  # every stored object: files and companions
    assert [o.file for o in back.entries[1].objects()] == ["src.tar.zst", "src.deleted.zst"]


def test_an_older_format_comes_back_as_it_was_written() -> None:
    """The auth of a format 1 or 2 set is over its JSON: nothing of format 3 is added."""
    text = _manifest().to_json()
    assert Manifest.from_json(text).to_json() == text and "delta" not in text


def _broken(change) -> str:  # type: ignore[no-untyped-def]
    data = json.loads(_diff().to_json())
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d.update(format="offsite-manifest/2"), "format 3"),
        (lambda d: d.pop("base"), "is a diff in a set with no base"),
        (lambda d: d["entries"][0].pop("delta"), "always both"),
        (lambda d: d["entries"][2].update(file="etc.tar", size=1, sha256="e" * 64), "not valid"),
        (lambda d: d["entries"][1].pop("file"), "not valid"),
        (lambda d: d["entries"][1]["companions"][0].update(file="db.sqlite.zst.gpg"), "twice"),
        (lambda d: d["entries"][1]["companions"][0].update(file="other.deleted"), "another name"),
        (lambda d: d["entries"][1]["companions"][0].update(file="../x"), "not valid"),
        (lambda d: d["entries"][1]["companions"][0].update(role="keys"), "not valid"),
        (lambda d: d["entries"][1]["companions"].append(d["entries"][1]["companions"][0]),
         "two companions"),
        (lambda d: d["base"].update(manifest_sha256="X" * 64), "not valid"),
    ],
    ids=["delta-in-format-2", "diff-without-base", "delta-missing", "unchanged-with-file",
         "diff-without-file", "companion-file-twice", "companion-of-another-name",
         "companion-path", "unknown-role", "role-twice", "bad-base-digest"],
)  # fmt: skip
def test_a_format_3_manifest_that_breaks_a_rule_is_refused(change, why: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ManifestError) as info:
        Manifest.from_json(_broken(change))
    assert why in info.value.message()
