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
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{safe_name(name)[:200]}-{digest}.json"


def every(export: Export, path: str, params: dict[str, str], wrapped: str = "") -> list[Any]:
    """Every item of a list the token may read (``Unreadable`` where it may not)."""
    url: str | None = f"{export.root}/{path}"
    query: dict[str, Any] | None = {**params, "per_page": 100}
    found: list[Any] = []
    while url:
        headers, data = export.get(url, query, optional=True)
        items = data.get(wrapped) if wrapped and isinstance(data, dict) else data
        if not isinstance(items, list):
            raise export.fail(f"{path}: GitHub answered {type(data).__name__}, not a list")
        found += items
        url, query = next_page(headers), None
    return found


def _key(export: Export, setting: Setting, item: Any) -> str:
    if setting.key == "name":
        value = item.get("name") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value:
            raise export.fail(f"{setting.path}: GitHub answered an item without a name")
        return named(value)
    return str(export.key(item, "id", setting.path))


def _environment(export: Export, environment: dict[str, Any]) -> dict[str, Any]:
    """An environment with its deployment branch policies and its variables."""
    where = f"environments/{quote(str(environment['name']), safe='')}"
    policy = environment.get("deployment_branch_policy") or {}
    policies = (every(export, f"{where}/deployment-branch-policies", {}, "branch_policies")
                if policy.get("custom_branch_policies") else [])  # fmt: skip
    variables = every(export, f"{where}/variables", {}, "variables")
    return {"environment": environment, "deployment_branch_policies": policies,
            "variables": variables}  # fmt: skip


def _list(export: Export, setting: Setting) -> None:
    for item in every(export, setting.path, dict(setting.params), setting.wrapped):
        key = _key(export, setting, item)
        if setting.kind == "rulesets":  # the list holds summaries: each in full
            _, item = export.get(f"{export.root}/rulesets/{item['id']}", None, optional=True)
        elif setting.kind == "environments":
            item = _environment(export, item)
        export.store(setting.kind, key, item_bytes(item))


def _protection(export: Export) -> None:
    for branch in every(export, "branches", {"protected": "true"}):
        name = str(branch.get("name") or "")
        _, rules = export.get(f"{export.root}/branches/{quote(name, safe='')}/protection",
                              None, optional=True)  # fmt: skip
        export.store("branch-protection", named(name), item_bytes({"branch": name, **rules}))


def _single(export: Export, path: str, file: str) -> None:
    _, data = export.get(f"{export.root}/{path}", None, optional=True)
    export.store("settings", file, item_bytes(data))


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
        try:
            if kind not in ("topics", "custom-properties"):  # (files of settings/)
                export.index.items.setdefault(kind, {})
            step()
        except Unreadable as why:
            for k, listed in export.index.items.items():  # nothing half-read of it stays
                for key in set(listed) - set(written.get(k, {})):
                    (export.folder / k / key).unlink(missing_ok=True)
            export.index.items = written
            export.index.unreadable[kind] = str(why)
            if kind in ("topics", "custom-properties"):
                file = f"{kind}.json"
                base = export.base.items.get("settings", {}).get(file)
                if base:
                    export.index.items.setdefault("settings", {})[file] = base
            else:
                export.carry(kind, "")
            gha.warn(f"{export.root[len('/repos/') :]}: {kind} not read: {why}")
