"""What a restored metadata folder holds, read for a restore into GitHub (SPEC §11), and the
pure decisions about it: the origin line each body and comment begins with (naming the
original author and time, notifying nobody, carrying the marker a second run finds), the
numbers a restore keeps, the notes of each issue in the order they were written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offsite.github.metadata_index import INDEX, Index

_MARKER = re.compile(r"^<!-- (offsite:[A-Za-z0-9:._-]{1,200}) -->")
_NUMBER = re.compile(r"/(?:issues|pulls)/(\d{1,12})$")
_LOGIN = re.compile(r"[^A-Za-z0-9_.\[\]-]")
_TIME = re.compile(r"[^0-9A-Za-z:.+-]")
_SPAN = re.compile(r"[`<>@\r\n]")
LONGEST = 65536  # characters GitHub takes in a body or comment
CUT = "\n\n_(cut here: GitHub takes 65,536 characters; the whole text is in the backup)_"


def marker(set_id: str, kind: str, ident: object) -> str:
    """What names an item a restore made: the set, the kind, the item's number or id."""
    return f"offsite:{set_id}:{kind}:{ident}"


def origin(who: str, when: str, mark: str, what: str = "") -> str:
    """The line a body or comment begins with: the marker first, in a comment GitHub does
    not show (nothing the backed-up text holds can come before it), then the author in a
    code span (a mention there notifies nobody) and the time. What the set says of the
    author, the time and the place is cut to characters that cannot leave the code span
    or the line."""
    said = f"{what} " if what else ""  # (made of cleaned parts: see clean)
    who = _LOGIN.sub("_", who)[:40] or "ghost"
    when = _TIME.sub("_", when)[:40]
    return f"<!-- {mark} --><sub>{said}Originally by `@{who}` on {when}.</sub>"


def clean(text: object) -> str:
    """Backed-up text put into an origin line: nothing that can leave a code span or the
    line, open a tag, or mention someone."""
    return _SPAN.sub("_", str(text))[:200]


def with_origin(line: str, body: str | None) -> str:
    """The origin line, then the text unchanged (cut, and saying so, where GitHub would
    refuse it as too long)."""
    text = f"{line}\n\n{body}" if body else line
    return text if len(text) <= LONGEST else text[: LONGEST - len(CUT)] + CUT


def found_marker(body: str | None) -> str | None:
    """The marker a restore put at the start of a body or comment, or None."""
    m = _MARKER.match(body or "")
    return m.group(1) if m else None


def login(item: dict[str, Any], key: str = "user") -> str:
    who = item.get(key)
    return str(who.get("login")) if isinstance(who, dict) and who.get("login") else "ghost"


@dataclass(frozen=True)
class Note:
    """A comment to post on an issue, in the order it was written."""

    when: str
    ident: str  # its marker's id: c<comment id>, r<review id>, rc<review comment id>
    who: str
    what: str  # "" (a comment), "review (approved)", "review comment on `a.py` line 3"
    text: str

    def comment(self, set_id: str) -> str:
        """The comment's body: its origin line, then its text unchanged."""
        line = origin(self.who, self.when, marker(set_id, "note", self.ident), self.what)
        return with_origin(line, self.text)


@dataclass
class Held:
    """A repository's metadata as restored from a set, item by item."""

    folder: Path
    index: Index
    repository: dict[str, Any] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # pull requests too
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    milestones: dict[int, dict[str, Any]] = field(default_factory=dict)
    labels: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    notes: dict[int, list[Note]] = field(default_factory=dict)  # issue number → its notes
    approvals: list[str] = field(default_factory=list)  # reviews with no text: listed

    @classmethod
    def read(cls, folder: Path) -> Held:
        """ValueError where the folder is not a metadata entry of format 3."""
        if not (folder / INDEX).is_file():
            raise ValueError(
                "it holds no index.json: a set made before per-item metadata "
                "(format 2) cannot be restored into GitHub"
            )
        held = cls(folder, Index.loads((folder / INDEX).read_bytes()))
        held.repository = held.one("settings", "repository.json") or {}
        for item in held.items("issues"):
            held.issues[int(item["number"])] = item
        switched_off = not held.issues  # issues off: GitHub's list (410) had no pull request
        for item in held.items("pulls"):
            held.pulls[int(item["number"])] = item
            if switched_off:  # each pull request is its own item
                link = {"url": item.get("url")}
                held.issues[int(item["number"])] = {**item, "state_reason": None,
                                                    "pull_request": link}  # fmt: skip
        for item in held.items("milestones"):
            held.milestones[int(item["number"])] = item
        held.labels = sorted(held.items("labels"), key=lambda x: str(x.get("name")))
        held.releases = sorted(
            held.items("releases"), key=lambda x: (str(x.get("created_at")), int(x["id"]))
        )
        held._gather_notes()
        return held

    def one(self, kind: str, key: str) -> Any:
        path = self.folder / kind / key
        return json.loads(path.read_bytes()) if key in self.index.items.get(kind, {}) else None

    def items(self, kind: str) -> list[Any]:
        """Every item of ``kind`` the index lists, in the order of their files' names."""
        listed = self.index.items.get(kind, {})
        return [json.loads((self.folder / kind / key).read_bytes()) for key in sorted(listed)]

    def _gather_notes(self) -> None:
        notes: dict[int, list[Note]] = {}

        def add(url: Any, note: Note) -> None:
            m = _NUMBER.search(str(url or ""))
            if m and int(m.group(1)) in self.issues:
                notes.setdefault(int(m.group(1)), []).append(note)

        for c in self.items("issue-comments"):
            add(
                c.get("issue_url"),
                Note(
                    str(c.get("created_at")),
                    f"c{int(c['id'])}",
                    login(c),
                    "",
                    str(c.get("body") or ""),
                ),
            )
        for r in self.items("pull-reviews"):
            pull = _NUMBER.search(str(r.get("pull_request_url") or ""))
            state = clean(r.get("state") or "COMMENTED").lower().replace("_", " ")
            if not (r.get("body") or "").strip():
                if pull:
                    self.approvals.append(f"#{pull.group(1)}: {state} by {login(r)}")
                continue
            add(
                r.get("pull_request_url"),
                Note(
                    str(r.get("submitted_at")),
                    f"r{int(r['id'])}",
                    login(r),
                    f"Review ({state}).",
                    str(r.get("body")),
                ),
            )
        for rc in self.items("pull-review-comments"):
            line = clean(rc.get("line") or rc.get("original_line"))
            where = f"on `{clean(rc.get('path'))}` line {line}"
            add(
                rc.get("pull_request_url"),
                Note(
                    str(rc.get("created_at")),
                    f"rc{int(rc['id'])}",
                    login(rc),
                    f"Review comment {where}.",
                    str(rc.get("body") or ""),
                ),
            )
        for number, found in notes.items():
            self.notes[number] = sorted(found, key=lambda n: (n.when, n.ident))

    def top(self) -> int:
        return max([*self.issues, 0])
