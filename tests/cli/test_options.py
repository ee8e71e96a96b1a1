"""Every option has an OFFSITE_* environment variable, named in --help."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from offsite.cli import cli as group
from offsite.cli.options import envvar_for
from tests.conftest import only_set

COMMANDS = sorted(group.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_its_variable_in_help(cli, name: str) -> None:
    command = group.commands[name]
    text = cli(name, "--help").out
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
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
