"""A local stand-in for GitHub's REST API (the parts offsite reads), answering with the
shapes of GitHub's own examples; every JSON body it serves is validated against GitHub's
schema (tests/fixtures/github), so a test cannot pass on a shape GitHub never sends.

Artifacts: list pages with ``Link`` headers, the 302 from ``…/zip`` to a signed blob
address that expires, Range reads of the blob, DELETE, and 410 for an expired one.
Workflows and their runs (the monitor): a workflow by file name or id with its
``state``, its runs newest first in pages, each run's artifacts, an owner's repositories;
and faults: 5xx answers, a 403 secondary rate limit with ``Retry-After``.
An owner's container packages and their versions (``oci://ghcr.io/OWNER``), newest first.
A repository's metadata (``--include-metadata``): issues, comments, pull requests and their
reviews and review comments, releases with assets (a 302 to storage), labels, milestones,
from the shapes of tests/fixtures/github/github-metadata-*.json.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import re
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jsonschema

FIXTURES = Path(__file__).parent / "fixtures" / "github"
SCHEMA = json.loads((FIXTURES / "github-actions-rest-subset.schema.json").read_text())
ARTIFACT = json.loads((FIXTURES / "artifact.json").read_text())
WORKFLOW = json.loads((FIXTURES / "workflow.json").read_text())
RUN = json.loads((FIXTURES / "workflow-run.json").read_text())
REPOSITORY = json.loads((FIXTURES / "full-repository-default-response.json").read_text())
REPOSITORY["default_branch"] = "main"  # the example says master, its runs and artifacts main
FORK_ID = 217723378  # the example run's head repository: a fork
METADATA_SCHEMA = json.loads((FIXTURES / "github-metadata-subset.schema.json").read_text())
EXAMPLES = json.loads((FIXTURES / "github-metadata-examples.json").read_text())
STAMP = "%Y-%m-%dT%H:%M:%SZ"
NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
TOKEN = "ghp_fake-token-for-tests"


def _when(n: int, step: int) -> str:
    """A time for item ``n`` of a list, later for a later one."""
    return (datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=n * step)).strftime(STAMP)


def validate(body: Any, definition: str) -> None:
    _validator(definition).validate(body)


@functools.cache
def _validator(definition: str) -> jsonschema.Draft202012Validator:
    """One validator a definition (made once: building one reads the whole schema)."""
    defs = SCHEMA["$defs"] if definition in SCHEMA["$defs"] else METADATA_SCHEMA["$defs"]
    pointer = definition.replace("~", "~0").replace("/", "~1")  # (a request's names a path)
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{pointer}", "$defs": defs})


def zip_folder(folder: Path) -> bytes:
    """A folder zipped the way actions/upload-artifact does with compression-level 0."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())
    return out.getvalue()


@dataclass
class StoredArtifact:
    id: int
    name: str
    data: bytes
    created: datetime
    expired: bool = False
    run_id: int | None = None
    repo: str | None = None  # owner/name; None: the fake's own repository
    fork: bool = False  # uploaded by a run of a fork's pull request
    branch: str = "main"  # the branch its run ran on
    days: int = 90  # its retention: GitHub deletes it this long after it was made


@dataclass
class FakeRun:
    id: int
    number: int
    conclusion: str | None  # None while queued or in progress
    finished: datetime
    event: str = "schedule"
    branch: str = "main"
    fork: bool = False  # a run of a fork's pull request (its head repository is the fork)
    started: datetime | None = None  # run_started_at (default: when it finished)

    @property
    def status(self) -> str:
        return "completed" if self.conclusion else "in_progress"


@dataclass
class FakeWorkflow:
    id: int
    repo: str
    file: str
    state: str = "active"
    runs: list[FakeRun] = field(default_factory=list)


@dataclass
class FakeMetadata:
    """What one repository holds besides git; numbers, titles and assets are its own."""

    issues: int = 0  # issues (pull requests come on top, as the issues list has them)
    pulls: int = 0
    reviews_per_pull: int = 0
    issue_comments: int = 0
    review_comments: int = 0
    releases: dict[str, dict[str, bytes]] = field(default_factory=dict)  # tag → name → data
    labels: int = 0
    milestones: int = 0
    # changes after a first backup, by list ("issues", "issues/comments", "labels", …):
    edits: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)  # id → fields
    gone: dict[str, set[int]] = field(default_factory=dict)  # ids deleted
    reviews: dict[int, int] = field(default_factory=dict)  # pull number → its review count
    # settings a restore into GitHub needs (SPEC §11); counts of each list
    topics: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)  # protected branches
    rulesets: int = 0
    environments: list[str] = field(default_factory=list)
    variables: int = 0
    secrets: int = 0
    autolinks: int = 0
    hooks: int = 0
    deploy_keys: int = 0
    collaborators: int = 0
    teams: int = 0
    denied: set[str] = field(default_factory=set)  # paths the token may not read (403)
    absent: set[str] = field(default_factory=set)  # paths that are not there (404)
    ruleset_protected: list[str] = field(default_factory=list)  # protected by rulesets alone
    from_forks: set[int] = field(default_factory=set)  # pull requests whose head is a fork's


@dataclass
class FakeVersion:
    digest: str
    tags: list[str]
    updated: datetime


@dataclass
class FakeGitHub:
    owner: str = "octo-org"
    repo: str = "octo-docs"
    page_size: int = 2  # small, so that a few artifacts already take several pages
    link_seconds: float = 60.0  # how long a signed blob address stays valid
    expire_next_links: int = 0  # hand out this many addresses that are already stale
    artifacts: list[StoredArtifact] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    broken: set[int] = field(default_factory=set)  # artifacts whose blob is gone (404)
    stale_refused: int = 0  # blob requests refused for a stale signature
    not_modified: int = 0  # list pages answered 304 (If-None-Match held)
    # (list, page) → what happens in the repository right after that page is answered
    after_page: dict[tuple[str, int], Any] = field(default_factory=dict)
    workflows: list[FakeWorkflow] = field(default_factory=list)
    org_repos: dict[str, list[str]] = field(default_factory=dict)  # organisation → names
    fail_next: int = 0  # answer this many API requests with a 503
    throttle_next: int = 0  # answer this many with a 403 secondary rate limit, Retry-After 1
    exhaust_next: int = 0  # answer this many with a 403 primary rate limit that resets in 1 s
    repo_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name → fields
    user_repos: dict[str, list[str]] = field(default_factory=dict)  # user (not org) → names
    metadata: dict[str, FakeMetadata] = field(default_factory=dict)  # full name → metadata
    metadata_page: int = 100  # items per page of the metadata lists
    lost_assets: set[str] = field(default_factory=set)  # asset names storage answers 404 for
    may_write: bool = True  # the token has actions: write (re-enabling a workflow)
    packages: dict[str, dict[str, list[FakeVersion]]] = field(default_factory=dict)  # owner →
    package_orgs: set[str] = field(default_factory=set)  # owners of packages that are orgs

    def __post_init__(self) -> None:
        from tests.fakegithub_target import Target

        self._lock = threading.Lock()
        self.target = Target(self)  # repositories made through the API (a restore)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms wait

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

            def do_PUT(self) -> None:
                fake._handle(self, "PUT")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_PATCH(self) -> None:
                fake._handle(self, "PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- setting up ----------------------------------------------------------------------
    def add(
        self, name: str, data: bytes, created: datetime | None = None, expired: bool = False,
        run_id: int | None = None, repo: str | None = None, fork: bool = False,
        branch: str = "main", days: int = 90,
    ) -> StoredArtifact:  # fmt: skip
        with self._lock:
            artifact = StoredArtifact(100 + len(self.artifacts), name, data,
                                      created or datetime.now(timezone.utc), expired,
                                      run_id, repo, fork, branch, days)  # fmt: skip
            self.artifacts.append(artifact)
            return artifact

    def workflow(self, repo: str, file: str = "backup.yml", state: str = "active") -> FakeWorkflow:
        flow = FakeWorkflow(5000 + len(self.workflows), repo, file, state)
        self.workflows.append(flow)
        return flow

    def run(
        self, flow: FakeWorkflow, conclusion: str | None, finished: datetime,
        backup_size: int | None = None, expired: bool = False, fork: bool = False,
        seconds: float | None = None,
    ) -> FakeRun:  # fmt: skip
        """A run of ``flow``; with ``backup_size``, it uploaded a backup-* artifact; with
        ``seconds``, it ran that long."""
        number = len(flow.runs) + 1
        started = finished - timedelta(seconds=seconds) if seconds is not None else None
        run = FakeRun(flow.id * 10_000 + number, number, conclusion, finished, fork=fork,
                      started=started)  # fmt: skip
        flow.runs.append(run)
        if backup_size is not None:
            self.add(f"backup-{finished.strftime('%Y%m%dT%H%M%SZ')}", b"\0" * backup_size,
                     finished, expired, run.id, flow.repo, fork)  # fmt: skip
        return run

    def api_requests(self) -> int:
        return sum(1 for line in self.log if "/blob/" not in line)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- answering -----------------------------------------------------------------------
    def _json(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _empty(
        self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Length", "0")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()

    def _artifact_json(self, a: StoredArtifact) -> dict[str, Any]:
        body = copy.deepcopy(ARTIFACT)
        base = f"{self.url}/repos/{self.owner}/{self.repo}/actions/artifacts/{a.id}"
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        body.update(id=a.id, name=a.name, size_in_bytes=len(a.data), url=base,
                    archive_download_url=f"{base}/zip", expired=a.expired,
                    created_at=a.created.strftime(stamp), updated_at=a.created.strftime(stamp),
                    expires_at=(a.created + timedelta(days=a.days)).strftime(stamp))  # fmt: skip
        own = REPOSITORY["id"]
        body["workflow_run"] = {
            **body["workflow_run"], "repository_id": own, "head_branch": a.branch,
            "head_repository_id": FORK_ID if a.fork else own,
        }  # fmt: skip
        if a.run_id is not None:
            body["workflow_run"]["id"] = a.run_id
        return body

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query)
        self.log.append(f"{method} {parts.path}")
        blob = re.fullmatch(r"/blob/(\d+)", parts.path)
        if blob:  # the signed storage address: no token, a signature that expires
            return self._blob(h, int(blob.group(1)), float(query.get("expires", ["0"])[0]))
        from tests.fakegithub_target import ACTIONS_TOKEN

        tokens = [f"{kind} {t}" for kind in ("Bearer", "token") for t in (TOKEN, ACTIONS_TOKEN)]
        if h.headers.get("Authorization") not in tokens:
            return self._json(h, 401, {"message": "Bad credentials",
                                       "documentation_url": "https://docs.github.com/rest"})  # fmt: skip
        with self._lock:
            fail, throttle = self.fail_next > 0, self.throttle_next > 0 and self.fail_next <= 0
            self.fail_next -= int(fail)
            self.throttle_next -= int(throttle)
            exhausted = self.exhaust_next > 0 and not fail and not throttle
            self.exhaust_next -= int(exhausted)
        if exhausted:
            reset = int(time.time()) + 2
            return self._json(h, 403, {"message": "API rate limit exceeded for installation.",
                                       "documentation_url": "https://docs.github.com/rest"},
                              {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": str(reset)})  # fmt: skip
        if fail:
            return self._json(h, 503, {"message": "Service Unavailable"})
        if throttle:
            return self._json(h, 403, {"message": "You have exceeded a secondary rate limit.",
                                       "documentation_url": "https://docs.github.com/rest"},
                              {"Retry-After": "1"})  # fmt: skip
        if self.target.handle(h, method, parts.path, query):
            return None
        if method == "GET" and self._workflows(h, parts.path, query):
            return None
        enable = re.fullmatch(r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/enable", parts.path)
        if method == "PUT" and enable:  # 204, no body; the workflow is active again
            flow = next((f for f in self.workflows if f.repo == enable.group(1)
                         and enable.group(2) in (f.file, str(f.id))), None)  # fmt: skip
            if flow is None:
                return self._json(h, 404, NOT_FOUND)
            if not self.may_write:
                return self._json(h, 403, {"message": "Resource not accessible by integration",
                                           "documentation_url": "https://docs.github.com/rest"})  # fmt: skip
            flow.state = "active"
            return self._empty(h, 204)
        if method == "GET" and self._metadata(h, parts.path, query):
            return None
        whole = re.fullmatch(r"/repos/([^/]+)/([^/]+)", parts.path)
        if method == "GET" and whole:  # a repository with no metadata of its own
            body = self._repo_json(*whole.groups())
            for related in ("parent", "source"):  # the example lacks what the schema requires
                body[related].setdefault("language", None)
            validate(body, "full-repository")
            return self._json(h, 200, body)
        repo = re.match(r"/repos/([^/]+/[^/]+)/actions/artifacts", parts.path)
        if method == "GET" and repo and parts.path == repo.group(0):
            return self._list(h, query, repo.group(1))
        base = f"/repos/{self.owner}/{self.repo}/actions/artifacts"
        one = re.fullmatch(re.escape(base) + r"/(\d+)(/zip)?", parts.path)
        artifact = next((a for a in self.artifacts if one and a.id == int(one.group(1))), None)
        if artifact is None:
            return self._json(h, 404, {"message": "Not Found",
                                       "documentation_url": "https://docs.github.com/rest"})  # fmt: skip
        if method == "DELETE" and not one.group(2):  # type: ignore[union-attr]
            with self._lock:
                self.artifacts.remove(artifact)
            return self._empty(h, 204)
        if method == "GET" and one.group(2):  # type: ignore[union-attr]
            if artifact.expired:
                return self._json(h, 410, {"message": "Artifact has expired",
                                           "documentation_url": "https://docs.github.com/rest"})  # fmt: skip
            with self._lock:
                stale = self.expire_next_links > 0
                self.expire_next_links -= int(stale)
            expires = time.time() + (-1 if stale else self.link_seconds)
            return self._empty(
                h, 302, {"Location": f"{self.url}/blob/{artifact.id}?expires={expires}"}
            )
        body = self._artifact_json(artifact)
        validate(body, "artifact")
        return self._json(h, 200, body)

    def _list(
        self, h: BaseHTTPRequestHandler, query: dict[str, list[str]], repo: str,
        run_id: int | None = None,
    ) -> None:  # fmt: skip
        own = repo == f"{self.owner}/{self.repo}"
        mine = [a for a in self.artifacts if (a.repo or f"{self.owner}/{self.repo}") == repo
                and (run_id is None or a.run_id == run_id)]  # fmt: skip
        if not own and not mine and run_id is None and not self._repo_known(repo):
            return self._json(h, 404, NOT_FOUND)
        newest_first = sorted(mine, key=lambda a: a.created, reverse=True)
        page_size = self.page_size if own and run_id is None else 100
        self._page(h, query, newest_first, page_size, "artifacts",
                   "actions-list-artifacts-for-repo-200" if run_id is None
                   else "actions-list-workflow-run-artifacts-200", self._artifact_json)  # fmt: skip

    def _page(
        self, h: BaseHTTPRequestHandler, query: dict[str, list[str]], items: list[Any],
        page_size: int, key: str | None, definition: str, render: Any,
    ) -> None:  # fmt: skip
        """One page of ``items`` with GitHub's ``Link`` header; ``key`` None: a bare list."""
        per_page = min(int(query.get("per_page", ["30"])[0]), page_size)
        page = int(query.get("page", ["1"])[0])
        chosen = [render(x) for x in items[(page - 1) * per_page : page * per_page]]
        body: Any = chosen if key is None else {"total_count": len(items), key: chosen}
        if key is None:
            for item in body:
                validate(item, definition)
        else:
            validate(body, definition)
        etag = 'W/"' + hashlib.sha256(json.dumps(body).encode()).hexdigest() + '"'
        if h.headers.get("If-None-Match") == etag:  # GitHub: 304, no body, free
            with self._lock:
                self.not_modified += 1
            return self._empty(h, 304, {"ETag": etag})
        headers = {"ETag": etag}
        last = max(1, -(-len(items) // per_page))
        rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k not in ("page", "per_page"))
        base = f"{self.url}{urlsplit(h.path).path}?per_page={per_page}" + (
            f"&{rest}" if rest else ""
        )
        if page < last:
            headers["Link"] = (
                f'<{base}&page={page + 1}>; rel="next", <{base}&page={last}>; rel="last"'
            )
        self._json(h, 200, body, headers)

    def _repo_known(self, repo: str) -> bool:
        return any(f.repo == repo for f in self.workflows)

    def _workflows(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> bool:
        """Workflows, runs, run artifacts, owners and their repositories; False: not one of them."""
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)(/runs)?", path)
        if m:
            repo, ident, runs = m.groups()
            flow = next((f for f in self.workflows if f.repo == repo
                         and ident in (f.file, str(f.id))), None)  # fmt: skip
            if flow is None:
                self._json(h, 404, NOT_FOUND)
            elif runs:
                chosen = [r for r in sorted(flow.runs, key=lambda r: r.finished, reverse=True)
                          if query.get("branch", [r.branch])[0] == r.branch
                          and query.get("event", [r.event])[0] == r.event]  # fmt: skip
                self._page(h, query, chosen, 100, "workflow_runs",
                           "actions-list-workflow-runs-200",
                           lambda r: self._run_json(flow, r))  # fmt: skip
            else:
                body = copy.deepcopy(WORKFLOW)
                body.update(id=flow.id, name=flow.file, path=f".github/workflows/{flow.file}",
                            state=flow.state,
                            url=f"{self.url}/repos/{repo}/actions/workflows/{flow.id}",
                            html_url=f"https://github.com/{repo}/actions/workflows/{flow.file}")  # fmt: skip
                validate(body, "workflow")
                self._json(h, 200, body)
            return True
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/actions/runs/(\d+)/artifacts", path)
        if m:
            self._list(h, query, m.group(1), int(m.group(2)))
            return True
        m = re.fullmatch(r"/users/([^/]+)", path)
        if m:
            owner = m.group(1)
            body = copy.deepcopy(REPOSITORY["owner"])
            known = owner in self.org_repos or owner in self.user_repos or owner in self.packages
            if not known:
                self._json(h, 404, NOT_FOUND)
                return True
            org = owner in self.org_repos or owner in self.package_orgs
            body.update(login=owner, type="Organization" if org else "User",
                        url=f"{self.url}/users/{owner}", repos_url=f"{self.url}/users/{owner}/repos")  # fmt: skip
            validate(body, "simple-user")
            self._json(h, 200, body)
            return True
        if self._packages(h, path, query):
            return True
        m = re.fullmatch(r"/(?:orgs|users)/([^/]+)/repos", path)
        if m:
            names = self.org_repos.get(m.group(1)) or self.user_repos.get(m.group(1), [])
            self._page(h, query, names, 100, None, "minimal-repository",
                       lambda n: self._repo_json(m.group(1), n))  # fmt: skip
            return True
        return False

    def _packages(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> bool:
        """An owner's container packages, and one package's versions, newest first."""
        m = re.fullmatch(r"/(orgs|users)/([^/]+)/packages(?:/container/([^/]+)/versions)?", path)
        if not m:
            return False
        kind, owner, name = m.groups()
        owned = self.packages.get(owner)
        if owned is None or (kind == "orgs") != (owner in self.package_orgs):
            self._json(h, 404, NOT_FOUND)
            return True
        if name is None:
            if query.get("package_type") != ["container"]:
                self._json(h, 400, {"message": "package_type is required"})
                return True

            def package(n: str) -> dict[str, Any]:
                body = copy.deepcopy(EXAMPLES["package"][0])
                body.update(name=n, id=abs(hash(n)) % 10**6, version_count=len(owned[n]),
                            url=f"{self.url}/{kind}/{owner}/packages/container/{quote(n, safe='')}")  # fmt: skip
                return body

            self._page(h, query, sorted(owned), 100, None, "package", package)
            return True
        name = unquote(name)
        if name not in owned:
            self._json(h, 404, NOT_FOUND)
            return True

        def version(v: FakeVersion) -> dict[str, Any]:
            body = copy.deepcopy(EXAMPLES["package-version"][0])
            body.update(name=v.digest, id=abs(hash(v.digest)) % 10**8,
                        created_at=v.updated.strftime(STAMP), updated_at=v.updated.strftime(STAMP),
                        metadata={"package_type": "container", "container": {"tags": v.tags}})  # fmt: skip
            return body

        newest = sorted(owned[name], key=lambda v: v.updated, reverse=True)
        self._page(h, query, newest, self.page_size, None, "package-version", version)
        return True

    def _metadata(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> bool:
        """A repository and its metadata lists; False: not one of them."""
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(?:/(.+))?", path)
        if not m or f"{m.group(1)}/{m.group(2)}" not in self.metadata:
            return False
        if (m.group(3) or "").startswith("actions/") and m.group(3) not in (
            "actions/variables",
            "actions/secrets",
        ):
            return False
        owner, name, rest = m.groups()
        meta = self.metadata[f"{owner}/{name}"]
        if rest is not None and self._settings(h, meta, rest, query):
            return True
        if rest is None:
            body = self._repo_json(owner, name)
            for related in ("parent", "source"):  # the example lacks what the schema requires
                body[related].setdefault("language", None)
            validate(body, "full-repository")
            self._json(h, 200, body)
            return True
        base = f"{self.url}/repos/{owner}/{name}"
        numbered = [("issue", i) for i in range(1, meta.issues + 1)]
        numbered += [("pull", meta.issues + i) for i in range(1, meta.pulls + 1)]
        lists: dict[str, tuple[str, list[Any], Any]] = {
            "issues": ("issue", numbered, lambda x: self._issue(base, *x)),
            "pulls": ("pull-request-simple", [n for k, n in numbered if k == "pull"],
                      lambda n: self._pull(base, meta, n)),
            "issues/comments": ("issue-comment", list(range(1, meta.issue_comments + 1)),
                                lambda i: self._item("issue-comment", id=i, body=f"comment {i}",
                                                     issue_url=f"{base}/issues/"
                                                     f"{(i - 1) % len(numbered) + 1}",
                                                     created_at=_when(i, 7))),
            "pulls/comments": ("pull-request-review-comment",
                               list(range(1, meta.review_comments + 1)),
                               lambda i: self._item("pull-request-review-comment", id=i,
                                                    body=f"review comment {i}",
                                                    pull_request_url=f"{base}/pulls/"
                                                    f"{meta.issues + (i - 1) % max(1, meta.pulls) + 1}",
                                                    created_at=_when(i, 11))),
            "labels": ("label", list(range(1, meta.labels + 1)),
                       lambda i: self._item("label", id=i, name=f"label-{i}",
                                            color=f"{i * 40503 % 0xFFFFFF:06x}")),
            "milestones": ("milestone", list(range(1, meta.milestones + 1)),
                           lambda i: self._item("milestone", id=i, number=i, title=f"m{i}",
                                                state="closed" if i % 2 == 0 else "open")),
            "releases": ("release", list(meta.releases),
                         lambda tag: self._release(base, meta, tag)),
        }  # fmt: skip
        review = re.fullmatch(r"pulls/(\d+)/reviews", rest)
        if review:
            number = int(review.group(1))
            count = meta.reviews.get(number, meta.reviews_per_pull)
            lists[rest] = ("pull-request-review", list(range(1, count + 1)),
                           lambda i: self._item("pull-request-review", id=number * 100 + i,
                                                body=f"review {i} of {number}" if i % 3 else "",
                                                submitted_at=_when(number * 100 + i, 13)))  # fmt: skip
        asset = re.fullmatch(r"releases/assets/(\d+)", rest)
        if asset:
            self._asset(h, meta, int(asset.group(1)))
            return True
        if rest not in lists:
            self._json(h, 404, NOT_FOUND)
            return True
        definition, items, render = lists[rest]
        releases = list(meta.releases)

        def ident(x: Any) -> int:  # an item's id: a number, an issue's, a release's
            return (
                x[1] if isinstance(x, tuple) else releases.index(x) + 1 if isinstance(x, str) else x
            )

        gone, edits = meta.gone.get(rest, set()), meta.edits.get(rest, {})
        shown = [x for x in items if ident(x) not in gone]
        edited = lambda x: {**render(x), **edits.get(ident(x), {})}  # noqa: E731
        self._page(h, query, shown, self.metadata_page, None, definition, edited)
        hook = self.after_page.pop((rest, int(query.get("page", ["1"])[0])), None)
        if hook is not None:
            hook()
        return True

    def _settings(
        self, h: BaseHTTPRequestHandler, meta: FakeMetadata, rest: str,
        query: dict[str, list[str]],
    ) -> bool:  # fmt: skip
        """A repository's settings (SPEC §11's capture); False: not one of them."""
        if rest in meta.denied or any(rest.startswith(d + "/") for d in meta.denied):
            self._json(h, 403, {"message": "Resource not accessible by integration",
                                "documentation_url": "https://docs.github.com/rest"})  # fmt: skip
            return True
        if rest in meta.absent:
            self._json(h, 404, NOT_FOUND)
            return True
        one = lambda definition, **f: self._item(definition, **f)  # noqa: E731
        protection = re.fullmatch(r"branches/(.+)/protection", rest)
        ruleset = re.fullmatch(r"rulesets/(\d+)", rest)
        environment = re.fullmatch(r"environments/([^/]+)/(deployment-branch-policies|variables)",
                                   rest)  # fmt: skip
        body: Any
        if rest == "topics":
            body = {"names": list(meta.topics)}
            validate(body, "topic")
        elif rest == "properties/values":
            body = copy.deepcopy(EXAMPLES["custom-property-value"])
        elif rest == "branches" and query.get("protected") == ["true"]:
            body = [one("short-branch", name=b, protected=True)
                    for b in meta.protected + meta.ruleset_protected]  # fmt: skip
            for branch in body:  # the example lacks what the schema requires
                checks = branch["protection"]["required_status_checks"]
                checks.setdefault("checks", [{"context": c, "app_id": None}
                                             for c in checks.get("contexts", [])])  # fmt: skip
        elif protection:
            if unquote(protection.group(1)) not in meta.protected:
                self._json(h, 404, {"message": "Branch not protected",
                                    "documentation_url": "https://docs.github.com/rest"})  # fmt: skip
                return True
            body = copy.deepcopy(EXAMPLES["branch-protection"])
            reviews = body["required_pull_request_reviews"]  # the example's apps' owners are
            for allowed in reviews.values():  # organisations the schema does not take
                if isinstance(allowed, dict) and "apps" in allowed:
                    allowed["apps"] = []
                for team in allowed.get("teams", []) if isinstance(allowed, dict) else []:
                    team.setdefault("type", "organization")
            for team in (body.get("restrictions") or {}).get("teams", []):
                team.setdefault("type", "organization")
            checks = body["required_status_checks"]  # status checks with their app
            checks.setdefault("checks", [{"context": c, "app_id": 15368}
                                         for c in checks.get("contexts", [])])  # fmt: skip
        elif rest == "rulesets":
            body = [{**copy.deepcopy(EXAMPLES["repository-ruleset"]), "id": i, "name": f"rules {i}"}
                    for i in range(1, meta.rulesets + 1)]  # fmt: skip
        elif ruleset:
            body = {**copy.deepcopy(EXAMPLES["repository-ruleset"]),
                    "id": int(ruleset.group(1)), "name": f"rules {ruleset.group(1)}"}  # fmt: skip
        elif rest == "environments":
            body = {"total_count": len(meta.environments),
                    "environments": [one("environment", id=i + 1, name=n)
                                     for i, n in enumerate(meta.environments)]}  # fmt: skip
        elif environment and environment.group(2) == "variables":
            body = {"total_count": 1, "variables": [one("actions-variable", name="REGION")]}
        elif environment:
            policies = copy.deepcopy(EXAMPLES["deployment-branch-policy"])
            body = {"total_count": len(policies), "branch_policies": policies}
        elif rest in ("actions/variables", "actions/secrets"):
            kind = rest.split("/")[1]
            count = meta.variables if kind == "variables" else meta.secrets
            definition = "actions-variable" if kind == "variables" else "actions-secret"
            body = {"total_count": count,
                    kind: [one(definition, name=f"{kind.upper()[:-1]}_{i}")
                           for i in range(1, count + 1)]}  # fmt: skip
        else:
            lists = {"autolinks": ("autolink", meta.autolinks, "key_prefix", "T{}-"),
                     "hooks": ("hook", meta.hooks, "name", "web"),
                     "keys": ("deploy-key", meta.deploy_keys, "title", "key {}"),
                     "collaborators": ("collaborator", meta.collaborators, "login", "user{}"),
                     "teams": ("team", meta.teams, "slug", "team-{}")}  # fmt: skip
            if rest not in lists:
                return False
            definition, count, field_name, pattern = lists[rest]
            body = [one(definition, **{"id": i, field_name: pattern.format(i)})
                    for i in range(1, count + 1)]  # fmt: skip
            for item in body:
                if definition == "team":  # the example lacks what the schema requires
                    item.setdefault("type", "organization")
                validate(item, definition)
        for item in body if rest == "branches" else []:
            validate(item, "short-branch")
        checked = {"branches/": "branch-protection", "rulesets/": "repository-ruleset"}
        for prefix, definition in checked.items():
            if rest.startswith(prefix) and isinstance(body, dict):
                validate(body, definition)
        for item in body.get("environments", []) if isinstance(body, dict) else []:
            validate(item, "environment")
        self._json(h, 200, body)
        return True

    def _item(self, definition: str, **fields: Any) -> dict[str, Any]:
        body = copy.deepcopy(EXAMPLES[definition][0])
        body.update(fields)
        for team in body.get("requested_teams") or []:  # the example lacks what the schema requires
            team.setdefault("type", "organization")
        return body

    def _issue(self, base: str, kind: str, number: int) -> dict[str, Any]:
        """Issue ``number``: every third closed (completed, or not planned), every fifth
        locked, a label and a milestone of the repository's where it has some."""
        meta = self.metadata[urlsplit(base).path[len("/repos/") :]]
        closed = number % 3 == 0
        body = self._item(
            "issue", id=number, number=number, title=f"{kind} {number}",
            url=f"{base}/issues/{number}", body=f"the body of {kind} {number}\n\nline two",
            state="closed" if closed else "open", closed_at=_when(number, 5) if closed else None,
            state_reason=("completed" if number % 2 else "not_planned") if closed else None,
            locked=number % 5 == 0, active_lock_reason="resolved" if number % 5 == 0 else None,
            created_at=_when(number, 3),
            labels=[self._item("label", id=number % meta.labels + 1,
                               name=f"label-{number % meta.labels + 1}")] if meta.labels else [],
            milestone=self._item("milestone", number=number % meta.milestones + 1,
                                 id=number % meta.milestones + 1,
                                 title=f"m{number % meta.milestones + 1}")
            if meta.milestones else None,
        )  # fmt: skip
        body["user"] = {**body["user"], "login": f"user{number % 4}"}
        if kind == "pull":
            body["pull_request"] = {**body["pull_request"], "url": f"{base}/pulls/{number}"}
        else:
            body.pop("pull_request", None)
        return body

    def _pull(self, base: str, meta: FakeMetadata, number: int) -> dict[str, Any]:
        """Pull request ``number``: from ``feature`` into ``main`` (the fixture's branches),
        every other one from a branch deleted since; every third merged."""
        body = self._item("pull-request-simple", number=number, id=number,
                          title=f"pull {number}", url=f"{base}/pulls/{number}",
                          merged_at=_when(number, 5) if number % 3 == 0 else None)  # fmt: skip
        head = "feature" if number % 2 else f"gone-{number}"
        body["head"] = {**body["head"], "ref": head, "label": f"octo-org:{head}"}
        if number in meta.from_forks:  # the same branch name, in someone's fork
            body["head"]["repo"] = {**body["head"]["repo"], "full_name": "someone/fork", "id": 7}
        body["base"] = {**body["base"], "ref": "main", "label": "octo-org:main"}
        return body

    def _assets(self, meta: FakeMetadata) -> list[tuple[int, str, str, bytes]]:
        """(id, tag, name, data) of every asset, ids counted across releases."""
        listed = [(tag, n, d) for tag, files in meta.releases.items() for n, d in files.items()]
        return [(i + 1, tag, n, d) for i, (tag, n, d) in enumerate(listed)]

    def _release(self, base: str, meta: FakeMetadata, tag: str) -> dict[str, Any]:
        number = list(meta.releases).index(tag) + 1
        body = self._item("release", id=number, tag_name=tag, name=tag,
                          url=f"{base}/releases/{number}")  # fmt: skip
        template = EXAMPLES["release"][0]["assets"][0]
        body["assets"] = [
            {**copy.deepcopy(template), "id": i, "name": n, "size": len(d),
             "url": f"{base}/releases/assets/{i}",
             "digest": "sha256:" + hashlib.sha256(d).hexdigest()}
            for i, t, n, d in self._assets(meta) if t == tag
        ]  # fmt: skip
        return body

    def _asset(self, h: BaseHTTPRequestHandler, meta: FakeMetadata, asset_id: int) -> None:
        """The asset's JSON, or with ``Accept: application/octet-stream`` a 302 to storage."""
        found = next((a for a in self._assets(meta) if a[0] == asset_id), None)
        if found is None:
            return self._json(h, 404, NOT_FOUND)
        if h.headers.get("Accept") != "application/octet-stream":
            return self._json(h, 404, NOT_FOUND)  # offsite only ever downloads
        stored = self.add(f"asset-{asset_id}", found[3])
        if found[2] in self.lost_assets:
            self.broken.add(stored.id)
        expires = time.time() + self.link_seconds
        return self._empty(h, 302, {"Location": f"{self.url}/blob/{stored.id}?expires={expires}"})

    def _repo_json(self, owner: str, name: str) -> dict[str, Any]:
        body = copy.deepcopy(REPOSITORY)
        body.update(name=name, full_name=f"{owner}/{name}", url=f"{self.url}/repos/{owner}/{name}")
        body.setdefault("language", None)  # GitHub's example lacks it, its schema requires it
        body.update(self.repo_attrs.get(f"{owner}/{name}", {}))
        return body

    def _run_json(self, flow: FakeWorkflow, run: FakeRun) -> dict[str, Any]:
        body = copy.deepcopy(RUN)
        base = f"{self.url}/repos/{flow.repo}/actions/runs/{run.id}"
        when = run.finished.strftime(STAMP)
        body.update(id=run.id, run_number=run.number, status=run.status,
                    conclusion=run.conclusion, event=run.event, head_branch=run.branch,
                    workflow_id=flow.id, path=f".github/workflows/{flow.file}@{run.branch}",
                    created_at=(run.started or run.finished).strftime(STAMP), updated_at=when,
                    run_started_at=(run.started or run.finished).strftime(STAMP), url=base,
                    html_url=f"https://github.com/{flow.repo}/actions/runs/{run.id}",
                    artifacts_url=f"{base}/artifacts", jobs_url=f"{base}/jobs",
                    workflow_url=f"{self.url}/repos/{flow.repo}/actions/workflows/{flow.id}")  # fmt: skip
        body["repository"] = {**body["repository"], "id": REPOSITORY["id"]}
        body["head_repository"] = {
            **body["head_repository"],
            "id": FORK_ID if run.fork else REPOSITORY["id"],
        }
        return body

    def _blob(self, h: BaseHTTPRequestHandler, artifact_id: int, expires: float) -> None:
        artifact = next((a for a in self.artifacts if a.id == artifact_id), None)
        if artifact is not None and artifact.id in self.broken:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if artifact is None or time.time() > expires:
            self.stale_refused += artifact is not None
            data = b"<Error><Code>AuthenticationFailed</Code></Error>"
            h.send_response(403)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        data, size = artifact.data, len(artifact.data)
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", h.headers.get("Range", ""))
        if wanted is None:
            h.send_response(200)
            h.send_header("Content-Length", str(size))
            h.end_headers()
            h.wfile.write(data)
            return
        first, last = wanted.groups()
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(size - 1, int(last) if last else size - 1)
        h.send_response(206)
        h.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        h.send_header("Content-Length", str(end - start + 1))
        h.end_headers()
        h.wfile.write(data[start : end + 1])
