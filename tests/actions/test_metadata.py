"""What users reference: every action.yml and workflow template is valid, documented, pinned,
and never puts an expression inside a script."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from offsite.cli import all_commands
from tests.actions.expressions import substitute
from tests.actions.harness import ROOT

ACTIONS = sorted([ROOT / "action.yml", *ROOT.glob("actions/*/action.yml")])
TEMPLATES = sorted((ROOT / "workflows-templates").glob("*.yml"))
# the reusable workflows and the self-test: linted and checked as the templates are
WORKFLOWS = TEMPLATES + sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SPEC_ACTIONS = {"dump-database", "mirror-repository", "encrypt", "upload", "restore",
                "verify", "prune", "monitor"}  # fmt: skip
SPEC_TEMPLATES = {"backup", "monitor", "restore", "dr-drill", "mirror"}
REFERENCE = ROOT.parent / "shared" / "reference"
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def _load(path: Path) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(path.read_text())


def _steps(path: Path) -> list[dict]:  # type: ignore[type-arg]
    doc = _load(path)
    if "runs" in doc:
        return doc["runs"]["steps"]
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def test_the_spec_names_every_action_and_template() -> None:
    assert {p.parent.name for p in ACTIONS if p.parent != ROOT} == SPEC_ACTIONS
    assert {p.stem for p in TEMPLATES} == SPEC_TEMPLATES


@pytest.mark.parametrize(
    ("schema", "files"),
    [("vendor.github-actions", ACTIONS), ("vendor.github-workflows", WORKFLOWS),
     ("vendor.dependabot", [ROOT / ".github" / "dependabot.yml"])],
)  # fmt: skip
def test_schemastore_schemas_validate(schema: str, files: list[Path]) -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", schema, *map(str, files)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(
    not REFERENCE.is_dir(), reason="../shared/reference is not beside this checkout"
)
@pytest.mark.parametrize(
    ("schema", "files"), [("github-action.json", ACTIONS), ("github-workflow.json", TEMPLATES)]
)
def test_the_shared_reference_schemas_validate(schema: str, files: list[Path]) -> None:
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads((REFERENCE / schema).read_text()))
    for path in files:
        doc = _load(path)
        if True in doc:  # PyYAML reads the key `on:` as the boolean True
            doc["on"] = doc.pop(True)
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors, (path.name, errors)


def test_templates_pass_actionlint() -> None:
    lint = ROOT / "tests" / "actionlint"
    if not (lint / "node_modules" / "@tktco" / "node-actionlint").is_dir() or not shutil.which(
        "node"
    ):
        pytest.skip("actionlint from npm is not installed (scripts/bootstrap.sh installs it)")
    done = subprocess.run(
        ["node", str(lint / "lint.cjs"), *map(str, WORKFLOWS)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_actionlint_is_not_a_rubber_stamp(tmp_path: Path) -> None:
    lint = ROOT / "tests" / "actionlint"
    if not (lint / "node_modules" / "@tktco" / "node-actionlint").is_dir() or not shutil.which(
        "node"
    ):
        pytest.skip("actionlint from npm is not installed")
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.issue.title }}\n")  # fmt: skip
    done = subprocess.run(
        ["node", str(lint / "lint.cjs"), str(bad)], capture_output=True, text=True
    )
    assert "potentially untrusted" in done.stdout


@pytest.mark.parametrize("path", ACTIONS + WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_expression_inside_a_run_script(path: Path) -> None:
    for step in _steps(path):
        assert "${{" not in step.get("run", ""), (step.get("name"), step["run"])


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_inputs_and_outputs_are_documented_and_kebab_case(path: Path) -> None:
    doc = _load(path)
    assert doc["runs"]["using"] == "composite"
    for name, spec in doc["inputs"].items():
        assert KEBAB.match(name), name
        assert spec.get("description"), name
        assert "default" in spec or spec.get("required"), f"{name}: a default, or required"
    for name, spec in doc.get("outputs", {}).items():
        assert KEBAB.match(name) and spec.get("description") and spec.get("value"), name


def _option_envvars() -> dict[str, str]:
    """OFFSITE_X → the command-line option it stands for, over every command."""
    found: dict[str, str] = {}
    for command in all_commands().values():
        for param in command.params:
            if isinstance(param, click.Option) and param.envvar:
                found[str(param.envvar)] = param.opts[-1] if param.opts else param.name
    return found


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_an_input_bears_the_name_of_the_option_it_sets(path: Path) -> None:
    """SPEC §1: an input has its option's name; it reaches offsite as that option's
    variable, so `max-age` is --max-age is OFFSITE_MAX_AGE."""
    options = _option_envvars()
    inputs = set(_load(path)["inputs"])
    # plural inputs for repeatable options; actions/upload's `destination` is the name
    plural = {"recipients": "--recipient", "labels": "--label", "destination": "--to"}
    for step in _steps(path):
        for var, value in (step.get("env") or {}).items():
            m = re.fullmatch(r"\$\{\{ inputs\.([a-z0-9-]+) \}\}", str(value))
            if not m or not var.startswith("OFFSITE_"):
                continue
            name = m.group(1)
            assert name in inputs
            if var in ("OFFSITE_SOURCE", "OFFSITE_FROM", "OFFSITE_ARTIFACT_NAME",
                       "OFFSITE_PASSPHRASE"):  # fmt: skip
                continue  # SOURCE and DEST, the artifact's name, --passphrase-env's default
            assert var in options, f"{path.name}: {var} sets no option"
            assert options[var] == plural.get(name, f"--{name}"), (var, name)


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_secrets_are_masked_first(path: Path) -> None:
    first = _steps(path)[0]
    assert "prepare.sh" in first["run"]
    secret_inputs = {
        "passphrase",
        "database-url",
        "into",
        "webhook",
        "token",
        "github-token",
        "source",
        "ping-url",  # URLs that may carry user:password@
        "pushgateway",
    }
    given = {m for m in re.findall(r"inputs\.([a-z-]+)", json.dumps(first.get("env", {})))}
    declared = set(_load(path)["inputs"])
    assert declared & secret_inputs <= given, declared & secret_inputs - given
    for var in first.get("env", {}):
        assert var in first["run"], f"{var} is given to the step but not masked"


@pytest.mark.parametrize("path", ACTIONS + WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_other_actions_are_pinned_by_sha_with_the_tag_in_a_comment(path: Path) -> None:
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*(?:- )?uses: (\S+.*)$", line)
        if m and not m.group(1).startswith(("offsite-dev/offsite", "./")):
            assert PINNED.match(m.group(1)), line


def test_artifacts_are_uploaded_as_the_spec_says() -> None:
    uploads = [
        (path, step) for path in ACTIONS for step in _steps(path)
        if step.get("uses", "").startswith("actions/upload-artifact@")
    ]  # fmt: skip
    assert {p.parent.name for p, _ in uploads} >= {"upload", "dump-database", "encrypt"}
    for path, step in uploads:
        w = step["with"]
        assert w["compression-level"] == 0 and "archive" not in w, path
        assert w["retention-days"] == "${{ inputs.retention-days }}"
        assert w["path"].endswith(".outputs.artifact-path }}")  # the set's folder itself
        assert w["name"].endswith(".outputs.artifact-name }}")  # backup-<set-id> by default


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout_and_a_concurrency_group(path: Path) -> None:
    """A hung restore must not hold a runner for six hours, and two restores (or a
    restore and a backup) must never run into one target at once."""
    doc = _load(path)
    for name, job in doc["jobs"].items():
        if "uses" in job:  # a call of a reusable workflow: its own jobs carry both
            continue
        assert "timeout-minutes" in job, f"{path.name}: job {name} has no timeout-minutes"
        assert "concurrency" in job or "concurrency" in doc, f"{path.name}: job {name}"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_each_template_has_its_properties(path: Path) -> None:
    props = json.loads(path.with_suffix(".properties.json").read_text())
    assert props["name"] and props["description"] and props["iconName"]
    assert isinstance(props["categories"], list) and props["categories"]


def test_backup_template_schedule_and_choice() -> None:
    doc = _load(ROOT / "workflows-templates" / "backup.yml")
    on = doc[True]
    assert on["schedule"] == [{"cron": "0 2 * * *"}, {"cron": "30 * * * *"}]
    choice = on["workflow_dispatch"]["inputs"]["backup_type"]
    assert choice["type"] == "choice" and choice["options"] == ["full", "database", "files"]


@pytest.mark.parametrize(
    ("schedule", "dispatched", "only", "full_after", "days"),
    [
        ("0 2 * * *", "", "full", "20h", "30"),  # the night: everything, a new full set
        ("30 * * * *", "", "files", "7d", "3"),  # each hour: the files, a diff of it
        ("", "database", "database", "20h", "30"),  # by hand
    ],
)
def test_backup_template_chooses_the_run_from_its_schedule(
    schedule: str, dispatched: str, only: str, full_after: str, days: str
) -> None:
    """One workflow, two crons: the hourly run is a diff of the files kept 3 days (it
    expires before its base, kept 30, so a diff never outlives its base); the daily one
    is full; both read their base from this repository's artifacts."""
    doc = _load(ROOT / "workflows-templates" / "backup.yml")
    step = next(s for s in doc["jobs"]["backup"]["steps"] if s.get("id") == "backup")
    context = {"github": {"event": {"schedule": schedule}, "repository": "acme/app"},
               "inputs": {"backup_type": dispatched}}  # fmt: skip
    given = {k: substitute(v if isinstance(v, str) else json.dumps(v), context)
             for k, v in step["with"].items()}  # fmt: skip
    assert (given["only"], given["full-after"], given["retention-days"]) == (only, full_after, days)
    assert given["incremental"] == "true" and given["base-from"] == "gh-artifacts://acme/app"
    action = _load(ROOT / "action.yml")
    assert set(given) <= set(action["inputs"])
