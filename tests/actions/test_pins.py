"""Every action offsite's actions, templates, README and manual use is pinned by commit SHA with
its tag beside it, and one action has one pin everywhere (issue 21): users cannot bump a
pin inside someone else's action, so the ones in actions/ are what Dependabot keeps
current, and the templates and the README follow them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USES = re.compile(r"uses:\s*([\w.-]+/[\w.-]+)(/[\w./-]+)?@(\S+)(?:\s*#\s*(\S+))?")
OWN = ("offsite-dev/offsite",)


def _files() -> list[Path]:
    found = [
        ROOT / "action.yml",
        ROOT / "README.md",
        *sorted((ROOT / "actions").glob("*/action.yml")),
        *sorted((ROOT / "docs").rglob("*.md")),
    ]
    found += sorted((ROOT / "workflows-templates").glob("*.yml"))
    found += sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    return found


def _pins() -> list[tuple[str, str, str, str]]:
    """(file, action, ref, tag) for every external ``uses:``."""
    out = []
    for path in _files():
        for m in USES.finditer(path.read_text()):
            action, _, ref, tag = m.groups()
            if action not in OWN and not action.startswith("./"):
                out.append((path.relative_to(ROOT).as_posix(), action, ref, tag or ""))
    return out


def test_every_external_action_is_pinned_by_sha_with_its_tag() -> None:
    pins = _pins()
    assert pins, "no action found: the pattern is wrong"
    loose = [p for p in pins if not re.fullmatch(r"[0-9a-f]{40}", p[2])
             or not re.fullmatch(r"v\d+\.\d+\.\d+", p[3])]  # fmt: skip
    assert loose == [], f"pin by a 40-hex commit SHA, the tag in a comment: {loose}"


def test_one_action_has_one_pin_everywhere() -> None:
    by_action: dict[str, set[tuple[str, str]]] = {}
    where: dict[str, list[str]] = {}
    for file, action, ref, tag in _pins():
        by_action.setdefault(action, set()).add((ref, tag))
        where.setdefault(action, []).append(file)
    differing = {a: sorted(p) for a, p in by_action.items() if len(p) > 1}
    assert differing == {}, f"the same action pinned differently: {differing} in {where}"
    # the actions' own pins lead: the actions themselves use these three, so the pins above
    # held a template's, the README's and a workflow's copy of them to the actions' own
    ours = {a for f, a, _, _ in _pins() if f.startswith("action")}
    assert {"actions/upload-artifact", "actions/setup-python", "actions/cache"} <= ours
