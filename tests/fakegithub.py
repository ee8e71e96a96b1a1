"""A local stand-in for GitHub's REST API (the parts offsite reads), answering with the
shapes of GitHub's own examples; every JSON body it serves is validated against GitHub's
schema (tests/fixtures/github), so a test cannot pass on a shape GitHub never sends.

Artifacts: list pages with ``Link`` headers, the 302 from ``…/zip`` to a signed blob
address that expires, Range reads of the blob, DELETE, and 410 for an expired one.
"""

from __future__ import annotations

import copy
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
from urllib.parse import parse_qs, urlsplit

import jsonschema

FIXTURES = Path(__file__).parent / "fixtures" / "github"
SCHEMA = json.loads((FIXTURES / "github-actions-rest-subset.schema.json").read_text())
ARTIFACT = json.loads((FIXTURES / "artifact.json").read_text())
TOKEN = "ghp_fake-token-for-tests"


def validate(body: Any, definition: str) -> None:
    jsonschema.Draft202012Validator(
        {"$ref": f"#/$defs/{definition}", "$defs": SCHEMA["$defs"]}
    ).validate(body)


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

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- setting up ----------------------------------------------------------------------
    def add(
        self, name: str, data: bytes, created: datetime | None = None, expired: bool = False
    ) -> StoredArtifact:
        with self._lock:
            artifact = StoredArtifact(100 + len(self.artifacts), name, data,
                                      created or datetime.now(timezone.utc), expired)  # fmt: skip
            self.artifacts.append(artifact)
            return artifact

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
                    expires_at=(a.created + timedelta(days=90)).strftime(stamp))  # fmt: skip
        return body

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query)
        self.log.append(f"{method} {parts.path}")
        blob = re.fullmatch(r"/blob/(\d+)", parts.path)
        if blob:  # the signed storage address: no token, a signature that expires
            return self._blob(h, int(blob.group(1)), float(query.get("expires", ["0"])[0]))
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json(h, 401, {"message": "Bad credentials",
                                       "documentation_url": "https://docs.github.com/rest"})  # fmt: skip
        base = f"/repos/{self.owner}/{self.repo}/actions/artifacts"
        if method == "GET" and parts.path == base:
            return self._list(h, query)
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

    def _list(self, h: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        per_page = min(int(query.get("per_page", ["30"])[0]), self.page_size)
        page = int(query.get("page", ["1"])[0])
        newest_first = sorted(self.artifacts, key=lambda a: a.created, reverse=True)
        chosen = newest_first[(page - 1) * per_page : page * per_page]
        body = {
            "total_count": len(self.artifacts),
            "artifacts": [self._artifact_json(a) for a in chosen],
        }
        validate(body, "actions-list-artifacts-for-repo-200")
        headers = {}
        last = max(1, -(-len(self.artifacts) // per_page))
        base = f"{self.url}/repos/{self.owner}/{self.repo}/actions/artifacts?per_page={per_page}"
        links = []
        if page < last:
            links.append(f'<{base}&page={page + 1}>; rel="next"')
            links.append(f'<{base}&page={last}>; rel="last"')
        if links:
            headers["Link"] = ", ".join(links)
        self._json(h, 200, body, headers)

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
