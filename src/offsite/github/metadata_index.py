"""The index of a repository's GitHub metadata (SPEC §10): ``index.json`` names every item
the export wrote, per kind, with its fingerprint (the SHA-256 of a JSON item's file, a
release asset's id, size and time), and per list each page's ETag and items. Read back
from a base it is untrusted input: ``Index.loads`` takes only the names and fingerprints
offsite writes. ``settle`` makes a folder of base and diff exactly what a diff's index
lists.

Layout (``tar -x`` gives a folder a person or a script can read)::

    index.json                       every item per kind, its fingerprint; list pages' ETags
    settings/repository.json
    labels/<id>.json  milestones/<number>.json  releases/<id>.json
    issues/<number>.json             pull requests too, as the issues list has them
    issue-comments/<id>.json  pulls/<number>.json  pull-review-comments/<id>.json
    pull-reviews/<pull number>/<id>.json
    release-assets/<release id>/<asset name>
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INDEX = "index.json"
INDEX_FORMAT = "offsite-metadata-index/2"  # /2: the settings of SPEC §11 too
READABLE = ("offsite-metadata-index/1", INDEX_FORMAT)
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_ITEM_KEY = re.compile(r"^\d{1,20}\.json$")
_NESTED_KEY = re.compile(r"^\d{1,20}/\d{1,20}\.json$")
_ASSET_KEY = re.compile(r"^\d{1,20}/[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,254}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ASSET_FINGERPRINT = re.compile(r"^asset:\d{1,20}:\d{1,20}:")
_PAGES = re.compile(r"^(?:labels|milestones|issues|issue-comments|pulls|pull-review-comments"
                    r"|releases|pull-reviews/\d{1,20})$")  # fmt: skip
_NAMED_KEY = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,200}-[0-9a-f]{16}\.json$")


def next_page(headers: dict[str, Any]) -> str | None:
    """The ``rel="next"`` address of GitHub's ``Link`` header, or None on the last page."""
    link = next((v for k, v in headers.items() if k.lower() == "link"), None)
    m = _NEXT.search(str(link or ""))
    return m.group(1) if m else None


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).lstrip(".")
    return cleaned or "asset"


def item_bytes(item: Any) -> bytes:
    return (json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n").encode()


class Unreadable(Exception):
    """What the token may not read (403) or what is not there (404): a line in the report
    (403), nothing (404), never a failure."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.status = status


SETTINGS = ("repository.json", "topics.json", "custom-properties.json")


@dataclass(frozen=True)
class Setting:
    """A list a restore into GitHub needs besides the items (SPEC §11): its folder, its
    path under ``/repos/OWNER/REPO``, what names an item (``id``, or ``name``: a file of
    the name made safe and its hash), the key its answer wraps the list in, if any."""

    kind: str
    path: str
    key: str
    wrapped: str = ""
    params: tuple[tuple[str, str], ...] = ()

    @property
    def stat(self) -> str:
        return self.kind.replace("-", "_")


SETTING_LISTS: tuple[Setting, ...] = (
    Setting("rulesets", "rulesets", "id", params=(("includes_parents", "false"),)),
    Setting("environments", "environments", "name", "environments"),
    Setting("variables", "actions/variables", "name", "variables"),
    Setting("secrets", "actions/secrets", "name", "secrets"),  # names and times: no values
    Setting("autolinks", "autolinks", "id"),
    Setting("hooks", "hooks", "id"),  # GitHub shows no secret of a hook's configuration
    Setting("deploy-keys", "keys", "id"),
    Setting("collaborators", "collaborators", "id", params=(("affiliation", "direct"),)),
    Setting("teams", "teams", "id"),
)
NAMED = frozenset({"branch-protection", *(x.kind for x in SETTING_LISTS if x.key == "name")})


@dataclass(frozen=True)
class Listing:
    """One of a repository's lists: its folder, its path under ``/repos/OWNER/REPO``, the
    query, and which field names an item's file."""

    kind: str
    path: str
    params: dict[str, str]
    key: str  # "number" or "id"
    stat: str  # its count's name in the entry's stats


LISTINGS: tuple[Listing, ...] = (
    Listing("labels", "labels", {}, "id", "labels"),
    Listing("milestones", "milestones", {"state": "all"}, "number", "milestones"),
    Listing("issues", "issues", {"state": "all", "sort": "created", "direction": "asc"},
            "number", "issues"),
    Listing("issue-comments", "issues/comments", {"sort": "created", "direction": "asc"},
            "id", "issue_comments"),
    Listing("pulls", "pulls", {"state": "all", "sort": "created", "direction": "asc"},
            "number", "pulls"),
    Listing("pull-review-comments", "pulls/comments", {"sort": "created", "direction": "asc"},
            "id", "pull_review_comments"),
    Listing("releases", "releases", {}, "id", "releases"),
)  # fmt: skip
NESTED = {"pull-reviews": "pull_reviews", "release-assets": "release_assets"}
KINDS = frozenset({"settings", "branch-protection", *(x.kind for x in LISTINGS), *NESTED,
                   *(x.kind for x in SETTING_LISTS)})  # fmt: skip


@dataclass
class Index:
    """What ``index.json`` says: per kind, each item's file (relative to the kind's folder)
    and fingerprint (the SHA-256 of a JSON item's file; a release asset's id, size, time);
    per list, each page's ETag and the items it held."""

    items: dict[str, dict[str, str]] = field(default_factory=dict)
    pages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    repository: str = ""
    unreadable: dict[str, str] = field(default_factory=dict)  # kind → why the token could not

    def to_bytes(self) -> bytes:
        body = {"format": INDEX_FORMAT, "repository": self.repository,
                "items": {k: dict(sorted(v.items())) for k, v in sorted(self.items.items())},
                "pages": dict(sorted(self.pages.items())),
                "unreadable": dict(sorted(self.unreadable.items()))}  # fmt: skip
        return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def loads(cls, data: bytes) -> Index:
        """An index read back; ValueError where it is not one this offsite wrote (every
        key a file name offsite gives, every fingerprint of its shape, every page's items
        in the index)."""
        try:
            body = json.loads(data)
            if not isinstance(body, dict) or body.get("format") not in READABLE:
                raise ValueError(f"not an {INDEX_FORMAT} index")
            items, pages = body.get("items"), body.get("pages")
            if not isinstance(items, dict) or not isinstance(pages, dict):
                raise ValueError("its items or pages are not objects")
            for kind, listed in items.items():
                if kind not in KINDS or not isinstance(listed, dict):
                    raise ValueError(f"an unknown kind {str(kind)[:40]!r}")
                for key, value in listed.items():
                    if not valid_item(kind, key, value):
                        raise ValueError(f"an item {kind}/{key[:60]!r} offsite does not name so")
            for name, listed in pages.items():
                kind = name.split("/")[0]
                if not _PAGES.match(name) or not isinstance(listed, list):
                    raise ValueError(f"pages of an unknown list {name[:40]!r}")
                known = items.get(kind, {})
                for page in listed:
                    if not isinstance(page, dict) or not isinstance(page.get("etag"), str):
                        raise ValueError(f"a page of {name} without its ETag")
                    keys = page.get("keys")
                    if not isinstance(keys, list) or not all(
                        isinstance(k, str) and k in known for k in keys
                    ):
                        raise ValueError(f"a page of {name} names items the index lacks")
        except (TypeError, AttributeError, RecursionError) as exc:
            raise ValueError(f"not an index offsite wrote ({type(exc).__name__})") from None
        unreadable = body.get("unreadable", {})
        if not isinstance(unreadable, dict) or not all(
            (k in KINDS or k in ("topics", "custom-properties"))
            and isinstance(v, str)
            and len(v) <= 1000
            for k, v in unreadable.items()
        ):
            raise ValueError("its unreadable kinds are not an object of kinds and reasons")
        return cls(items, pages, str(body.get("repository") or ""), unreadable)


def valid_item(kind: str, key: Any, fingerprint: Any) -> bool:
    """Whether ``key`` is a file name offsite gives an item of ``kind`` (nothing that
    climbs, no NUL, a parent's number where the kind nests), with a fingerprint of the
    kind's shape."""
    if not isinstance(key, str) or not isinstance(fingerprint, str):
        return False
    if kind == "settings":
        return key in SETTINGS and bool(_SHA256.match(fingerprint))
    if kind == "release-assets":
        return bool(_ASSET_KEY.match(key) and _ASSET_FINGERPRINT.match(fingerprint))
    shape = _NESTED_KEY if kind == "pull-reviews" else _NAMED_KEY if kind in NAMED else _ITEM_KEY
    return bool(shape.match(key) and _SHA256.match(fingerprint))


def settle(folder: Path) -> list[str]:
    """After a diff was extracted over its base (SPEC §10): remove each item file its
    ``index.json`` does not list (and the folders that leaves empty); then what is wrong:
    an item the index lists that is missing, or whose bytes do not hash as it says."""
    try:
        index = Index.loads((folder / INDEX).read_bytes())
    except (OSError, ValueError) as exc:
        return [f"{INDEX}: {exc}"]
    for kind in sorted(KINDS):
        root = folder / kind
        if root.is_symlink() or (root.exists() and not root.is_dir()):
            return [f"{kind}: not a folder"]
        listed = index.items.get(kind, {})
        for parent, dirs, files in os.walk(root, topdown=False):
            here = Path(parent)
            for name in files:
                if (here / name).relative_to(root).as_posix() not in listed:
                    (here / name).unlink()
            for name in dirs:
                with contextlib.suppress(OSError):  # not empty: it holds listed items
                    (here / name).rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()
    return index_problems(folder, index)


def index_problems(folder: Path, index: Index) -> list[str]:
    """Each item ``index`` lists that is missing from ``folder`` or whose bytes do not hash
    as it says (a release asset's fingerprint is no SHA-256: it is only there)."""
    problems = []
    for kind, listed in index.items.items():
        for key, fingerprint in listed.items():
            path = folder / kind / key
            if not path.is_file() or path.is_symlink():
                problems.append(f"{kind}/{key}: missing")
            elif _SHA256.match(fingerprint) and _file_sha256(path) != fingerprint:
                problems.append(f"{kind}/{key}: its SHA-256 is not the index's")
    return problems


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
