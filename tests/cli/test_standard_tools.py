"""No lock-in: every entry comes back with gpg, zstd/gunzip, tar and sqlite3 alone,
by the command the manifest's restore_hint (and the manual) gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    Keyring,
    batch_gnupg_home,
    only_set,
    run_guide_diff,
    sqlite_content,
    tree_content,
)


@pytest.mark.parametrize("mode", ["passphrase", "recipient"])
@pytest.mark.parametrize("compress", ["zstd", "gzip"])
def test_restore_hints_work_with_standard_tools(
    cli,
    tmp_path: Path,
    sqlite_db: Path,
    tree: Path,
    passphrase: str,
    keyring: Keyring,
    mode,
    compress,
) -> None:
    dest = tmp_path / "backups"
    extra = ["--recipient", str(keyring.public_key_file)] if mode == "recipient" else []
    r = cli("backup", f"sqlite:{sqlite_db}", tree, "--exec", "numbers=seq 1 5000", "--to", dest,
            "--compress", compress, *extra)  # fmt: skip
    assert r.code == 0, r.err
    stored = only_set(dest)
    manifest = json.loads((stored / "manifest.json").read_text())
    work = tmp_path / "by-hand"
    work.mkdir()
    env = {
        **os.environ,
        "GNUPGHOME": str(batch_gnupg_home(tmp_path, keyring if mode == "recipient" else None)),
    }
    shutil.copy(stored / "key.gpg", work / "key.gpg")  # the set's data key, wrapped
    for entry in manifest["entries"]:
        shutil.copy(stored / entry["file"], work / entry["file"])
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail; " + entry["restore_hint"]],
            cwd=work, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, (entry["restore_hint"], done.stderr)

    assert sqlite_content(work / "app.db") == sqlite_content(sqlite_db)
    assert tree_content(work / "files") == tree_content(tree)
    assert (work / "numbers.out").read_text().split() == [str(i) for i in range(1, 5001)]


def test_the_manual_documents_each_kind_hint() -> None:
    """The manual's standard-tools page shows the same commands the manifest carries."""
    from offsite.sources.registry import kind_class

    readme = (Path(__file__).resolve().parents[2] / "docs/reference/standard-tools.md").read_text()
    kinds = (("sqlite", "app"), ("files", "files"), ("command", "numbers"), ("postgresql", "shop"),
             ("mysql", "shop"), ("redis", "redis"), ("mongodb", "app"), ("oci-image", "app-1.0"))  # fmt: skip
    for kind, name in kinds:
        cls = kind_class(kind)
        hint = cls.restore_hint(name, cls.file_name(name, "zstd", True), "zstd", True)
        assert hint in readme, hint


def test_a_files_diff_restores_with_the_readme_commands(
    cli, tmp_path: Path, tree: Path, passphrase: str
) -> None:
    """Base tar, then the deleted list, then the diff tar: the incremental guide's three lines."""
    dest = tmp_path / "backups"
    assert tree.name == "files"  # the entry's name, as the guide's commands say it
    assert cli("backup", tree, "--incremental", "--to", dest).code == 0
    victims = sorted(p for p in tree.rglob("*") if p.is_file())
    victims[0].unlink()
    (tree / "added.txt").write_text("added after the base\n")
    assert cli("backup", tree, "--incremental", "--to", dest).code == 0
    base, diff = sorted(p for p in dest.iterdir() if p.is_dir())
    work = run_guide_diff("Restoring a files diff with standard tools", base, diff, tmp_path)
    assert tree_content(work / "files") == tree_content(tree)
