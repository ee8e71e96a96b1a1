"""Every option has an OFFSITE_* environment variable, named in --help."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from offsite.cli import all_commands
from offsite.cli.options import envvar_for
from tests.conftest import only_set

COMMANDS = sorted(all_commands())


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_its_variable_in_help(cli, name: str) -> None:
    command = all_commands()[name]
    text = cli(*name.split(), "--help").out
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help" and not param.hidden:
            long = next(o for o in param.opts if o.startswith("--"))
            assert param.envvar == envvar_for(long), long
            assert envvar_for(long) in text, f"{name} --help does not name {envvar_for(long)}"


def test_variables_work(cli, tmp_path: Path, tree: Path, monkeypatch) -> None:
    monkeypatch.setenv("OFFSITE_TO", str(tmp_path / "viaenv"))
    monkeypatch.setenv("OFFSITE_NO_ENCRYPT", "1")
    monkeypatch.setenv("OFFSITE_LABEL", "env=prod\nteam=ops")
    monkeypatch.setenv("OFFSITE_EXEC", "greeting=echo hello world")
    other = tmp_path / "other folder"
    other.mkdir()
    (other / "a.txt").write_text("a")
    # the sources too, one per line: a database URL with a password stays out of `ps`
    monkeypatch.setenv("OFFSITE_SOURCE", f"{tree}\n{other}")
    assert cli("backup").code == 0
    manifest = (only_set(tmp_path / "viaenv") / "manifest.json").read_text()
    assert '"env": "prod"' in manifest and '"team": "ops"' in manifest
    assert '"name": "greeting"' in manifest
    assert '"name": "files"' in manifest and '"name": "other_folder"' in manifest


def test_version(cli) -> None:
    from offsite import __version__

    assert __version__ in cli("--version").out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("restore", "--bogus"), "No such option '--bogus'"),
        (("restore", "/tmp/x"), "Missing option '--into'"),
        (("backup", "--level", "high", "/a"), "'high' is not a valid integer"),
        (("frobnicate",), "No such command 'frobnicate'"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(cli, args: tuple[str, ...], words: str) -> None:
    r = cli(*args)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("offsite: error: "), r.err
    assert words in lines[0] and "--help" in lines[0]


@pytest.mark.parametrize(
    ("verb", "extra"), [("restore", ("--into", "x")), ("drill", ("--into", "x")), ("verify", ())]
)
def test_latest_is_a_selector_that_excludes_the_others(cli, verb: str, extra) -> None:
    r = cli(verb, "/nowhere", "--latest", "--id", "20260101T000000Z", *extra)
    assert r.code == 2 and "choose one of --id" in r.err


def test_read_only_verbs_offer_no_write_settings(cli) -> None:
    for verb in ("list", "restore", "drill", "prune", "monitor"):
        text = cli(verb, "--help").out
        for flag in ("--s3-storage-class", "--s3-object-lock-mode", "--s3-sse"):
            assert flag not in text, f"{verb} offers {flag}"
        assert "--s3-endpoint-url" in text
    for verb in ("backup", "copy", "verify"):  # verify --seal writes
        assert "--s3-sse" in cli(verb, "--help").out


def test_help_names_every_source_kind_and_destination_scheme(cli) -> None:
    backup = cli("backup", "--help").out
    for word in ("postgresql://", "mysql://", "mariadb://", "redis://", "mongodb://",
                 "sqlite:", "file:///", "git+", "github://OWNER/REPO", "github://OWNER ",
                 "--exec", "s3://", "gs://", "az://", "sftp://", "github-artifacts"):  # fmt: skip
        assert word in backup, word
    restore = cli("restore", "--help").out
    for word in ("database URL", "folder", "file", "git remote", "gh-"):
        assert word in restore, word
    summary = cli("--help").out
    assert "..." not in summary.split("Commands:")[1]


def test_a_usage_error_still_gives_the_actions_their_outputs(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    r = cli("list", "--bogus", "--json")
    assert r.code == 2
    assert '"exit_code": 2' in r.out
    written = outputs.read_text()
    assert "healthy<<" in written and "\nfalse\n" in written.split("healthy<<")[1]
    assert "report<<" in written


def test_requirements_with_lfs_before_any_source_is_fine(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror action installs with OFFSITE_INCLUDE_LFS set and no source named yet."""
    monkeypatch.setenv("OFFSITE_INCLUDE_LFS", "true")
    r = cli("requirements")
    assert r.code == 0, r.err
