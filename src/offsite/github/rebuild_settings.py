"""A repository's settings written back into GitHub from a set (SPEC §11), after its items:
description, homepage and features, the default branch, topics, custom properties, branch
protection (status checks with their app), rulesets, environments (protection rules,
branch policies, variables), Actions variables, autolinks, webhooks (made inactive: a
backup holds no webhook secret). Each is made where the target lacks it, so a second run
makes nothing twice. Secrets' values, deploy keys, collaborators and teams are named in the
report for a person to grant again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

from offsite.errors import RebuildFailed
from offsite.github.held import Held
from offsite.github.rebuild_report import Options, Report
from offsite.github.writer import Writer

# what of a repository's answer PATCH /repos/OWNER/REPO takes back
REPOSITORY_FIELDS = (
    "description",
    "homepage",
    "has_issues",
    "has_projects",
    "has_wiki",
    "has_discussions",
    "is_template",
    "allow_squash_merge",
    "allow_merge_commit",
    "allow_rebase_merge",
    "allow_auto_merge",
    "delete_branch_on_merge",
    "allow_update_branch",
    "squash_merge_commit_title",
    "squash_merge_commit_message",
    "merge_commit_title",
    "merge_commit_message",
    "web_commit_signoff_required",
)
PROTECTION_FLAGS = (
    "required_linear_history",
    "allow_force_pushes",
    "allow_deletions",
    "block_creations",
    "required_conversation_resolution",
    "lock_branch",
    "allow_fork_syncing",
)


def _enabled(value: Any) -> bool:
    return bool(value.get("enabled")) if isinstance(value, dict) else bool(value)


def _people(value: Any, users: dict[str, str], teams: dict[str, str]) -> dict[str, list[str]]:
    """Users, teams and apps of a protection's answer as its request names them."""
    value = value if isinstance(value, dict) else {}
    return {
        "users": [
            users.get(str(u.get("login")), str(u.get("login"))) for u in value.get("users") or []
        ],
        "teams": [
            teams.get(str(t.get("slug")), str(t.get("slug"))) for t in value.get("teams") or []
        ],
        "apps": [str(a.get("slug")) for a in value.get("apps") or [] if a.get("slug")],
    }


def protection_request(
    got: dict[str, Any], users: dict[str, str], teams: dict[str, str], people: bool = True
) -> dict[str, Any]:
    """A branch's protection as GitHub answered it, as the PUT that sets it again asks it
    (``people`` false: without the users and teams it names)."""
    checks = got.get("required_status_checks")
    reviews = got.get("required_pull_request_reviews")
    restrictions = got.get("restrictions")
    required = None
    if isinstance(checks, dict):  # each check with its app; GitHub still requires contexts
        listed = checks.get("checks") or [{"context": x} for x in checks.get("contexts") or []]
        required = {
            "strict": bool(checks.get("strict")),
            "contexts": [str(c["context"]) for c in listed],
            "checks": [
                {
                    "context": str(c["context"]),
                    **({"app_id": c["app_id"]} if c.get("app_id") else {}),
                }
                for c in listed
            ],
        }
    body: dict[str, Any] = {
        "required_status_checks": required,
        "enforce_admins": _enabled(got.get("enforce_admins")),
        "required_pull_request_reviews": None,
        "restrictions": None,
    }
    if isinstance(reviews, dict):
        body["required_pull_request_reviews"] = {
            k: reviews[k]
            for k in (
                "dismiss_stale_reviews",
                "require_code_owner_reviews",
                "required_approving_review_count",
                "require_last_push_approval",
            )
            if k in reviews
        }
        for key in ("dismissal_restrictions", "bypass_pull_request_allowances"):
            if people and isinstance(reviews.get(key), dict):
                body["required_pull_request_reviews"][key] = _people(reviews[key], users, teams)
    if isinstance(restrictions, dict):
        body["restrictions"] = (
            _people(restrictions, users, teams)
            if people
            else {"users": [], "teams": [], "apps": []}
        )
    for flag in PROTECTION_FLAGS:
        if flag in got:
            body[flag] = _enabled(got[flag])
    return body


class Settings:
    def __init__(
        self, writer: Writer, held: Held, report: Report, options: Options, branches: set[str]
    ) -> None:
        self.w, self.held, self.report = writer, held, report
        self.users, self.teams = dict(options.users), dict(options.teams)
        self.branches = branches  # the branches the restored repository has
        self.force = options.force  # into a repository with its own refs: replace nothing

    def run(self) -> None:
        self.repository()
        self.protection()
        self.rulesets()
        self.environments()
        self.listed(
            "variables",
            "actions/variables",
            "name",
            "variables",
            lambda v: {"name": v["name"], "value": v.get("value", "")},
        )
        self.listed(
            "autolinks",
            "autolinks",
            "key_prefix",
            "",
            lambda a: {
                k: a[k] for k in ("key_prefix", "url_template", "is_alphanumeric") if k in a
            },
        )
        self.listed("hooks", "hooks", "url", "", self._hook)
        self.unwritable()

    def read(self, what: str, path: str, wrapped: str = "", many: bool = False,
             absent: Any = None, params: dict[str, str] | None = None) -> Any:  # fmt: skip
        """What the target holds (a list with ``many``); None, and the kind named as not
        restored, where the token may not read it (a fine-grained token without the
        permission): the run goes on without that kind and ends with exit 3."""
        try:
            if many:
                return self.w.every(path, params, wrapped)
            found = self.w.get(path, params)
            return absent if found is None else found
        except RebuildFailed as exc:
            if self.w.status not in (403, 404, 410):
                raise
            self.report.failed.append(f"{what}: could not read what the target holds: "
                                      + exc.args[1])  # fmt: skip
            return None

    def attempt(self, what: str, method: str, path: str, body: Any) -> bool:
        """One write of a setting; GitHub refusing it (a plan without the feature on a
        private repository, a user the target lacks) is named in the report and the run
        goes on (it ends with exit 3: a second run tries again). No answer stops the run."""
        try:
            self.w.write(method, path, body)
            return True
        except RebuildFailed as exc:
            if self.w.status not in (403, 404, 409, 422):
                raise
            self.report.failed.append(f"{what}: {exc.args[1]}")
            return False

    def repository(self) -> None:
        repo = self.held.repository
        change = {k: repo[k] for k in REPOSITORY_FIELDS if k in repo and repo[k] is not None}
        if repo.get("default_branch") in self.branches:
            change["default_branch"] = repo["default_branch"]
        if self.force:  # the target's own description and features stay
            self.report.found["repository settings"] += 1
        elif change and self.attempt("repository settings", "PATCH", "", change):
            self.report.made["repository settings"] += 1
        topics = self.held.one("settings", "topics.json")
        if isinstance(topics, dict) and topics.get("names"):
            there = (self.read("topics", "topics") or {}).get("names") or [] if self.force else []
            names = list(dict.fromkeys([*there, *topics["names"]]))
            if self.attempt("topics", "PUT", "topics", {"names": names}):
                self.report.made["topics"] += len(topics["names"])
        values = self.held.one("settings", "custom-properties.json")
        if isinstance(values, list) and values and not self.force:
            body = {"properties": [{"property_name": v["property_name"], "value": v.get("value")}
                                   for v in values]}  # fmt: skip
            if self.attempt("custom properties", "PATCH", "properties/values", body):  # fmt: skip
                self.report.made["custom properties"] += len(values)

    def protection(self) -> None:
        for rules in self.held.items("branch-protection"):
            branch = str(rules["branch"])
            if branch not in self.branches:
                self.report.lost.append(f"protection of {branch}: the branch is not in the backup")
                continue
            path = f"branches/{quote(branch, safe='')}/protection"
            if self.force and self.read(f"protection of {branch}", path, absent=None) is not None:
                self.report.found["branch protections"] += 1
                continue  # the target's own rules stay
            body = protection_request(rules, self.users, self.teams)
            bare = protection_request(rules, self.users, self.teams, people=False)
            what = f"protection of {branch}"
            made = self._quietly("PUT", path, body)
            if not made and bare != body:  # users or teams the target lacks: without them
                made = self.attempt(what, "PUT", path, bare)
                if made:
                    self.report.left_out.append(f"{what}: the users and teams it names were "
                                                "refused; --map-user, --map-team")  # fmt: skip
            elif not made:
                self.attempt(what, "PUT", path, body)
            if made:
                self.report.made["branch protections"] += 1

    def _quietly(self, method: str, path: str, body: Any) -> bool:
        """A write GitHub may refuse (403, 422) without it counting as a failure yet."""
        try:
            self.w.write(method, path, body)
            return True
        except RebuildFailed:
            if self.w.status not in (403, 404, 409, 422):
                raise
            return False

    def rulesets(self) -> None:
        if not self.held.items("rulesets"):
            return
        found = self.read("rulesets", "rulesets", many=True, params={"includes_parents": "false"})
        if found is None:
            return
        there = {str(r.get("name")) for r in found}
        keys = ("name", "target", "enforcement", "bypass_actors", "conditions", "rules")
        for ruleset in self.held.items("rulesets"):
            if ruleset["name"] in there:
                self.report.found["rulesets"] += 1
                continue
            body = {k: ruleset[k] for k in keys if ruleset.get(k) is not None}
            if self.attempt(f"ruleset {ruleset['name']}", "POST", "rulesets", body):  # fmt: skip
                self.report.made["rulesets"] += 1

    def environments(self) -> None:
        for held in self.held.items("environments"):
            env = held["environment"]
            name = quote(str(env["name"]), safe="")
            body: dict[str, Any] = {}
            reviewers: list[dict[str, Any]] = []
            for rule in env.get("protection_rules") or []:
                if rule.get("type") == "wait_timer":
                    body["wait_timer"] = rule.get("wait_timer", 0)
                if rule.get("type") == "required_reviewers":
                    body["prevent_self_review"] = bool(rule.get("prevent_self_review"))
                    reviewers = [{"type": r["type"], "id": r["reviewer"]["id"]}
                                 for r in rule.get("reviewers") or []
                                 if isinstance(r.get("reviewer"), dict)]  # fmt: skip
            policy = env.get("deployment_branch_policy")
            if isinstance(policy, dict):
                body["deployment_branch_policy"] = {
                    "protected_branches": bool(policy.get("protected_branches")),
                    "custom_branch_policies": bool(policy.get("custom_branch_policies")),
                }
            what, path = f"environment {env['name']}", f"environments/{name}"
            if self.force and self.read(what, path, absent=None) is not None:
                self.report.found["environments"] += 1
                continue  # the target's own environment stays
            full = {**body, "reviewers": reviewers} if reviewers else body
            made = self._quietly("PUT", path, full or None)
            if not made and reviewers:  # reviewers the target lacks: without them
                made = self.attempt(what, "PUT", path, body or None)
                if made:
                    self.report.left_out.append(f"{what}: its required reviewers were refused;"
                                                " add them again")  # fmt: skip
            elif not made:
                self.attempt(what, "PUT", path, full or None)
            if not made:
                continue
            self.report.made["environments"] += 1
            self.listed("branch policies", f"{path}/deployment-branch-policies", "name",
                        "branch_policies",
                        lambda p: {"name": p["name"], **({"type": p["type"]} if p.get("type")
                                                         else {})},
                        held.get("deployment_branch_policies") or [])  # fmt: skip
            self.listed("environment variables", f"{path}/variables", "name", "variables",
                        lambda v: {"name": v["name"], "value": v.get("value", "")},
                        held.get("variables") or [])  # fmt: skip
            for part in held.get("unreadable") or {}:
                self.report.lost.append(f"{what}: {part} (not readable when it was backed up)")

    def listed(
        self, kind: str, path: str, key: str, wrapped: str, request: Any,
        items: list[Any] | None = None,
    ) -> None:  # fmt: skip
        """Each item of a list the target lacks, made: compared by ``key``, as many of a
        key as the set holds (two webhooks to one address are two)."""
        items = self.held.items(kind) if items is None else items
        if not items:
            return
        listed = self.read(kind, path, wrapped=wrapped, many=True)
        if listed is None:
            return
        there = Counter(_key(x, key) for x in listed)
        for item in items:
            if there[_key(item, key)] > 0:
                there[_key(item, key)] -= 1
                self.report.found[kind] += 1
                continue
            body = request(item)
            if self.attempt(f"{kind} {_key(item, key)}", "POST", path, body):
                self.report.made[kind] += 1

    @staticmethod
    def _hook(hook: dict[str, Any]) -> dict[str, Any]:
        config = {
            k: v
            for k, v in (hook.get("config") or {}).items()
            if k in ("url", "content_type", "insecure_ssl")
        }
        return {
            "name": "web",
            "active": False,
            "events": hook.get("events") or ["push"],
            "config": config,
        }

    def unwritable(self) -> None:
        """What a person grants again: secrets' values, deploy keys, access."""
        for kind, what in (
            ("secrets", "Actions secret {} (set its value)"),
            ("deploy-keys", "deploy key {} (add it again)"),
            ("collaborators", "collaborator {} (invite again)"),
            ("teams", "team {} (grant access again)"),
        ):
            for item in self.held.items(kind):
                name = (
                    item.get("name") or item.get("title") or item.get("login") or item.get("slug")
                )
                self.report.lost.append(what.format(name))
        for kind, why in sorted(self.held.index.unreadable.items()):
            self.report.lost.append(f"{kind}: not readable when it was backed up ({why})")
        self.report.lost.extend(f"review {a} (it has no text to post)" for a in self.held.approvals)
        self.report.lost.append("authorship and times (each body and comment names them)")


def _key(item: Any, key: str) -> str:
    if key == "url":
        return str((item.get("config") or {}).get("url"))
    return str(item.get(key))
