"""An HTTP reverse proxy in front of a real server that fails requests on demand:
the transient errors (503, a dropped connection) a storage client must ride out."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

Match = Callable[[str, str], bool]  # (method, path) -> fail this one?


@dataclass
class Fault:
    match: Match
    times: int
    status: int | None  # None: close the connection without an answer


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.failed: list[str] = []
        self.requests: list[str] = []
        self.dies_on: Match | None = None
        self.dead = False
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._take(self.command, self.path)
                if fault is not None:
                    if fault.status is None:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    payload = (
                        b"<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>"
                    )
                    self.send_response(fault.status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                head = self.command == "HEAD"  # its Content-Length is the object's
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection") and (
                        head or k.lower() != "content-length"
                    ):
                        self.send_header(k, v)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def fail(self, match: Match, times: int = 1, status: int | None = 503) -> None:
        with self._lock:
            self.faults.append(Fault(match, times, status))

    def die_on(self, match: Match) -> None:
        """From the first request that matches on, answer nothing: a killed server."""
        self.dies_on = match

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append(f"{method} {path}")
            if self.dies_on is not None and self.dies_on(method, path):
                self.dead = True
            if self.dead:
                self.failed.append(f"{method} {path}")
                return Fault(lambda m, p: True, 0, None)
            for fault in self.faults:
                if fault.times > 0 and fault.match(method, path):
                    fault.times -= 1
                    self.failed.append(f"{method} {path}")
                    return fault
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
