"""backup --config / --only / --shard, plan, and copy, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import sqlite_content, tree_content


def _config(tmp_path: Path, sqlite_db: Path, tree: Path, dest: Path) -> Path:
    path = tmp_path / "offsite.yml"
    path.write_text(
        f"""
destinations: ["{dest}"]
encryption: {{passphrase-env: APP_BACKUP_PASSPHRASE}}
compress: gzip
labels: {{env: "${{DEPLOY_ENV}}"}}
sources:
  - {{name: app, url: "sqlite://{sqlite_db}", groups: [database]}}
  - {{name: uploads, path: "{tree}", groups: [files]}}
  - {{name: version, exec: "echo v1.2.3", groups: [files]}}
"""
    )
    return path


@pytest.fixture
def config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_BACKUP_PASSPHRASE", "from the config's variable")
    monkeypatch.setenv("DEPLOY_ENV", "staging")


def _manifest(dest: Path, set_id: str) -> dict:  # type: ignore[type-arg]
    return json.loads((dest / set_id / "manifest.json").read_text())


def test_backup_from_a_config_file_by_group_then_everything(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, config_env: None
) -> None:
    dest = tmp_path / "backups"
    config = _config(tmp_path, sqlite_db, tree, dest)
    r = cli("backup", "--config", config, "--only", "files", "--json")
    assert r.code == 0, r.err
    first = json.loads(r.out)["manifest"]
    assert [e["name"] for e in first["entries"]] == ["uploads", "version"]
    assert first["labels"] == {"env": "staging"}
    assert {e["compression"] for e in first["entries"]} == {"gzip"}

    r = cli("backup", "--config", config, "--label", "env=override", "--json")
    assert r.code == 0, r.err
    full = json.loads(r.out)["manifest"]
    assert [e["name"] for e in full["entries"]] == ["app", "uploads", "version"]
    assert full["labels"] == {"env": "override"}

    # the config's passphrase variable decrypts it; restoring gives the data back
    r = cli(
        "restore", dest, "--id", full["id"], "--into", tmp_path / "out",
        "--passphrase-env", "APP_BACKUP_PASSPHRASE",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert sqlite_content(tmp_path / "out" / "app.sqlite") == sqlite_content(sqlite_db)
    assert tree_content(tmp_path / "out" / "uploads") == tree_content(tree)


def test_command_line_destination_and_encryption_win_over_the_file(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, config_env: None
) -> None:
    config = _config(tmp_path, sqlite_db, tree, tmp_path / "configured")
    other = tmp_path / "other"
    r = cli("backup", "--config", config, "--only", "app", "--to", other, "--no-encrypt", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)["manifest"]
    assert not (tmp_path / "configured").exists()
    assert _manifest(other, manifest["id"])["entries"][0]["encryption"]["mode"] == "none"


def test_shards_of_the_plan_back_up_every_source_once(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, config_env: None
) -> None:
    dest = tmp_path / "backups"
    config = _config(tmp_path, sqlite_db, tree, dest)
    r = cli("plan", "--config", config, "--shards", "2")
    assert r.code == 0, r.err
    jobs = json.loads(r.out)["include"]
    assert [j["shard"] for j in jobs] == ["1/2", "2/2"]
    seen = []
    for job in jobs:
        r = cli("backup", "--config", config, "--shard", job["shard"], "--json")
        assert r.code == 0, r.err
        seen += [e["name"] for e in json.loads(r.out)["manifest"]["entries"]]
    assert sorted(seen) == ["app", "uploads", "version"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "nope"], "no such group or source"),
        (["--shard", "3/2"], "--shard 3/2: I goes from 1 to N"),
    ],
)
def test_bad_selection_is_exit_2(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, config_env: None, args, message
) -> None:
    config = _config(tmp_path, sqlite_db, tree, tmp_path / "d")
    r = cli("backup", "--config", config, *args)
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1


def test_missing_variable_and_missing_file_are_exit_2(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, sqlite_db, tree, tmp_path / "d")
    monkeypatch.setenv("APP_BACKUP_PASSPHRASE", "x")
    r = cli("backup", "--config", config)
    assert r.code == 2
    assert (
        r.err.strip()
        == f"offsite: error: {config}: labels.env: ${{DEPLOY_ENV}} is not set in the environment"
    )
    r = cli("backup", "--config", tmp_path / "absent.yml")
    assert r.code == 2 and "does not exist" in r.err
    assert cli("backup", "--only", "db", "--to", tmp_path / "d").code == 2


def test_github_artifacts_outside_the_actions_says_what_to_do(
    cli, tmp_path: Path, tree: Path, passphrase: str
) -> None:
    r = cli("backup", tree, "--to", "github-artifacts")
    assert r.code == 2 and "written by the offsite actions" in r.err


def test_copy_checks_every_byte_and_never_overwrites(
    cli, tmp_path: Path, tree: Path, passphrase: str
) -> None:
    src, dst = tmp_path / "src-sets", tmp_path / "dst-sets"
    assert cli("backup", tree, "--to", src).code == 0
    assert cli("backup", tree, "--exec", "v=echo 2", "--to", src).code == 0
    r = cli("copy", src, "--to", dst, "--all")
    assert r.code == 0, r.err
    assert cli("verify", dst, "--all", "--read-data").code == 0
    for set_dir in src.iterdir():
        assert (dst / set_dir.name / "manifest.json").read_bytes() == (
            set_dir / "manifest.json"
        ).read_bytes()
    r = cli("copy", src, "--to", dst, "--all")
    assert r.code == 0 and r.out.count("already there") == 2

    # a rotten byte in the source: the copy fails, and leaves no set that looks complete
    newest = sorted(src.iterdir())[-1]
    stored = next(
        p
        for p in newest.iterdir()
        if p.name not in ("manifest.json", "key.gpg") and not p.name.startswith(".")
    )
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    fresh = tmp_path / "fresh"
    r = cli("copy", src, "--to", fresh)
    assert r.code == 1 and "checksum mismatch" in r.err
    assert not (fresh / newest.name / "manifest.json").exists()
    assert not any(fresh.rglob("*.gpg"))

    # the same id with another manifest in the target is a conflict, not an overwrite
    (dst / newest.name / "manifest.json").write_text(
        (dst / newest.name / "manifest.json").read_text().replace("\n", "\n ")
    )
    r = cli("copy", src, "--to", dst, "--id", newest.name)
    assert r.code == 3 and "another manifest; not overwritten" in r.err


def test_copy_from_a_gh_run_download_folder(
    cli, tmp_path: Path, tree: Path, passphrase: str
) -> None:
    src = tmp_path / "sets"
    assert cli("backup", tree, "--to", src).code == 0
    downloaded = next(src.iterdir())  # what `gh run download -n backup-<id> -D x` leaves
    r = cli("copy", downloaded, "--to", tmp_path / "archive")
    assert r.code == 0, r.err
    assert (tmp_path / "archive" / downloaded.name / "manifest.json").exists()


def test_an_action_default_false_flag_does_not_override_the_file(
    cli, tmp_path: Path, tree: Path, with_keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "offsite.yml"
    path.write_text(
        f"encryption: {{recipients: [{with_keyring.fingerprint}]}}\n"
        f"sources: [{{name: files, path: '{tree}'}}]\n"
    )
    monkeypatch.setenv("OFFSITE_NO_ENCRYPT", "false")  # what an action passes by default
    r = cli("backup", "--config", path, "--to", tmp_path / "d", "--json")
    assert r.code == 0, r.err
    entry = json.loads(r.out)["manifest"]["entries"][0]
    assert entry["encryption"]["mode"] == "set-key" and entry["encryption"]["recipients"]


def test_a_passphrase_file_from_the_environment_never_changes_the_encryption_chosen(
    cli, tmp_path: Path, tree: Path, with_keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OFFSITE_PASSPHRASE_FILE, exported for every command on a host, says where the
    passphrase is where one is used: sets made for recipients (the backup host cannot open
    them) or unencrypted ones stay so; given on the command line, it chooses."""
    secret = tmp_path / "passphrase"
    secret.write_text("from the file\n")
    monkeypatch.setenv("OFFSITE_PASSPHRASE_FILE", str(secret))
    monkeypatch.delenv("OFFSITE_PASSPHRASE", raising=False)
    path = tmp_path / "offsite.yml"
    path.write_text(
        f"encryption: {{recipients: [{with_keyring.fingerprint}]}}\n"
        f"sources: [{{name: files, path: '{tree}'}}]\n"
    )
    r = cli("backup", "--config", path, "--to", tmp_path / "d", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["manifest"]["entries"][0]["encryption"]["recipients"]
    r = cli("backup", tree, "--recipient", with_keyring.fingerprint, "--to", tmp_path / "e")
    assert r.code == 0, r.err
    r = cli("backup", tree, "--no-encrypt", "--to", tmp_path / "f", "--json")
    assert (
        r.code == 0 and json.loads(r.out)["manifest"]["entries"][0]["encryption"]["mode"] == "none"
    )
    r = cli("backup", tree, "--to", tmp_path / "g")  # passphrase mode: the file's
    assert r.code == 0, r.err
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "from the file")
    assert cli("verify", tmp_path / "g", "--read-data").code == 0
    r = cli("backup", tree, "--no-encrypt", "--passphrase-file", secret, "--to", tmp_path / "h")
    assert r.code == 2 and "--no-encrypt contradicts" in r.err


def test_copy_to_two_destinations_reads_each_entry_once_for_both(
    cli, tmp_path: Path, tree: Path, passphrase: str
) -> None:
    src = tmp_path / "src-sets"
    assert cli("backup", tree, "--to", src).code == 0
    r = cli("copy", src, "--to", tmp_path / "a", "--to", tmp_path / "b")
    assert r.code == 0, r.err
    for dest in ("a", "b"):
        assert cli("verify", tmp_path / dest, "--read-data").code == 0
    stored = next(
        p
        for p in next(src.iterdir()).iterdir()
        if p.name not in ("manifest.json", "key.gpg", ".offsite-set")
    )
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    r = cli("copy", src, "--to", tmp_path / "c", "--to", tmp_path / "d")
    assert r.code == 1 and "checksum mismatch" in r.err
    assert not any((tmp_path / "c").rglob("*")) and not any((tmp_path / "d").rglob("*"))


def test_the_read_verbs_take_the_plan_from_the_file(
    cli, tmp_path: Path, sqlite_db: Path, tree: Path, config_env: None
) -> None:
    """list, verify, restore, drill and prune with --config alone: its first destination,
    its passphrase variable and, for prune, its retention (SPEC §4)."""
    dest = tmp_path / "backups"
    config = _config(tmp_path, sqlite_db, tree, dest)
    with config.open("a") as fh:
        fh.write("retention: {keep-last: 1}\n")
    ids = []
    for _ in range(2):
        r = cli("backup", "--config", config, "--only", "app", "--json")
        assert r.code == 0, r.err
        ids.append(json.loads(r.out)["manifest"]["id"])
    r = cli("list", "--config", config, "--json")
    assert r.code == 0, r.err
    assert [s["id"] for s in json.loads(r.out)["sets"]] == ids
    # OFFSITE_PASSPHRASE is not set: the file's APP_BACKUP_PASSPHRASE decrypts every byte
    r = cli("verify", "--config", config, "--read-data", "--json")
    assert r.code == 0, r.err
    assert all(c["decrypted"] for c in json.loads(r.out)["checks"])
    r = cli("restore", "--config", config, "--into", tmp_path / "out.db")
    assert r.code == 0, r.err
    assert sqlite_content(tmp_path / "out.db") == sqlite_content(sqlite_db)
    r = cli("drill", "--config", config, "--into", tmp_path / "scratch.db")
    assert r.code == 0, r.err
    r = cli("prune", "--config", config, "--json")
    assert r.code == 0, r.err
    assert [d["id"] for d in json.loads(r.out)["sets"] if d["keep"]] == [ids[1]]
    assert not (dest / ids[0]).exists() and (dest / ids[1]).exists()
    # a --keep option on the command line is the whole policy: the file's is not mixed in
    r = cli("prune", "--config", config, "--keep-within", "1d", "--dry-run", "--json")
    assert r.code == 0, r.err
    reasons = [d["reasons"] for d in json.loads(r.out)["sets"]]
    assert len(reasons) == 1 and all(why.startswith("within") for why in reasons[0])


def test_a_read_verb_needs_a_destination_from_somewhere(cli, tmp_path: Path) -> None:
    r = cli("list")
    assert r.code == 2 and "name the destination DEST" in r.err
    empty = tmp_path / "offsite.yml"
    empty.write_text("sources: [{name: a, path: /srv}]\n")
    r = cli("verify", "--config", empty)
    assert r.code == 2 and "no destinations" in r.err
    artifacts = tmp_path / "artifacts.yml"
    artifacts.write_text("destinations: [github-artifacts]\nsources: [{name: a, path: /srv}]\n")
    r = cli("list", "--config", artifacts)
    assert r.code == 2 and "gh-artifacts://OWNER/REPO" in r.err


def test_a_config_in_the_environment_needs_only_what_the_verb_uses(
    cli, tmp_path: Path, tree: Path, passphrase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OFFSITE_CONFIG set for a job's backup: a read verb given DEST expands nothing it
    does not use, and a passphrase variable the file names but the job leaves unset does
    not hide OFFSITE_PASSPHRASE."""
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest).code == 0
    config = tmp_path / "offsite.yml"
    config.write_text(
        'destinations: ["s3://${BUCKET}/x"]\n'
        "encryption: {passphrase-env: APP_PASSPHRASE}\n"
        "sources: [{name: a, path: /srv}]\n"
    )
    monkeypatch.setenv("OFFSITE_CONFIG", str(config))
    r = cli("verify", dest, "--read-data", "--json")
    assert r.code == 0, r.err
    assert all(c["decrypted"] for c in json.loads(r.out)["checks"])
    assert cli("list", dest).code == 0
    r = cli("list")  # now the destination is needed, and its variable with it
    assert r.code == 2 and "${BUCKET} is not set" in r.err


def test_retention_counts_are_ascii_whole_numbers(cli, tmp_path: Path, tree: Path) -> None:
    dest = tmp_path / "dest"
    assert cli("backup", tree, "--to", dest, "--no-encrypt").code == 0
    for value in ("٣", "²", "-1", "x"):
        config = tmp_path / "offsite.yml"
        config.write_text(f"retention: {{keep-daily: '{value}'}}\nsources: []\n")
        r = cli("prune", dest, "--config", config)
        assert r.code == 2 and "a whole number" in r.err, (value, r.err)


def test_the_artifacts_folder_spelled_otherwise_is_still_the_destination(
    cli, tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the actions a backup reserves its id in the artifacts folder too; when that
    folder is the destination, written another way, it is reserved once, not looped on."""
    dest = tmp_path / "artifacts"
    monkeypatch.setenv("OFFSITE_ARTIFACTS_DIR", f"{dest}/")
    r = cli("backup", tree, "--to", f"file://{dest}", "--no-encrypt", "--json")
    assert r.code == 0, r.err
    assert [p.name for p in dest.iterdir()] == [json.loads(r.out)["manifest"]["id"]]
    monkeypatch.setenv("OFFSITE_ARTIFACTS_DIR", "/proc/no-such-folder")  # cannot be written
    assert cli("backup", tree, "--to", tmp_path / "other", "--no-encrypt").code == 0
