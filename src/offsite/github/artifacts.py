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
from offsite.names import ARTIFACT_PREFIX

ARTIFACTS = "github-artifacts"
PREFIX = ARTIFACT_PREFIX


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


def dies_with_repository(
    destinations: Iterable[str], sources: Iterable[str], env: Mapping[str, str] | None = None
) -> str | None:
    """Why a backup of the repository the workflow runs in, kept only in that repository's
    own Artifacts, is no backup against its deletion (SPEC §11); None where it is not so."""
    here = (os.environ if env is None else env).get("GITHUB_REPOSITORY", "").lower()
    given = [d.strip() for d in destinations if d.strip()]
    if not here or not given or any(d != ARTIFACTS for d in given):
        return None
    mine = any(u.startswith("github://") and u[len("github://") :].strip("/").lower() == here
               for u in sources)  # fmt: skip
    if not mine:
        return None
    return (f"{here} is backed up only into its own GitHub Artifacts: deleting the "
            "repository deletes these backups with it; add a destination outside it")  # fmt: skip


def kept_in_itself(storage: str, sources: Iterable[str]) -> str | None:
    """The monitor's side of ``dies_with_repository``: a destination that is a
    repository's own Artifacts (``gh-artifacts://OWNER/REPO``) holding backups of that
    repository; None where it is not so."""
    prefix = "gh-artifacts://"
    if not storage.lower().startswith(prefix):
        return None
    here = storage[len(prefix) :].strip("/").lower()
    if not any(u.lower().startswith("github://") and u[len("github://") :].strip("/").lower()
               == here for u in sources):  # fmt: skip
        return None
    return (f"{here} is backed up into its own GitHub Artifacts: deleting the repository "
            "deletes these backups with it; keep a copy outside it")  # fmt: skip
