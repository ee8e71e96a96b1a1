"""GitHub Artifacts as a destination of the offsite actions.

Artifacts cannot be written through GitHub's REST API: only ``actions/upload-artifact``
inside a job can. So ``github-artifacts`` among the destinations means the folder the
action names in ``OFFSITE_ARTIFACTS_DIR``; offsite writes the set there like into any
folder, and the action uploads the set's folder as the artifact ``backup-<set-id>``
(``OFFSITE_ARTIFACT_NAME`` overrides it), so the artifact has ``manifest.json`` at its root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from offsite.errors import BadInput
from offsite.manifest import Manifest
from offsite.table import human_size

ARTIFACTS = "github-artifacts"


def staging_dir(env: Mapping[str, str] | None = None) -> str | None:
    return (os.environ if env is None else env).get("OFFSITE_ARTIFACTS_DIR") or None


def resolve(destinations: tuple[str, ...], env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The destinations with ``github-artifacts`` replaced by the staging folder."""
    out: list[str] = []
    for value in destinations:
        if value.strip() == ARTIFACTS:
            folder = staging_dir(env)
            if not folder:
                raise BadInput(
                    "github-artifacts is written by the offsite actions (they upload the set "
                    "with actions/upload-artifact); outside them, back up to a folder"
                )
            value = folder
        if value not in out:
            out.append(value)
    return tuple(out)


def staged_folder(folders: list[Path], env: Mapping[str, str] | None = None) -> Path | None:
    """The set folder among ``folders`` that lies in the staging folder, if any."""
    folder = staging_dir(env)
    if not folder:
        return None
    root = Path(folder).expanduser().resolve()
    return next((f for f in folders if f.resolve().parent == root), None)


def artifact_name(set_id: str, env: Mapping[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get("OFFSITE_ARTIFACT_NAME") or f"backup-{set_id}"


def summary(manifest: Manifest, name: str, env: Mapping[str, str] | None = None) -> str:
    """The step summary of a set uploaded as an artifact: what it holds and the exact
    commands that bring it back."""
    env = os.environ if env is None else env
    repo = env.get("GITHUB_REPOSITORY", "OWNER/REPO")
    run_id = env.get("GITHUB_RUN_ID", "RUN_ID")
    rows = "\n".join(
        f"| `{e.name}` | {e.kind} | `{e.file}` | {human_size(e.size)} | `{e.sha256}` |"
        for e in manifest.entries
    )
    first = manifest.entries[0].name if manifest.entries else "ENTRY"
    return (
        f"### offsite backup `{manifest.id}` → GitHub Artifacts `{name}`\n\n"
        f"{len(manifest.entries)} entries, {human_size(manifest.size)} in all.\n\n"
        "| entry | kind | file | size | sha256 |\n|---|---|---|---:|---|\n"
        f"{rows}\n\n"
        "Restore:\n\n"
        "```bash\n"
        f"gh run download {run_id} --repo {repo} -n {name} -D restore/\n"
        "offsite verify restore/ --read-data\n"
        f"offsite restore restore/ --entry {first} --into TARGET\n"
        "```"
    )
