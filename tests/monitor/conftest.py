"""A fake GitHub for the monitor, and a local endpoint that receives webhooks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fakegithub import TOKEN, FakeGitHub


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    yield fake
    fake.close()


@dataclass
class Hooks:
    """Receives POSTs at /<anything>; ``fail_next`` answers that many with a 500."""

    received: list[tuple[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    status: int = 200

    def __post_init__(self) -> None:
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                if hooks.fail_next > 0:
                    hooks.fail_next -= 1
                    status = 500
                else:
                    status = hooks.status
                    try:
                        body: Any = json.loads(data)
                    except ValueError:
                        body = data.decode()  # a ping's plain text
                    hooks.received.append((self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    yield server
    server.close()
