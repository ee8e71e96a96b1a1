"""The write side of the fake GitHub (tests/fakegithub.py): repositories made through the
API, as a restore into GitHub makes them (SPEC §11), and read back as GitHub answers.

Each request body is validated against the request schema of GitHub's published API
description (``request METHOD PATH`` in tests/fixtures/github), each answer against its
component schema. Numbers are kept as GitHub keeps them: issues and pull requests share one
sequence, milestones have their own. What GitHub refuses is refused: a repository created
with an Actions ``GITHUB_TOKEN``, a pull request whose head has no commits its base lacks,
a push to ``refs/pull/*`` (a pre-receive hook in the bare repository the fake makes under
``git_root``, where ``GITHUB_SERVER_URL`` points git).

A test reads what was made from ``Made`` directly; ``drop`` makes the fake die mid-way
(a connection closed without an answer, before or after the write took effect).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

ACTIONS_TOKEN = "ghs_fake-actions-github-token"  # an Actions GITHUB_TOKEN: no repository creation
REFUSED_BY_INTEGRATION = {
    "message": "Resource not accessible by integration",
    "documentation_url": "https://docs.github.com/rest",
}
HOOK = """#!/bin/sh
while read old new ref; do
  case "$ref" in refs/pull/*) echo "! [remote rejected] $ref (deny updating a hidden ref)" >&2; exit 1;; esac
done
"""
STAMP = "2026-12-07T12:00:00Z"
DEFAULT_LABELS = ("bug", "documentation", "duplicate", "enhancement", "good first issue",
                  "help wanted", "invalid", "question", "wontfix")  # fmt: skip


class _Lost:
    """A request handler whose answer goes nowhere: the write takes effect, the client
    never hears of it (the server died after its commit)."""

    def __init__(self, h: Any) -> None:
        self.headers, self.path, self.wfile = h.headers, h.path, io.BytesIO()

    def send_response(self, *args: Any) -> None:
        pass

    def send_header(self, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        pass


@dataclass
class Made:
    """One repository made through the API, as the fake holds it."""

    owner: str
    name: str
    git: Path | None
    fields: dict[str, Any] = field(default_factory=dict)  # the repository's settings
    numbered: list[dict[str, Any]] = field(default_factory=list)  # issues and pulls: #1 first
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # number → comments
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    milestones: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    assets: dict[int, list[tuple[str, bytes]]] = field(default_factory=dict)  # release id →
    topics: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)  # branch → PUT body
    rulesets: list[dict[str, Any]] = field(default_factory=list)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → PUT body
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # environment →
    env_variables: dict[str, dict[str, str]] = field(default_factory=dict)  # environment →
    variables: dict[str, str] = field(default_factory=dict)
    autolinks: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    actions: bool = True  # Actions enabled
    started: list[str] = field(default_factory=list)  # what would have started a workflow

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class Target:
    """The write endpoints, and the reads a resumed restore makes of what it wrote."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.made: dict[str, Made] = {}
        self.git_root: Path | None = None  # where bare repositories are made (GITHUB_SERVER_URL)
        self.writes = 0  # requests that changed something
        self.posts = 0
        # (after this many POSTs, the next applied first?): a POST is never sent twice by
        # the transport, where a PUT or PATCH would be, so the run stops there
        self.drop: tuple[int, bool] | None = None
        self.permissions = {
            "admin": True,
            "maintain": True,
            "push": True,
            "triage": True,
            "pull": True,
        }
        self.ids = 9000
        self.invalid: list[str] = []  # requests whose body GitHub's description refuses
        self.refusing: dict[str, str] = {}  # write path pattern → GitHub's 403 message
        self.throttle_writes = 0  # answer this many writes: secondary rate limit, Retry-After 1
        self.throttled: list[float] = []  # when each was refused
        self.arrived: list[float] = []  # when each write came
        self.gone: set[str] = set()  # repositories deleted: 404 until made again
        self.assignable: set[str] = set()  # logins an issue may be assigned to

    def delete(self, full: str) -> None:
        """The repository is deleted: its metadata and git are gone, GitHub answers 404."""
        self.fake.metadata.pop(full, None)
        self.gone.add(full)
        if self.git_root is not None:
            import shutil

            shutil.rmtree(self.git_root / f"{full}.git", ignore_errors=True)

    # -- answering -------------------------------------------------------------------------
    def handle(self, h: Any, method: str, path: str, query: dict[str, list[str]]) -> bool:
        """Answer a request to a made repository (or one making it); False: not ours."""
        body: Any = None
        if method in ("POST", "PATCH", "PUT"):
            raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            upload = re.fullmatch(r"/uploads/repos/([^/]+/[^/]+)/releases/(\d+)/assets", path)
            if upload:
                return self._write(
                    h,
                    method,
                    lambda w: self._upload(w, upload.group(1), int(upload.group(2)), query, raw),
                )
            body = json.loads(raw or b"null")
        create = re.fullmatch(r"/(?:orgs/([^/]+)|user)/repos", path)
        if method == "POST" and create:
            return self._write(h, method, lambda w: self._create(w, create.group(1), body))
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(?:/(.*))?", path)
        if m and m.group(1) in self.gone and m.group(1) not in self.made:
            self.refuse(h, 404, "Not Found")
            return True
        if not m or m.group(1) not in self.made:
            return False
        repo, rest = self.made[m.group(1)], m.group(2) or ""
        if method == "GET":
            return self._read(h, repo, rest, query)
        return self._write(h, method, lambda w: self._change(w, repo, method, rest, body))

    def _write(self, h: Any, method: str, apply: Callable[[Any], None]) -> bool:
        """Apply a write and answer it; once ``drop`` says, the server goes away instead:
        the connection closes unanswered, the write applied or not."""
        self.arrived.append(time.monotonic())
        if self.throttle_writes > 0 and method == "POST":  # GitHub made nothing of it
            self.throttle_writes -= 1
            self.throttled.append(time.monotonic())
            self.fake._json(h, 403, {"message": "You have exceeded a secondary rate limit.",
                                     "documentation_url": "https://docs.github.com/rest"},
                            {"Retry-After": "1"})  # fmt: skip
            return True
        refusal = next((m for p, m in self.refusing.items() if re.search(p, h.path)), None)
        if refusal is not None:  # (a plan without the feature, a private repository)
            self.refuse(h, 403, refusal)
            return True
        dying = self.drop is not None and method == "POST" and self.posts >= self.drop[0]
        if dying and not self.drop[1]:  # type: ignore[index]
            return self._hang_up(h)
        import jsonschema

        try:
            apply(_Lost(h) if dying else h)
        except jsonschema.ValidationError as exc:  # GitHub: 422, and nothing made
            self.invalid.append(f"{method} {h.path}: {exc.message}")
            self.refuse(h, 422, f"Validation Failed: {exc.message}")
            return True
        self.writes += 1
        self.posts += method == "POST"
        return self._hang_up(h) if dying else True

    def _hang_up(self, h: Any) -> bool:
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)
        return True

    def answer(self, h: Any, status: int, body: Any = None, definition: str = "") -> None:
        if definition:
            self.fake_validate(body, definition)
        if body is None:
            self.fake._empty(h, status)
        else:
            self.fake._json(h, status, body)

    def fake_validate(self, body: Any, definition: str) -> None:
        from tests.fakegithub import validate

        validate(body, definition)

    def refuse(self, h: Any, status: int, message: str) -> None:
        self.fake._json(
            h, status, {"message": message, "documentation_url": "https://docs.github.com/rest"}
        )

    def _request(self, body: Any, method: str, template: str) -> None:
        self.fake_validate(body, f"request {method} {template}")

    # -- making a repository ----------------------------------------------------------------
    def _create(self, h: Any, org: str | None, body: Any) -> None:
        self._request(body, "POST", "/orgs/{org}/repos" if org else "/user/repos")
        if h.headers.get("Authorization", "").endswith(ACTIONS_TOKEN):
            return self.refuse(h, 403, REFUSED_BY_INTEGRATION["message"])
        owner = org or "octocat"
        full = f"{owner}/{body['name']}"
        if full in self.made or full in self.fake.metadata:
            return self.refuse(h, 422, "Repository creation failed.")
        git = None
        if self.git_root is not None:
            git = self.git_root / owner / f"{body['name']}.git"
            subprocess.run(["git", "init", "-q", "--bare", str(git)], check=True)
            (git / "hooks" / "pre-receive").write_text(HOOK)
            (git / "hooks" / "pre-receive").chmod(0o755)
        fields = {k: v for k, v in body.items() if k != "name"}
        self.made[full] = Made(owner, body["name"], git, fields)
        for name in DEFAULT_LABELS:  # GitHub gives a new repository these
            self._label(self.made[full], name)
        self.answer(h, 201, self._repo(self.made[full]), "full-repository")

    def _repo(self, repo: Made) -> dict[str, Any]:
        body = self.fake._repo_json(repo.owner, repo.name)
        for related in ("parent", "source"):
            body[related].setdefault("language", None)
        body.update({k: v for k, v in repo.fields.items() if k in body})
        body["permissions"] = dict(self.permissions)
        body["topics"] = list(repo.topics)
        return body

    # -- reads ------------------------------------------------------------------------------
    def _read(self, h: Any, repo: Made, rest: str, query: dict[str, list[str]]) -> bool:
        issue = re.fullmatch(r"issues/(\d+)/comments", rest)
        env = re.fullmatch(r"environments/([^/]+)/(variables|deployment-branch-policies)", rest)
        if rest == "":
            self.answer(h, 200, self._repo(repo), "full-repository")
            return True
        assignee = re.fullmatch(r"assignees/([^/]+)", rest)
        if assignee:
            found = unquote(assignee.group(1)) in self.assignable
            self.answer(h, 204) if found else self.refuse(h, 404, "Not Found")
            return True
        if rest == "actions/permissions":
            self.fake._json(h, 200, {"enabled": repo.actions, "allowed_actions": "all"})
            return True
        if rest == "topics":
            self.answer(h, 200, {"names": list(repo.topics)}, "topic")
            return True
        if rest == "issues":
            items = [self._issue(repo, i) for i in repo.numbered]
            return self._page(h, query, items, "issue")
        if issue:
            found = repo.comments.get(int(issue.group(1)), [])
            return self._page(h, query, found, "issue-comment")
        simple = {
            "labels": (list(repo.labels.values()), "label"),
            "milestones": (repo.milestones, "milestone"),
            "releases": ([self._release(repo, r) for r in repo.releases], "release"),
            "rulesets": (repo.rulesets, "repository-ruleset"),
            "autolinks": (repo.autolinks, "autolink"),
            "hooks": (repo.hooks, "hook"),
        }
        if rest in simple:
            return self._page(h, query, *simple[rest])
        if rest == "actions/variables":
            variables = [self._variable(n, v) for n, v in repo.variables.items()]
            return self._wrapped(h, "variables", variables)
        if env:
            name = unquote(env.group(1))
            if env.group(2) == "variables":
                found = repo.env_variables.get(name, {})
                return self._wrapped(
                    h, "variables", [self._variable(n, v) for n, v in found.items()]
                )
            return self._wrapped(h, "branch_policies", repo.policies.get(name, []))
        self.refuse(h, 404, "Not Found")
        return True

    def _page(self, h: Any, query: dict[str, list[str]], items: list[Any], definition: str) -> bool:
        self.fake._page(h, query, items, 100, None, definition, lambda x: x)
        return True

    def _wrapped(self, h: Any, key: str, items: list[Any]) -> bool:
        self.fake._json(h, 200, {"total_count": len(items), key: items})
        return True

    def _variable(self, name: str, value: str) -> dict[str, Any]:
        return {"name": name, "value": value, "created_at": STAMP, "updated_at": STAMP}

    def _issue(self, repo: Made, item: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.fake.url}/repos/{repo.full_name}"
        body = copy.deepcopy(self.fake._item("issue"))
        number = item["number"]
        body.update(
            id=number,
            number=number,
            title=item["title"],
            body=item.get("body"),
            state=item["state"],
            state_reason=item.get("state_reason"),
            locked=item["locked"],
            active_lock_reason=item.get("active_lock_reason"),
            comments=len(repo.comments.get(number, [])),
            url=f"{base}/issues/{number}",
            labels=[repo.labels[n] for n in item["labels"]],
            milestone=next(
                (m for m in repo.milestones if m["number"] == item.get("milestone")), None
            ),
            assignee=None,
            closed_at=item.get("closed_at"),
        )
        body["assignees"] = [{**body["user"], "login": x} for x in item.get("assignees", [])]
        if item.get("pull"):
            body["pull_request"] = {**body["pull_request"], "url": f"{base}/pulls/{number}"}
        else:
            body.pop("pull_request", None)
        return body

    def _release(self, repo: Made, release: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(self.fake._item("release"))
        base = f"{self.fake.url}/repos/{repo.full_name}/releases"
        template = body["assets"][0]
        body.update(
            {k: v for k, v in release.items() if k in body},
            id=release["id"],
            url=f"{base}/{release['id']}",
            upload_url=f"{self.fake.url}/uploads/repos/{repo.full_name}/releases/"
            f"{release['id']}/assets{{?name,label}}",
        )
        body["assets"] = [
            {
                **copy.deepcopy(template),
                "id": release["id"] * 100 + i,
                "name": n,
                "size": len(d),
                "digest": "sha256:" + hashlib.sha256(d).hexdigest(),
            }
            for i, (n, d) in enumerate(repo.assets.get(release["id"], []))
        ]
        return body

    # -- writes -----------------------------------------------------------------------------
    def _change(self, h: Any, repo: Made, method: str, rest: str, body: Any) -> None:
        t = "/repos/{owner}/{repo}"
        number = re.fullmatch(r"(issues|pulls|milestones)/(\d+)(/comments|/lock)?", rest)
        branch = re.fullmatch(r"branches/(.+)/protection", rest)
        env = re.fullmatch(
            r"environments/([^/]+)(?:/(variables|deployment-branch-policies))?", rest
        )
        if (method, rest) == ("PATCH", ""):
            self._request(body, "PATCH", t)
            repo.fields.update(body)
            if body.get("default_branch") and repo.git is not None:  # what a clone checks out
                subprocess.run(["git", "-C", str(repo.git), "symbolic-ref", "HEAD",
                                f"refs/heads/{body['default_branch']}"], check=True)  # fmt: skip
            return self.answer(h, 200, self._repo(repo), "full-repository")
        if (method, rest) == ("PUT", "actions/permissions"):
            self._request(body, "PUT", t + "/actions/permissions")
            repo.actions = bool(body["enabled"])
            return self.answer(h, 204)
        if (method, rest) == ("PUT", "topics"):
            self._request(body, "PUT", t + "/topics")
            repo.topics = list(body["names"])
            return self.answer(h, 200, {"names": repo.topics}, "topic")
        if (method, rest) == ("PATCH", "properties/values"):
            self._request(body, "PATCH", t + "/properties/values")
            repo.properties.update({p["property_name"]: p["value"] for p in body["properties"]})
            return self.answer(h, 204)
        if (method, rest) == ("POST", "labels"):
            self._request(body, "POST", t + "/labels")
            if body["name"].lower() in {n.lower() for n in repo.labels}:
                return self.refuse(h, 422, "Validation Failed: already_exists")
            label = {
                **self.fake._item("label"),
                "id": self._id(),
                "name": body["name"],
                "color": body.get("color", "ededed"),
                "description": body.get("description"),
                "default": False,
            }
            repo.labels[body["name"]] = label
            return self.answer(h, 201, label, "label")
        label = re.fullmatch(r"labels/([^/]+)", rest)
        if label and method == "PATCH":
            self._request(body, "PATCH", t + "/labels/{name}")
            found = repo.labels.pop(unquote(label.group(1)), None)
            if found is None:
                return self.refuse(h, 404, "Not Found")
            found.update({"name": body.get("new_name", found["name"]),
                          **{k: body[k] for k in ("color", "description") if k in body}})  # fmt: skip
            repo.labels[found["name"]] = found
            for item in repo.numbered:  # the issues carrying it carry its new name
                item["labels"] = [found["name"] if x == label.group(1) else x
                                  for x in item["labels"]]  # fmt: skip
            return self.answer(h, 200, found, "label")
        if (method, rest) == ("POST", "milestones"):
            self._request(body, "POST", t + "/milestones")
            item = {
                **self.fake._item("milestone"),
                "id": self._id(),
                "number": len(repo.milestones) + 1,
                "title": body["title"],
                "state": body.get("state", "open"),
                "description": body.get("description"),
                "due_on": body.get("due_on"),
            }
            repo.milestones.append(item)
            return self.answer(h, 201, item, "milestone")
        if (method, rest) == ("POST", "issues"):
            self._request(body, "POST", t + "/issues")
            return self._new_issue(h, repo, body, pull=None)
        if (method, rest) == ("POST", "pulls"):
            self._request(body, "POST", t + "/pulls")
            if repo.actions:  # a pull_request workflow would run
                repo.started.append(f"pull request {body['title']}")
            return self._new_pull(h, repo, body)
        if number and number.group(1) == "milestones" and method == "PATCH":
            self._request(body, "PATCH", t + "/milestones/{milestone_number}")
            item = repo.milestones[int(number.group(2)) - 1]
            item.update({k: v for k, v in body.items() if k in item})
            return self.answer(h, 200, item, "milestone")
        if number and number.group(1) in ("issues", "pulls"):
            n = int(number.group(2))
            if n > len(repo.numbered):
                return self.refuse(h, 404, "Not Found")
            item = repo.numbered[n - 1]
            if number.group(3) == "/comments":
                self._request(body, "POST", t + "/issues/{issue_number}/comments")
                found = repo.comments.setdefault(n, [])
                comment = {
                    **self.fake._item("issue-comment"),
                    "id": self._id(),
                    "body": body["body"],
                }
                found.append(comment)
                return self.answer(h, 201, comment, "issue-comment")
            if number.group(3) == "/lock":
                self._request(body, "PUT", t + "/issues/{issue_number}/lock")
                item.update(locked=True, active_lock_reason=body.get("lock_reason"))
                return self.answer(h, 204)
            which = (
                "issues/{issue_number}" if number.group(1) == "issues" else "pulls/{pull_number}"
            )
            self._request(body, "PATCH", f"{t}/{which}")
            if "labels" in body:
                item["labels"] = [self._label(repo, x) for x in body["labels"]]
            for key in ("title", "body", "state", "state_reason", "milestone", "assignees"):
                if key in body:
                    item[key] = body[key]
            if body.get("state") == "closed":
                item["closed_at"] = STAMP
            if body.get("state") == "open":
                item["state_reason"] = "reopened" if item.get("closed_at") else None
            return self.answer(h, 200, self._issue(repo, item), "issue")
        if (method, rest) == ("POST", "releases"):
            self._request(body, "POST", t + "/releases")
            if any(r["tag_name"] == body["tag_name"] for r in repo.releases):
                return self.refuse(h, 422, "Validation Failed: tag_name already_exists")
            release = {**body, "id": self._id()}
            repo.releases.append(release)
            return self.answer(h, 201, self._release(repo, release), "release")
        if branch and method == "PUT":
            self._request(body, "PUT", t + "/branches/{branch}/protection")
            repo.protection[unquote(branch.group(1))] = body
            return self.fake._json(
                h,
                200,
                {
                    "url": f"{self.fake.url}/repos/{repo.full_name}/"
                    f"branches/{branch.group(1)}/protection"
                },
            )
        if (method, rest) == ("POST", "rulesets"):
            self._request(body, "POST", t + "/rulesets")
            from tests.fakegithub import EXAMPLES

            ruleset = {**copy.deepcopy(EXAMPLES["repository-ruleset"]), **body, "id": self._id()}
            repo.rulesets.append(ruleset)
            return self.answer(h, 201, ruleset, "repository-ruleset")
        if env and env.group(2) is None and method == "PUT":
            self._request(body, "PUT", t + "/environments/{environment_name}")
            name = unquote(env.group(1))
            repo.environments[name] = body or {}
            item = {**self.fake._item("environment"), "name": name}
            return self.answer(h, 200, item, "environment")
        if env and env.group(2) == "variables":
            self._request(body, "POST", t + "/environments/{environment_name}/variables")
            found = repo.env_variables.setdefault(unquote(env.group(1)), {})
            if body["name"] in found:
                return self.refuse(h, 409, "Already exists")
            found[body["name"]] = body["value"]
            return self.answer(h, 201, {})
        if env and env.group(2):
            self._request(
                body, "POST", t + "/environments/{environment_name}/deployment-branch-policies"
            )
            policy = {"id": self._id(), "node_id": "MDE2OkdhdGVCcmFuY2hQb2xpY3kz", **body}
            repo.policies.setdefault(unquote(env.group(1)), []).append(policy)
            return self.answer(h, 200, policy, "deployment-branch-policy")
        if (method, rest) == ("POST", "actions/variables"):
            self._request(body, "POST", t + "/actions/variables")
            if body["name"] in repo.variables:
                return self.refuse(h, 409, "Already exists")
            repo.variables[body["name"]] = body["value"]
            return self.answer(h, 201, {})
        if (method, rest) == ("POST", "autolinks"):
            self._request(body, "POST", t + "/autolinks")
            link = {"id": self._id(), "is_alphanumeric": True, **body}
            repo.autolinks.append(link)
            return self.answer(h, 201, link, "autolink")
        if (method, rest) == ("POST", "hooks"):
            self._request(body, "POST", t + "/hooks")
            hook = {
                **self.fake._item("hook"),
                "id": self._id(),
                "name": body.get("name", "web"),
                "active": body.get("active", True),
                "events": body.get("events", ["push"]),
                "config": body["config"],
            }
            repo.hooks.append(hook)
            return self.answer(h, 201, hook, "hook")
        return self.refuse(h, 404, "Not Found")

    def _id(self) -> int:
        self.ids += 1
        return self.ids

    def _label(self, repo: Made, name: str) -> str:
        if name not in repo.labels:  # GitHub makes a label an issue names
            repo.labels[name] = {
                **self.fake._item("label"),
                "id": self._id(),
                "name": name,
                "color": "ededed",
                "description": None,
                "default": False,
            }
        return name

    def _new_issue(self, h: Any, repo: Made, body: dict[str, Any], pull: Any) -> None:
        milestone = body.get("milestone")
        if milestone is not None and not any(m["number"] == milestone for m in repo.milestones):
            return self.refuse(h, 422, "Validation Failed: milestone invalid")
        item = self._numbered(repo, body, pull)
        self.answer(h, 201, self._issue(repo, item), "issue")

    def _numbered(self, repo: Made, body: dict[str, Any], pull: Any) -> dict[str, Any]:
        """The next number of the sequence issues and pull requests share, made."""
        item = {
            "number": len(repo.numbered) + 1,
            "title": body["title"],
            "body": body.get("body"),
            "state": "open",
            "state_reason": None,
            "locked": False,
            "labels": [self._label(repo, x) for x in body.get("labels", [])],
            "milestone": body.get("milestone"),
            "pull": pull,
            "assignees": list(body.get("assignees", [])),
        }
        repo.numbered.append(item)
        return item

    def _new_pull(self, h: Any, repo: Made, body: dict[str, Any]) -> None:
        head, base = body["head"], body["base"]
        ahead = ""
        if repo.git is not None:
            done = subprocess.run(
                [
                    "git",
                    "-C",
                    str(repo.git),
                    "rev-list",
                    "--count",
                    f"refs/heads/{base}..refs/heads/{head}",
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                return self.refuse(h, 422, "Validation Failed: head or base invalid")
            ahead = done.stdout.strip()
        if ahead == "0":
            return self.refuse(h, 422, f"Validation Failed: No commits between {base} and {head}")
        item = self._numbered(repo, {"title": body["title"], "body": body.get("body")},
                              {"head": head, "base": base})  # fmt: skip
        if repo.git is not None:  # GitHub keeps a pull request's head under refs/pull/
            subprocess.run(["git", "-C", str(repo.git), "update-ref",
                            f"refs/pull/{item['number']}/head", f"refs/heads/{head}"],
                           check=True)  # fmt: skip
        simple = self.fake._item("pull-request-simple")
        answer = {
            **simple,
            "number": item["number"],
            "title": item["title"],
            "body": item["body"],
            "merged": False,
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": True,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
            "state": "open",
        }
        self.answer(h, 201, answer)

    def _upload(
        self, h: Any, full: str, release_id: int, query: dict[str, list[str]], raw: bytes
    ) -> None:
        repo = self.made.get(full)
        release = next((r for r in repo.releases if r["id"] == release_id), None) if repo else None
        if repo is None or release is None:
            return self.refuse(h, 404, "Not Found")
        name = query.get("name", [""])[0]
        found = repo.assets.setdefault(release_id, [])
        if any(n == name for n, _ in found):
            return self.refuse(h, 422, "Validation Failed: already_exists")
        found.append((name, raw))
        asset = {
            **copy.deepcopy(self.fake._item("release")["assets"][0]),
            "id": release_id * 100 + len(found) - 1,
            "name": name,
            "size": len(raw),
            "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
        }
        self.answer(h, 201, asset, "release-asset")
