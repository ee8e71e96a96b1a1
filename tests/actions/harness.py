"""Runs a composite action's steps on this machine the way GitHub's runner does.

- ``inputs`` are the action's defaults (expressions evaluated) overlaid by what the test
  gives; an input the action does not declare is an error here (the runner only warns).
- ``run:`` steps: ``env:`` values substituted from the contexts, then the script run by
  ``bash --noprofile --norc -eo pipefail`` with ``GITHUB_ACTION_PATH``, a fresh
  ``GITHUB_OUTPUT`` per step, ``GITHUB_STEP_SUMMARY``, ``GITHUB_PATH`` and ``GITHUB_ENV``
  honoured for the steps after, and ``RUNNER_TEMP`` / ``RUNNER_OS``.
- ``uses:`` steps go to stand-ins for the few actions the offsite actions use, keyed by
  ``owner/repo[/path]``; each must be pinned to a full commit SHA.
- ``if:`` conditions, ``steps.<id>.outputs`` / ``outcome`` and the action's ``outputs``
  are evaluated as GitHub does (``tests/actions/expressions.py``).

The log is captured raw, before the runner's masking, so a test can prove that a secret
was never printed at all, except inside the ``::add-mask::`` command that hides it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.actions.expressions import condition, substitute

ROOT = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"^(?P<name>[^@]+)@(?P<sha>[0-9a-f]{40})$")

Handler = Callable[["Job", dict[str, str]], dict[str, str]]


@dataclass
class StepRecord:
    name: str
    id: str | None
    outcome: str  # success | failure | skipped
    outputs: dict[str, str]
    code: int = 0


@dataclass
class Result:
    outcome: str
    outputs: dict[str, str]
    steps: list[StepRecord]
    log: str
    summary: str
    output_files: str  # everything written to GITHUB_OUTPUT, raw

    def step(self, name_or_id: str) -> StepRecord:
        return next(s for s in self.steps if name_or_id in (s.id, s.name))


def parse_outputs(text: str) -> dict[str, str]:
    """``name=value`` and ``name<<DELIM`` … ``DELIM`` lines, as the runner reads them."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            i += 1
            while lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


@dataclass
class Job:
    """One job's runner: its temp folder, workspace, PATH additions, artifacts and cache."""

    root: Path
    env: dict[str, str]
    handlers: dict[str, Handler] = field(default_factory=dict)
    run_id: str = "7000001"
    repository: str = "octo-org/app"
    token: str = "ghs_harnessTokenNotASecretForGitHub0001"
    os: str = "Linux"

    def __post_init__(self) -> None:
        self.temp = self.root / "runner-temp"
        self.workspace = self.root / "workspace"
        self.artifacts = self.root / "artifact-service" / self.run_id
        self.cache = self.root / "cache-service"
        for folder in (self.temp, self.workspace, self.artifacts, self.cache):
            folder.mkdir(parents=True, exist_ok=True)
        self.path: list[str] = []
        self.job_env: dict[str, str] = {}
        self.summary_file = self.temp / "step-summary.md"
        self.summary_file.touch()
        self.handlers = {**default_handlers(), **self.handlers}

    def github(self, action_path: Path) -> dict[str, Any]:
        return {
            "token": self.token,
            "action_path": str(action_path),
            "repository": self.repository,
            "run_id": self.run_id,
            "run_attempt": "1",
            "workflow": "backup",
            "job": "backup",
            "workspace": str(self.workspace),
            "server_url": "https://github.com",
        }

    def run(self, action: str, inputs: dict[str, str]) -> Result:
        action_dir = ROOT / action
        meta = yaml.safe_load((action_dir / "action.yml").read_text())
        declared = meta.get("inputs", {})
        unknown = set(inputs) - set(declared)
        assert not unknown, f"{action} has no inputs {sorted(unknown)}"
        github = self.github(action_dir)
        base = {"github": github, "runner": {"temp": str(self.temp), "os": self.os}}
        values = {
            name: substitute(str(spec.get("default", "")), base) for name, spec in declared.items()
        }
        values.update(inputs)
        context: dict[str, Any] = {**base, "inputs": values, "steps": {}, "env": {}}
        status = "success"
        records: list[StepRecord] = []
        log: list[str] = []
        written: list[str] = []
        for n, step in enumerate(meta["runs"]["steps"]):
            name = step.get("name", f"step {n}")
            if not condition(step.get("if"), context, status):
                records.append(StepRecord(name, step.get("id"), "skipped", {}))
                if step.get("id"):
                    context["steps"][step["id"]] = {"outputs": {}, "outcome": "skipped"}
                continue
            if "run" in step:
                code, outputs, text, raw = self._run_step(step, context, action_dir, n)
                log.append(f"##[group]Run {name}\n{text}")
                written.append(raw)
            else:
                code, outputs = self._uses_step(step, context, log)
            outcome = "success" if code == 0 else "failure"
            if code != 0:
                status = "failure"
            records.append(StepRecord(name, step.get("id"), outcome, outputs, code))
            if step.get("id"):
                context["steps"][step["id"]] = {"outputs": outputs, "outcome": outcome}
        action_outputs = {
            name: substitute(str(spec["value"]), context)
            for name, spec in meta.get("outputs", {}).items()
        }
        return Result(
            status,
            action_outputs,
            records,
            "\n".join(log),
            self.summary_file.read_text(),
            "\n".join(written),
        )

    def _process_env(self, action_dir: Path) -> dict[str, str]:
        env = dict(self.env)
        env.update(self.job_env)
        env["PATH"] = os.pathsep.join([*reversed(self.path), env.get("PATH", "")])
        env.update(
            {
                "GITHUB_ACTIONS": "true",
                "CI": "true",
                "GITHUB_ACTION_PATH": str(action_dir),
                "GITHUB_REPOSITORY": self.repository,
                "GITHUB_RUN_ID": self.run_id,
                "GITHUB_RUN_ATTEMPT": "1",
                "GITHUB_WORKFLOW": "backup",
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_STEP_SUMMARY": str(self.summary_file),
                "RUNNER_TEMP": str(self.temp),
                "RUNNER_OS": self.os,
                "HARNESS_ARTIFACTS": str(self.artifacts.parent),
            }
        )
        return env

    def _run_step(
        self, step: dict[str, Any], context: dict[str, Any], action_dir: Path, n: int
    ) -> tuple[int, dict[str, str], str, str]:
        assert step.get("shell") == "bash", "composite run steps need shell: bash"
        env = self._process_env(action_dir)
        for key, value in (step.get("env") or {}).items():
            env[key] = substitute(str(value), context)
        files = {name: self.temp / f"_{name}_{n}" for name in ("output", "path", "env")}
        for path in files.values():
            path.write_text("")
        env.update(
            GITHUB_OUTPUT=str(files["output"]),
            GITHUB_PATH=str(files["path"]),
            GITHUB_ENV=str(files["env"]),
        )
        script = self.temp / f"_step_{n}.sh"
        script.write_text(step["run"])
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        raw = files["output"].read_text()
        self.path += [p for p in files["path"].read_text().splitlines() if p]
        self.job_env.update(parse_outputs(files["env"].read_text()))
        return proc.returncode, parse_outputs(raw), proc.stdout, raw

    def _uses_step(
        self, step: dict[str, Any], context: dict[str, Any], log: list[str]
    ) -> tuple[int, dict[str, str]]:
        m = PINNED.match(step["uses"])
        assert m, f"{step['uses']} is not pinned to a full commit SHA"
        handler = self.handlers.get(m.group("name"))
        assert handler, f"the harness has no stand-in for {m.group('name')}"
        with_values = {k: substitute(str(v), context) for k, v in (step.get("with") or {}).items()}
        log.append(f"##[group]Run {step['uses']}\n{with_values}")
        try:
            return 0, handler(self, with_values)
        except HarnessStepFailed as exc:
            log.append(f"##[error]{exc}")
            return 1, {}


class HarnessStepFailed(Exception):
    pass


def _upload_artifact(job: Job, w: dict[str, str]) -> dict[str, str]:
    """actions/upload-artifact v7: zips the files under ``path`` (relative to it, as the
    service stores them), refuses a name this run already has, and an empty upload."""
    assert w.get("compression-level") == "0", "backups are compressed already"
    assert w.get("archive", "true") != "false", "gh run download cannot unpack archive: false"
    source = Path(w["path"])
    files = [p for p in sorted(source.rglob("*")) if p.is_file()] if source.is_dir() else []
    if not files:
        raise HarnessStepFailed(f"No files were found with the provided path: {w['path']}")
    target = job.artifacts / f"{w['name']}.zip"
    if target.exists():
        raise HarnessStepFailed(f"an artifact with the name {w['name']} already exists")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:
        for path in files:
            zf.write(path, path.relative_to(source).as_posix())
    digest = "sha256:" + hashlib.sha256(target.read_bytes()).hexdigest()
    target.with_name(target.name + ".digest").write_text(digest)  # what the service records
    return {"artifact-id": str(abs(hash(w["name"])) % 10**9), "artifact-url": "https://x",
            "artifact-digest": digest}  # fmt: skip


def _download_artifact(job: Job, w: dict[str, str]) -> dict[str, str]:
    """actions/download-artifact v8: a run's artifacts (of this repository or another) by
    name or pattern, each checked against the digest recorded at upload (digest-mismatch:
    error fails the step), unzipped into path (by pattern: a folder each)."""
    import fnmatch

    store = job.artifacts.parent
    repository = w.get("repository") or job.repository
    if repository != job.repository:
        store = store / repository.replace("/", "__")
    zips = sorted((store / w["run-id"]).glob("*.zip"))
    if w.get("name"):
        zips = [z for z in zips if z.stem == w["name"]]
    elif w.get("pattern"):
        zips = [z for z in zips if fnmatch.fnmatch(z.stem, w["pattern"])]
    if not zips:
        wanted = w.get("name") or w.get("pattern")
        raise HarnessStepFailed(f"Unable to download artifact(s): Artifact not found: {wanted}")
    path = Path(w["path"])
    for zipped in zips:
        recorded = zipped.with_name(zipped.name + ".digest").read_text()
        actual = "sha256:" + hashlib.sha256(zipped.read_bytes()).hexdigest()
        if recorded != actual and w.get("digest-mismatch", "error") == "error":
            raise HarnessStepFailed(f"Digest validation failed for artifact(s): {zipped.stem}")
        target = path if w.get("name") else path / zipped.stem
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zipped) as zf:
            zf.extractall(target)
    return {"download-path": str(path)}


def _cache_restore(job: Job, w: dict[str, str]) -> dict[str, str]:
    keys = [w["key"], *[k.strip() for k in w.get("restore-keys", "").splitlines() if k.strip()]]
    saved = sorted(job.cache.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for key in keys:
        hit = next((p for p in saved if p.name == key or p.name.startswith(key)), None)
        if hit:
            shutil.copytree(hit, w["path"], dirs_exist_ok=True)
            return {"cache-hit": str(hit.name == w["key"]).lower(), "cache-matched-key": hit.name}
    return {"cache-hit": "false"}


def _cache_save(job: Job, w: dict[str, str]) -> dict[str, str]:
    target = job.cache / w["key"]
    if not target.exists() and Path(w["path"]).is_dir():
        shutil.copytree(w["path"], target)
    return {}


def _setup_python(job: Job, w: dict[str, str]) -> dict[str, str]:
    raise HarnessStepFailed("this machine's python3 is new enough: setup-python must be skipped")


def default_handlers() -> dict[str, Handler]:
    return {
        "actions/upload-artifact": _upload_artifact,
        "actions/download-artifact": _download_artifact,
        "actions/cache/restore": _cache_restore,
        "actions/cache/save": _cache_save,
        "actions/setup-python": _setup_python,
    }


def gh_run_download(job: Job, dest: Path, name: str | None = None) -> Path:
    """What ``gh run download RUN -n NAME -D DEST`` leaves: the artifact unzipped into
    DEST; without ``-n``, one folder per artifact."""
    for zipped in sorted(job.artifacts.glob("*.zip")):
        artifact = zipped.stem
        if name is not None and artifact != name:
            continue
        target = dest if name is not None else dest / artifact
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zipped) as zf:
            zf.extractall(target)
    return dest


def clean_path() -> str:
    """This machine's PATH without the project's own virtual environment, so the actions
    must install offsite and put it on PATH themselves."""
    dev = str(Path(sys.executable).parent)
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != dev)
