"""Names: of entries and of sets, the rules both the storage backends and the set format
follow, so neither has to ask the other.

An entry name must match one pattern, where it is written (a source's name) and where it
is read (every manifest, through the schema, which holds the same pattern). It becomes a
file name in the set folder and a path in a whole-set restore's target, so it never holds
a ``/``, never starts with ``.`` and is plain ASCII.

A set id is the UTC time its run started, ``YYYYMMDDTHHMMSSZ`` (``-N`` when two runs
met); a set's folder is named by it, or, as a GitHub artifact, ``backup-<id>…``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from offsite.errors import BadInput

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
NAME = re.compile(NAME_PATTERN)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# fullmatch these: $ matches before a newline; [0-9], not \d, which takes any script's digits
SET_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z(-[0-9]{1,6})?")
ARTIFACT_PREFIX = "backup-"  # a set uploaded to GitHub Artifacts: backup-<id>…


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise BadInput(
            f"entry name {name!r} must start with a letter or digit and hold only "
            "letters, digits, '.', '_' and '-'"
        )
    return name


def safe_name(text: str, fallback: str) -> str:
    """``text`` made into a name ``check_name`` accepts: other characters (also non-ASCII
    letters) become ``_``, leading ``.``, ``_`` and ``-`` go, at most 100 characters;
    ``fallback`` when nothing is left."""
    safe = _UNSAFE.sub("_", text).lstrip("._-")[:100]
    return safe if NAME.fullmatch(safe) else fallback


def set_id_for(moment: datetime) -> str:
    """The set id of a run started at ``moment``: UTC, ``YYYYMMDDTHHMMSSZ``."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def set_time(set_id: str) -> datetime:
    """The UTC start time a set id stands for (a ``-N`` clash suffix is ignored)."""
    return datetime.strptime(set_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def is_set_id(text: str) -> bool:
    """A set id whose date and time exist (``20261399T…`` has the shape, not the date)."""
    if not SET_ID.fullmatch(text):
        return False
    try:
        set_time(text)
    except ValueError:
        return False
    return True


_ARTIFACT = re.compile(rf"{ARTIFACT_PREFIX}({SET_ID.pattern})(?:-.*)?", re.DOTALL)


def set_ids_of(name: str) -> list[str]:
    """The set ids a set folder's name may stand for: ``<id>``, an artifact's
    ``backup-<id>``, or a custom artifact name ``backup-<id>-…`` (``-2-db`` may be the id's
    clash suffix and ``db``, or ``2-db``: both, longest first; the manifest's id decides);
    none for another name."""
    if SET_ID.fullmatch(name):
        return [name] if is_set_id(name) else []
    found = _ARTIFACT.fullmatch(name)
    if not found:
        return []
    ids = [found.group(1)]
    if "-" in ids[0]:
        ids.append(ids[0].split("-", 1)[0])
    return [i for i in ids if is_set_id(i)]
