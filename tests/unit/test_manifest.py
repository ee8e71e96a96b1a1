from __future__ import annotations

import json

import pytest

from offsite.crypto.modes import Encryption
from offsite.errors import ManifestError, UnsupportedManifest
from offsite.names import set_id_for, set_time
from offsite.sets.manifest import Entry, Manifest, Origin


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
    data["format"] = "offsite-manifest/3"
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
