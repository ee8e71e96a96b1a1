"""Entry names: the one pattern a name must match, where it is written (a source's name)
and where it is read (every manifest, through the schema, which holds the same pattern).

A name becomes a file name in the set folder and a path in a whole-set restore's target,
so it never holds a ``/``, never starts with ``.`` and is plain ASCII.
"""

from __future__ import annotations

import re

from offsite.errors import BadInput

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
NAME = re.compile(NAME_PATTERN)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


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
