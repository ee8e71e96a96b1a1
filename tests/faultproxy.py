"""Proxies in front of a real server that fail on demand: the transient errors (a 503,
a dropped connection) a storage client must ride out. ``FaultProxy`` speaks HTTP and
fails chosen requests; ``TcpFaultProxy`` relays bytes and cuts connections."""

from __future__ import annotations

import contextlib
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


class TcpFaultProxy:
    """A TCP relay in front of a server whose protocol is encrypted end to end (SSH):
    faults are cut connections, placed by how many bytes have crossed. ``requests``
    holds one line per connection, the client's attempts."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[str] = []
        self.cuts: list[str] = []
        self._pending: list[Cut] = []
        self.dead = False
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, direction: str, after: int, die: bool = False) -> None:
        """Drop the newest live connection (else the next one) once ``after`` more bytes
        went ``up`` (to the server) or ``down`` (to the client) on it; with ``die``, the
        server is gone from then on (``kill``)."""
        assert direction in ("up", "down")
        with self._lock:
            live = [link for link in self._links if not link.closed]
            if live:
                live[-1].cut = Cut(direction, live[-1].crossed[direction] + after, die)
            else:
                self._pending.append(Cut(direction, after, die))

    def kill(self) -> None:
        """Drop every connection and refuse new ones: the server is gone."""
        with self._lock:
            self.dead = True
            for link in self._links:
                link.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.requests.append(f"connection {len(self.requests) + 1}")
                if self.dead:
                    client.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                cut, self._pending = self._pending[:1], self._pending[1:]
                link = _Link(self, client, upstream, cut[0] if cut else None)
                self._links.append(link)
            threading.Thread(target=link.pump, args=(client, upstream, "up"), daemon=True).start()
            threading.Thread(target=link.pump, args=(upstream, client, "down"), daemon=True).start()

    def close(self) -> None:
        self.kill()
        self._listener.close()


@dataclass
class Cut:
    direction: str
    after: int
    die: bool


class _Link:
    def __init__(
        self, proxy: TcpFaultProxy, a: socket.socket, b: socket.socket, cut: Cut | None
    ) -> None:
        self.proxy, self.sockets, self.cut = proxy, (a, b), cut
        self.crossed = {"up": 0, "down": 0}
        self.closed = False

    def pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while data := src.recv(65536):
                self.crossed[direction] += len(data)
                cut = self.cut
                if cut and cut.direction == direction and self.crossed[direction] >= cut.after:
                    self.proxy.cuts.append(f"{direction} after {self.crossed[direction]} bytes")
                    self.cut = None
                    if cut.die:
                        self.proxy.kill()
                    break
                dst.sendall(data)
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        self.closed = True
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
