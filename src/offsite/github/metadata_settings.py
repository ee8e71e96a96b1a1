"""What a restore into GitHub needs besides a repository's items (SPEC §11), captured into
the metadata entry: its topics and custom properties, branch protection of every
protected branch, rulesets (each in full), environments (with their deployment branch
policies and variables), Actions variables, the names of Actions secrets (GitHub never
shows a value), autolinks, webhooks (GitHub shows no secret of their configuration),
deploy keys (public), collaborators and teams with their permissions.

Each list is read whole every run (they are short); what the token may not read (403,
404: a fine-grained token without administration, a repository without environments) is
named in ``index.json``'s ``unreadable`` and in one warning line, never a failure, and a
diff keeps the base's items of such a kind. An issue's state, close reason, closing time
and lock reason are in the issue's own JSON already: its events are not read.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from offsite.github import gha
from offsite.github.metadata_index import (
    SETTING_LISTS,
    Setting,
    Unreadable,
    item_bytes,
    next_page,
    safe_name,
)

Export = Any  # offsite.github.metadata.Export (which calls ``capture``)


def named(name: str) -> str:
    """A file for an item named by its name (a branch, an environment, a variable): the
    name made safe, and its hash (two names made safe alike stay apart)."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{safe_name(name)[:200]}-{digest}.json"


def every(export: Export, path: str, params: dict[str, str], wrapped: str = "") -> list[Any]:
    """Every item of a list the token may read (``Unreadable`` where it may not; a list
    that is not there, 404, is empty)."""
    url: str | None = f"{export.root}/{path}"
    query: dict[str, Any] | None = {**params, "per_page": 100}
    found: list[Any] = []
    seen: set[str] = set()
    while url and url not in seen:
        seen.add(url)
        try:
            headers, data = export.get(url, query, first=not found, optional=True)
        except Unreadable as why:
            if why.status == 404 and not found:
                return []  # (a user's repository has no teams; no environments at all)
            raise
        items = data.get(wrapped) if wrapped and isinstance(data, dict) else data
        if not isinstance(items, list):
            raise export.fail(f"{path}: GitHub answered {type(data).__name__}, not a list")
        if not items:
            break
        found += items
        url, query = next_page(headers), None
    return found


def _one(export: Export, path: str, shape: type | tuple[type, ...] = dict) -> Any:
    """One item the list named, or None where it is gone (404) since the list was read."""
    try:
        _, data = export.get(f"{export.root}/{path}", None, first=False, optional=True)
    except Unreadable as why:
        if why.status == 404:
            return None
        raise
    if not isinstance(data, shape):
        raise export.fail(f"{path}: GitHub answered {type(data).__name__}, not the "
                          "object or list it documents")  # fmt: skip
    return data


def _key(export: Export, setting: Setting, item: Any) -> str:
    if setting.key == "name":
        value = item.get("name") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value:
            raise export.fail(f"{setting.path}: GitHub answered an item without a name")
        return named(value)
    return str(export.key(item, "id", setting.path))


def _environment(export: Export, environment: dict[str, Any]) -> dict[str, Any]:
    """An environment with its deployment branch policies and its variables (what of
    them the token may not read is named in the file)."""
    where = f"environments/{quote(str(environment['name']), safe='')}"
    policy = environment.get("deployment_branch_policy")
    custom = isinstance(policy, dict) and policy.get("custom_branch_policies") is True
    out: dict[str, Any] = {"environment": environment, "deployment_branch_policies": [],
                           "variables": []}  # fmt: skip
    for field_name, path, wrapped, wanted in (
        ("deployment_branch_policies", "deployment-branch-policies", "branch_policies", custom),
        ("variables", "variables", "variables", True),
    ):
        try:
            out[field_name] = every(export, f"{where}/{path}", {}, wrapped) if wanted else []
        except Unreadable as why:
            out.setdefault("unreadable", {})[field_name] = str(why)
    return out


def _list(export: Export, setting: Setting) -> None:
    for item in every(export, setting.path, dict(setting.params), setting.wrapped):
        key = _key(export, setting, item)
        if setting.kind == "rulesets":  # the list holds summaries: each in full
            item = _one(export, f"rulesets/{key[: -len('.json')]}")
            if item is None:
                continue  # deleted since the list was read
        elif setting.kind == "environments":
            item = _environment(export, item)
        elif setting.kind == "hooks":
            item = _hook(item)
        export.store(setting.kind, key, item_bytes(item))


def _protection(export: Export) -> None:
    """Each protected branch's rules; a branch protected by a ruleset alone has none
    (404: its rules are among the rulesets)."""
    for branch in every(export, "branches", {"protected": "true"}):
        name = branch.get("name") if isinstance(branch, dict) else None
        if not isinstance(name, str) or not name:
            continue
        rules = _one(export, f"branches/{quote(name, safe='')}/protection")
        if rules is not None:
            export.store("branch-protection", named(name),
                         item_bytes({**rules, "branch": name}))  # fmt: skip


def _single(export: Export, path: str, file: str) -> None:
    data = _one(export, path, (dict, list))  # topics: an object; properties: a list
    if data is not None:
        export.store("settings", file, item_bytes(data))


def _hook(item: Any) -> Any:
    """A webhook without what GitHub masks of its secret (a restore makes it inactive, and
    a masked secret would be set as the literal stars)."""
    if isinstance(item, dict) and isinstance(item.get("config"), dict):
        item = {**item, "config": {k: v for k, v in item["config"].items() if k != "secret"}}
    return item


def capture(export: Export) -> None:
    """Each setting into ``export``; what the token may not read named, and a diff keeps
    its base's items of that kind."""
    steps: list[tuple[str, Any]] = [
        ("topics", lambda: _single(export, "topics", "topics.json")),
        ("custom-properties", lambda: _single(export, "properties/values",
                                              "custom-properties.json")),
        ("branch-protection", lambda: _protection(export)),
        *((s.kind, lambda s=s: _list(export, s)) for s in SETTING_LISTS),
    ]  # fmt: skip
    for kind, step in steps:
        written = {k: dict(v) for k, v in export.index.items.items()}
        counts = (export.written, export.changed)
        try:
            if kind not in ("topics", "custom-properties"):  # (files of settings/)
                export.index.items.setdefault(kind, {})
            step()
        except Unreadable as why:
            for k, listed in export.index.items.items():  # nothing half-read of it stays
                for key in set(listed) - set(written.get(k, {})):
                    (export.folder / k / key).unlink(missing_ok=True)
            export.index.items = written
            export.written, export.changed = counts
            export.index.unreadable[kind] = str(why)
            if kind in ("topics", "custom-properties"):
                file = f"{kind}.json"
                base = export.base.items.get("settings", {}).get(file)
                if base:
                    export.index.items.setdefault("settings", {})[file] = base
            else:
                export.carry(kind, "")
            gha.warn(f"{export.root[len('/repos/') :]}: {kind} not read: {why}")
