"""Push mirrors: every ref of each source repository (branches, tags, notes) pushed to a
secondary remote, e.g. ``https://gitlab.example.com/backup/{repo}.git``.

The source side is the git source's mirror (``--mirror-cache`` keeps it between runs);
the push goes with ``OFFSITE_PUSH_TOKEN`` through the same askpass helper, never in a URL.
``prune`` pushes with ``--mirror`` (refs gone from the source go from the target too);
without it, refs are created and force-updated, never deleted.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from offsite.errors import BadInput, OffsiteError, OperationFailed, SourceFailed
from offsite.sources.git import GitSource
from offsite.sources.git_remote import git_env, refs, run_git
from offsite.urls import redact

REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "+refs/notes/*:refs/notes/*")
PUSH_TOKEN = "OFFSITE_PUSH_TOKEN"


@dataclass(frozen=True)
class Pushed:
    name: str
    target: str  # without credentials
    refs: int
    seconds: float
    error: str | None = None


def target_for(template: str, source: GitSource, owner: str = "") -> str:
    if "{repo}" not in template:
        raise BadInput(
            "--push-to needs {repo} in it, e.g. https://gitlab.example.com/backup/{repo}.git"
        )
    url = template.replace("{repo}", source.name).replace("{owner}", owner)
    return url[len("git+") :] if url.startswith("git+") else url


def push_one(source: GitSource, template: str, prune: bool, workdir: Path) -> Pushed:
    started = time.monotonic()
    target = target_for(template, source)

    def fail(reason: str) -> SourceFailed:
        return SourceFailed(source.name, reason)

    mirror, _ = source.update(workdir)
    count = len(refs(mirror, fail))
    args = (
        ["push", "--quiet", "--mirror", "--", target]
        if prune
        else ["push", "--quiet", "--", target, *REFSPECS]
    )
    with git_env(target, workdir, os.environ.get(PUSH_TOKEN)) as env:
        run_git(args, env, fail, mirror)
    return Pushed(source.name, redact(target), count, time.monotonic() - started)


def push_all(sources: list[GitSource], template: str, prune: bool, jobs: int) -> list[Pushed]:
    """Every source pushed, ``jobs`` at once; failures are collected, not raised, so every
    repository gets its turn and the report names each one that failed."""
    with tempfile.TemporaryDirectory(prefix="offsite-mirror-") as scratch:

        def one(source: GitSource) -> Pushed:
            folder = Path(scratch) / source.name
            folder.mkdir()
            try:
                return push_one(source, template, prune, folder)
            except OffsiteError as exc:
                return Pushed(
                    source.name, redact(target_for(template, source)), 0, 0.0, exc.message()
                )

        with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
            return list(pool.map(one, sources))


def raise_failures(done: list[Pushed]) -> None:
    failed = [p for p in done if p.error]
    if len(failed) == 1:
        raise OperationFailed(failed[0].error or "")
    if failed:
        reasons = "; ".join(p.error or "" for p in failed)
        raise OperationFailed(f"{len(failed)} of {len(done)} repositories failed: {reasons}")
