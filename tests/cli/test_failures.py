"""Bad input and failed operations: one clear line, the SPEC's exit code, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import snapshot


@pytest.fixture
def dest(cli, tmp_path: Path, tree: Path, monkeypatch) -> Path:
    """A destination that already holds one good set."""
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "the right one")
    dest = tmp_path / "backups"
    assert cli("backup", tree, "--to", dest).code == 0
    return dest


def _one_clear_line(err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("offsite: error: ")
    assert "Traceback" not in err


CASES = [
    pytest.param(["backup", "{tree}", "--to", "{dest}"], {"OFFSITE_PASSPHRASE": None}, 2,
                 "no encryption key", id="missing-passphrase"),
    pytest.param(["backup", "ftp://example.invalid/x", "--to", "{dest}"], {}, 2,
                 "unknown source scheme 'ftp'", id="unknown-source-scheme"),
    pytest.param(["backup", "{tree}", "--to", "s3x://bucket"], {}, 2,
                 "unknown destination scheme 's3x'", id="unknown-destination-scheme"),
    pytest.param(["backup", "{tmp}/does-not-exist", "--to", "{dest}"], {}, 2,
                 "does not exist or cannot be read", id="unreadable-source"),
    pytest.param(["backup", "sqlite:{tmp}/nope.db", "--to", "{dest}"], {}, 2,
                 "does not exist or cannot be read", id="missing-sqlite"),
    pytest.param(["restore", "{dest}", "--into", "{tmp}/out"], {"OFFSITE_PASSPHRASE": "wrong"}, 3,
                 "the passphrase does not open the one set here (wrong passphrase?)", id="wrong-passphrase"),
    pytest.param(["verify", "{dest}", "--all"], {"OFFSITE_PASSPHRASE": "wrong"}, 3,
                 "the passphrase does not open the one set here (wrong passphrase?)", id="wrong-passphrase-verify"),
    pytest.param(["prune", "{dest}", "--keep-last", "1"], {"OFFSITE_PASSPHRASE": "wrong"}, 3,
                 "the passphrase does not open the one set here (wrong passphrase?)", id="wrong-passphrase-prune"),
    pytest.param(["backup", "{tree}", "--to", "{tree}/run.sh/sets"], {}, 2,
                 "run.sh is a file, not a folder", id="destination-is-a-file"),
    pytest.param(["restore", "{dest}", "--into", "{tree}"], {}, 2,
                 "is not empty; pass --force", id="non-empty-target"),
    pytest.param(["restore", "{dest}", "--id", "20000101T000000Z", "--into", "{tmp}/o"], {}, 2,
                 "no backup set 20000101T000000Z", id="unknown-set"),
    pytest.param(["backup", "--exec", "broken", "--to", "{dest}"], {}, 2,
                 "--exec takes NAME=VALUE", id="malformed-exec"),
    pytest.param(["backup", "{tree}", "{tree}", "--to", "{dest}"], {}, 2,
                 "two entries are named 'files'", id="duplicate-entry-name"),
    pytest.param(["backup", "--exec", "x=false", "--to", "{dest}"], {}, 3,
                 "command exited with status 1", id="exec-nonzero"),
    pytest.param(["backup", "--exec", "x=true", "--to", "{dest}"], {}, 3,
                 "the dump is empty", id="exec-empty"),
    pytest.param(["backup", "{tree}", "--exec", "x=echo partial; exit 7", "--to", "{dest}"], {}, 3,
                 "status 7", id="second-entry-fails-after-first-stored"),
    pytest.param(["backup", "{tree}", "--to", "{dest}", "--recipient", "{tmp}/nokey.asc"], {}, 2,
                 "no OpenPGP public key", id="unknown-recipient"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "env", "code", "message"), CASES)
def test_failure_is_one_line_with_exit_code_and_changes_nothing(
    cli, tmp_path: Path, tree: Path, dest: Path, monkeypatch, args, env, code, message
) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    before_dest, before_tree = snapshot(dest), snapshot(tree)
    argv = [a.format(tree=tree, dest=dest, tmp=tmp_path) for a in args]

    r = cli(*argv)

    assert r.code == code, r.err
    _one_clear_line(r.err)
    assert message in r.err
    assert snapshot(dest) == before_dest
    assert snapshot(tree) == before_tree
    assert not (tmp_path / "out").exists()


def test_json_record_and_actions_annotation(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    r = cli("restore", tmp_path / "nothing-here", "--into", tmp_path / "o", "--json")
    assert r.code == 2
    record = json.loads(r.out)  # stdout holds the JSON record alone
    missing = f"destination {tmp_path / 'nothing-here'} does not exist or is not a folder"
    assert record == {"error": missing, "exit_code": 2}
    assert f"::error::{missing}" in r.err


def test_verbose_shows_traceback(cli, tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    r = cli("-v", "list", tmp_path / "x", "--json")
    assert r.code == 0
    r = cli("-v", "restore", tmp_path / "x", "--into", tmp_path / "o")
    assert r.code == 2 and "Traceback" in r.err


@pytest.mark.parametrize("verb", [("list",), ("verify",), ("prune", "--keep-last", "1")])
def test_a_missing_destination_is_bad_input(cli, tmp_path: Path, verb) -> None:
    r = cli(verb[0], tmp_path / "typo", *verb[1:])
    assert r.code == 2 and "typo does not exist" in r.err
    assert not (tmp_path / "typo").exists()


def test_usage_error_is_exit_2(cli) -> None:
    r = cli("backup", "--compress", "brotli")
    assert r.code == 2
    assert "Traceback" not in r.err


def test_passphrase_never_in_output_or_manifest(
    cli, tmp_path: Path, tree: Path, monkeypatch
) -> None:
    secret = "pw-that-must-not-leak-1234"
    monkeypatch.setenv("OFFSITE_PASSPHRASE", secret)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out.txt"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    r = cli("backup", tree, "--to", tmp_path / "b", "--json")
    assert r.code == 0
    assert f"::add-mask::{secret}" in r.err  # the runner hides it from every later line
    assert secret not in r.out + r.err.replace(f"::add-mask::{secret}", "")
    for path in [tmp_path / "out.txt", tmp_path / "summary.md", *(tmp_path / "b").rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes()
    outputs = (tmp_path / "out.txt").read_text()
    assert "backup-id<<" in outputs and "size-bytes<<" in outputs


SECRET = "s3cr3t-PW-4815"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            (
                "restore",
                "{dest}",
                "--entry",
                "config",
                "--into",
                f"postgresql://u:{SECRET}@127.0.0.1:1/db",
            ),
            id="command-entry-into-a-database",
        ),
        pytest.param(
            ("restore", "{dest}", "--entry", "config", "--into", f"postgress://u:{SECRET}@h/db"),
            id="mistyped-scheme",
        ),
        pytest.param(
            ("restore", "{dest}", "--entry", "files", "--into", f"mysql://u:{SECRET}@h/db"),
            id="folder-entry-into-a-database",
        ),
        pytest.param(
            ("restore", "{dest}", "--into", f"postgresql://u:{SECRET}@h/db"),
            id="whole-set-into-a-database",
        ),
        pytest.param(
            ("backup", f"postgress://u:{SECRET}@h/db", "--to", "{dest}", "--no-encrypt"),
            id="unknown-source-scheme",
        ),
        pytest.param(("list", f"s4://u:{SECRET}@bucket/x"), id="unknown-destination-scheme"),
        pytest.param(
            ("list", f"sftp://u:{SECRET}@"),
            id="malformed-sftp",
        ),
    ],
)
def test_no_error_path_shows_a_password(cli, tmp_path: Path, tree: Path, args, monkeypatch) -> None:
    dest = tmp_path / "dest"
    r = cli(
        "backup",
        "--name",
        f"files={tree}",
        "--exec",
        "config=echo hi",
        "--to",
        dest,
        "--no-encrypt",
    )
    assert r.code == 0, r.err
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.replace("{dest}", str(dest)) for a in args]
    for extra in ((), ("--json",)):
        r = cli(*argv, *extra)
        assert r.code == 2, r.err
        assert SECRET not in r.out + r.err
        assert "Traceback" not in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created


def test_a_manifest_cannot_start_a_workflow_command(cli, tmp_path: Path, monkeypatch) -> None:
    """A message quoting what a destination holds stays on one line: a label key with a
    newline must not put `::set-output` (or any workflow command) at a line's start."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    folder = tmp_path / "dest" / "20240101T000000Z"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({
        "format": "offsite-manifest/1", "id": "20240101T000000Z", "created_at": "x",
        "finished_at": "x", "entries": [], "labels": {"x\n::set-output name=ok::1\n::warning::": 5},
    }))  # fmt: skip
    for args in (("verify", tmp_path / "dest", "--all"), ("restore", tmp_path / "dest", "--id",
                 "20240101T000000Z", "--into", tmp_path / "o"), ("list", tmp_path / "dest")):  # fmt: skip
        r = cli(*args)
        lines = (r.out + r.err).splitlines()
        assert not any(line.startswith(("::set-output", "::warning::")) for line in lines), r.err
