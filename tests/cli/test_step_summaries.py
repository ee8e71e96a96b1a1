"""restore, verify and prune write a step summary in Actions (issue 21), as backup and
drill do: what was done, per set or entry, and no secret."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_restore_verify_and_prune_say_what_they_did_in_the_summary(
    cli, tree: Path, tmp_path: Path, passphrase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    dest = tmp_path / "dest"
    for _ in range(2):
        assert cli("backup", "--name", f"files={tree}", "--to", dest).code == 0
    summary.write_text("")
    assert cli("verify", dest, "--read-data", "--all").code == 0
    said = summary.read_text()
    assert "### offsite verify" in said and "2 of 2 ok" in said and "| files | data | ok |" in said
    assert cli("restore", dest, "--into", tmp_path / "back").code == 0
    said = summary.read_text()
    assert "### offsite restore of set" in said and "| files | files |" in said
    assert cli("prune", dest, "--keep-last", "1", "--dry-run").code == 0
    said = summary.read_text()
    assert "### offsite prune" in said and "(dry run): 1 kept, would remove 1" in said
