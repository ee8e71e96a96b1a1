"""What a set just written tells the workflow (backup, copy): the step outputs, and for a
set staged for GitHub Artifacts the summary the action adds once it is uploaded; what a
backup run tells the terminal (``report``) and the step summary (``backup_summary``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from offsite.backup import BackupResult
from offsite.github import gha
from offsite.github.artifacts import artifact_name, staged_folder
from offsite.sets.manifest import Manifest
from offsite.storage.local import LocalStorage
from offsite.table import entries, human_duration, human_size, render
from offsite.urls import scheme_of


def publish(manifest: Manifest, destinations: tuple[str, ...], other_summary: str = "") -> None:
    """The step outputs of a set just written to ``destinations`` (inside Actions):
    ``backup-id``, ``size-bytes``, the folder on the runner (``backup-path``, ``manifest``),
    and for a staged artifact ``artifact-path``, ``artifact-name`` and its summary;
    ``other_summary`` when there is no artifact."""
    gha.set_output("backup-id", manifest.id)
    gha.set_output("size-bytes", str(manifest.size))
    local = [LocalStorage(d).root / manifest.id for d in destinations if scheme_of(d) == "file"]
    staged = staged_folder(local)
    folder = staged or (local[0] if local else None)
    if folder is not None:
        gha.set_output("backup-path", str(folder))
        gha.set_output("manifest", str(folder / "manifest.json"))
    if staged is not None:
        name = artifact_name(manifest.id)
        gha.set_output("artifact-path", str(staged))
        gha.set_output("artifact-name", name)
        # the summary waits for the upload: the action's next steps upload the set, then
        # add this to the job's summary with what GitHub says it stored
        pending = staged.parent.parent / f"{name}.summary.md"
        try:
            pending.write_text(summary(manifest, name))
            gha.set_output("artifact-summary", str(pending))
        except OSError:
            pass
    elif other_summary:
        gha.append_summary(other_summary)


def summary(manifest: Manifest, name: str, env: Mapping[str, str] | None = None) -> str:
    """The step summary of a set uploaded as an artifact: what it holds and the exact
    commands that bring it back."""
    env = os.environ if env is None else env
    repo = env.get("GITHUB_REPOSITORY", "OWNER/REPO")
    run_id = env.get("GITHUB_RUN_ID", "RUN_ID")
    rows = "\n".join(
        f"| `{e.name}` | {e.kind} | `{e.file or '(unchanged)'}` | {human_size(e.size)} "
        f"| `{e.sha256}` |"
        for e in manifest.entries
    )
    first = manifest.entries[0].name if manifest.entries else "ENTRY"
    return (
        f"### offsite backup `{manifest.id}` → GitHub Artifacts `{name}`\n\n"
        f"{entries(len(manifest.entries))}, {human_size(manifest.size)} in all.\n\n"
        "| entry | kind | file | size | sha256 |\n|---|---|---|---:|---|\n"
        f"{rows}\n\n"
        "Restore:\n\n"
        "```bash\n"
        f"gh run download {run_id} --repo {repo} -n {name} -D restore/\n"
        "offsite verify restore/ --read-data\n"
        f"offsite restore restore/ --entry {first} --into TARGET\n"
        "```"
    )


def report(result: BackupResult) -> str:
    """What a backup run wrote, for the terminal: each entry, and how to restore."""
    m = result.manifest
    rows = [
        (
            r.entry.name,
            r.entry.kind,
            human_size(r.entry.raw_size),
            human_size(r.entry.size),
            human_duration(r.seconds),
            r.entry.file or "(unchanged)",
        )
        for r in result.entries
    ]
    where = ", ".join(result.destinations)
    what = f"a diff of set {m.base.id}" if m.base else "full" if result.full_because else ""
    lines = [
        f"backup {m.id} written to {where}: {entries(len(m.entries))}, {human_size(m.size)}"
        + (f" ({what})" if what else ""),
        *([f"a full run: {result.full_because}"] if result.full_because else []),
        "",
        render(("entry", "kind", "raw", "stored", "time", "file"), rows, right=(2, 3, 4)),
        "",
        *(f"skipped {why}" for why in result.skipped),
        f"restore with: offsite restore {result.destinations[0]} --id {m.id} --into TARGET",
    ]
    return "\n".join(lines)


def backup_summary(result: BackupResult) -> str:
    """A backup's step summary: each entry and its checksum."""
    m = result.manifest
    rows = "\n".join(
        f"| `{e.name}` | {e.kind} | {human_size(e.size)} | `{e.sha256[:16]}…` |" for e in m.entries
    )
    return (
        f"### offsite backup `{m.id}`\n\n| entry | kind | size | sha256 |\n|---|---|---|---|\n"
        f"{rows}\n\nRestore: `offsite restore {result.destinations[0]} --id {m.id} --into TARGET`"
    )
