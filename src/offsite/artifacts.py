"""GitHub Artifacts as a destination of the offsite actions.

Artifacts cannot be written through GitHub's REST API: only ``actions/upload-artifact``
inside a job can. So ``github-artifacts`` among the destinations means the folder the
action names in ``OFFSITE_ARTIFACTS_DIR``; offsite writes the set there like into any
folder, and the action uploads the set's folder as the artifact ``backup-<set-id>``
(``OFFSITE_ARTIFACT_NAME`` overrides it), so the artifact has ``manifest.json`` at its root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from offsite.errors import BadInput
from offsite.manifest import Manifest
from offsite.table import human_size

ARTIFACTS = "github-artifacts"
PREFIX = "backup-"


def staging_dir(env: Mapping[str, str] | None = None) -> str | None:
    return (os.environ if env is None else env).get("OFFSITE_ARTIFACTS_DIR") or None


# what actions/upload-artifact refuses in a name, and what a name must start with to be
# seen at all by restore, prune and monitor (they read backup-* artifacts only)
_REFUSED = set('"<>|*?:\\/\r\n')


ID = "{id}"  # where a custom artifact name carries the set's id


def check_name(name: str) -> str:
    """``name`` (a custom artifact name) when upload-artifact takes it and offsite finds
    the set again: ``backup-{id}`` and whatever follows (``backup-{id}-db``), since
    restore, prune and the monitor read backup-* artifacts and find a set by its id."""
    if not name.startswith(PREFIX + ID):
        raise BadInput(f"artifact-name {name!r}: write it as {PREFIX}{ID}… (e.g. "
                       f"{PREFIX}{ID}-db): restore and prune find a set by the id in its "
                       "artifact's name")  # fmt: skip
    if _REFUSED & set(name.replace(ID, "")):
        raise BadInput(f"artifact-name {name!r}: upload-artifact refuses any of \" : < > | * ? "
                       "\\ / and line breaks in a name")  # fmt: skip
    return name


def refuse_public(destinations: Iterable[str], allowed: bool, why: str) -> None:
    """Refuse (BadInput ``why``) unencrypted sets into GitHub Artifacts of a public
    repository, unless ``allowed`` (--allow-public-unencrypted)."""
    if any(d.strip() == ARTIFACTS for d in destinations) and not allowed and public_repository():
        raise BadInput(why)


def public_repository(env: Mapping[str, str] | None = None) -> bool:
    """Whether the workflow runs in a public repository (its event says so): anyone signed
    in to GitHub can download that repository's artifacts."""
    import json

    path = (os.environ if env is None else env).get("GITHUB_EVENT_PATH")
    try:
        with open(path or "", encoding="utf-8") as fh:
            repository = json.load(fh).get("repository") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return repository.get("visibility") == "public" or repository.get("private") is False


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
            chosen = (os.environ if env is None else env).get("OFFSITE_ARTIFACT_NAME")
            if chosen:
                check_name(chosen)  # before the backup runs, not after
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
    custom = (os.environ if env is None else env).get("OFFSITE_ARTIFACT_NAME")
    return check_name(custom).replace(ID, set_id) if custom else f"{PREFIX}{set_id}"


def publish(manifest: Manifest, destinations: tuple[str, ...], other_summary: str = "") -> None:
    """The step outputs of a set just written to ``destinations`` (inside Actions):
    ``backup-id``, ``size-bytes``, the folder on the runner (``backup-path``, ``manifest``),
    and for a staged artifact ``artifact-path``, ``artifact-name`` and its summary;
    ``other_summary`` when there is no artifact."""
    from offsite import gha
    from offsite.storage.local import LocalStorage
    from offsite.urls import scheme_of

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
