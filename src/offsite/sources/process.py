"""Running the database client tools: secrets by environment, errors as one clean line.

Every tool's standard error is collected on a thread (its last lines make the error
message, with any secret removed). ``SideCheck`` feeds a dump to a checking tool
(``pg_restore``, ``redis-check-rdb``) as the dump streams past, so the self-check reads
every byte without a second pass.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import IO

from offsite.errors import BadInput, OffsiteError, OperationFailed
from offsite.stream.pipeline import grow_pipe
from offsite.stream.readers import CHUNK, Readable

ErrorFactory = Callable[[str], OffsiteError]


def exit_reason(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exited with status {code}"


def find_tool(*names: str, package: str) -> str:
    """The first of ``names`` on PATH, or a BadInput naming the package to install."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise BadInput(f"{' or '.join(names)} not found on PATH: install {package}")


class _Tail:
    """The last lines a stream wrote, read on a thread so the writer never blocks."""

    def __init__(
        self, stream: IO[bytes], on_line: Callable[[str], None] | None = None, keep: int = 20
    ) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._on_line = on_line
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in stream:
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    self._lines.append(line)
                    if self._on_line is not None:
                        self._on_line(line)

    def lines(self) -> list[str]:
        self._thread.join(timeout=5)
        return list(self._lines)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class Tool:
    """One running client tool: its output pipe, its stderr tail, and a clean failure."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        secrets: Sequence[str | None] = (),
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = subprocess.PIPE,
        on_stderr: Callable[[str], None] | None = None,
    ) -> None:
        self.name = os.path.basename(argv[0])
        self._secrets = tuple(secrets)
        try:
            self.proc = subprocess.Popen(
                list(argv),
                env={**os.environ, **env},
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.PIPE,
                bufsize=CHUNK if stdout == subprocess.PIPE else -1,
            )
        except OSError as exc:
            raise OperationFailed(f"cannot run {self.name}: {exc.strerror}") from None
        assert self.proc.stderr is not None
        if self.proc.stdout is not None:
            grow_pipe(self.proc.stdout.fileno())
        self._tail = _Tail(self.proc.stderr, on_stderr)

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def reason(self, code: int) -> str:
        """Why the tool failed: its last error lines, secrets removed."""
        lines = [scrub(line, self._secrets) for line in self._tail.lines()]
        errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
        detail = (errors or lines or [""])[-1]
        return f"{self.name} {exit_reason(code)}" + (f": {detail}" if detail else "")

    def wait(self, fail: ErrorFactory) -> None:
        code = self.proc.wait()
        if code != 0:
            raise fail(self.reason(code))

    def stderr_lines(self) -> list[str]:
        return [scrub(line, self._secrets) for line in self._tail.lines()]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def run_tool(
    argv: Sequence[str],
    env: dict[str, str],
    fail: ErrorFactory,
    secrets: Sequence[str | None] = (),
    input: bytes | None = None,
) -> str:
    """Run a short tool command to the end; its standard output, or ``fail(reason)``."""
    try:
        done = subprocess.run(
            list(argv),
            env={**os.environ, **env},
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise fail(f"cannot run {os.path.basename(argv[0])}: {exc.strerror}") from None
    if done.returncode != 0:
        lines = [
            scrub(line.strip(), secrets)
            for line in done.stderr.decode("utf-8", "replace").splitlines()
            if line.strip()
        ]
        # git's own line ("fatal: …"), not the advice after it ("…and the repository exists.")
        first = next((line for line in lines if line.startswith(("fatal:", "error:"))), None)
        detail = first or (lines[-1] if lines else "")
        name = os.path.basename(argv[0])
        raise fail(f"{name} {exit_reason(done.returncode)}" + (f": {detail}" if detail else ""))
    return done.stdout.decode("utf-8", "replace")


def pipe_into(
    argv: Sequence[str],
    env: dict[str, str],
    stream: Readable,
    fail: ErrorFactory,
    secrets: Sequence[str | None] = (),
) -> None:
    """Run a tool with ``stream`` on its standard input to the end, or ``fail(reason)``."""

    def feed(stdin: IO[bytes]) -> None:
        while chunk := stream.read(CHUNK):
            stdin.write(chunk)

    feed_tool(argv, env, feed, fail, secrets)


def feed_tool(
    argv: Sequence[str],
    env: dict[str, str],
    feed: Callable[[IO[bytes]], None],
    fail: ErrorFactory,
    secrets: Sequence[str | None] = (),
    started: Callable[[Tool], None] | None = None,
) -> None:
    """Run a tool whose standard input ``feed`` writes, to the end, or ``fail(reason)``;
    ``started`` sees the running tool (to kill it from another thread)."""
    tool = Tool(argv, env, secrets, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    if started is not None:
        started(tool)
    stdin = tool.proc.stdin
    assert stdin is not None
    try:
        feed(stdin)
    except BrokenPipeError:
        pass  # the tool stopped reading: its exit status says why
    except BaseException:
        # the stream failed (a checksum, a decryption): the tool must not take what it
        # has as the whole input and commit it, so it is stopped before it sees an end
        tool.kill()
        raise
    finally:
        with contextlib.suppress(OSError):
            stdin.close()
    tool.wait(fail)


class SideCheck:
    """A reader that hands every chunk it reads to a checking tool's standard input.

    A feeder thread writes to the checker through a queue of a few chunks, so the
    dump never waits for the checker chunk by chunk (memory: ``QUEUE`` chunks at most).
    ``parse`` sees the checker's standard output in chunks, on a thread. ``finish``
    closes the checker's input, waits, and raises ``fail(reason)`` when it failed.
    """

    QUEUE = 4

    def __init__(
        self,
        inner: IO[bytes],
        argv: Sequence[str],
        env: dict[str, str],
        parse: Callable[[bytes], None] | None = None,
    ) -> None:
        self._inner = inner
        self.tool = Tool(argv, env, stdin=subprocess.PIPE)
        stdin = self.tool.proc.stdin
        assert stdin is not None
        self._stdin = stdin
        grow_pipe(stdin.fileno())
        grow_pipe(self.tool.stdout.fileno())
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.QUEUE)
        self._parse = parse
        self._threads = [
            threading.Thread(target=self._feed, daemon=True),
            threading.Thread(target=self._consume, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._finished = False

    def _feed(self) -> None:
        broken = False
        while (chunk := self._queue.get()) is not None:
            if broken:
                continue  # the checker gave up (``finish`` reports why): keep draining
            try:
                self._stdin.write(chunk)
            except (OSError, ValueError):
                broken = True
        with contextlib.suppress(OSError, ValueError):
            self._stdin.close()

    def _consume(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            while chunk := self.tool.stdout.read(CHUNK):
                if self._parse is not None:
                    self._parse(chunk)

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        if data:
            self._queue.put(data)
        return data

    def close(self) -> None:
        self._inner.close()

    def _stop(self) -> None:
        if not self._finished:
            self._finished = True
            self._queue.put(None)
            self._threads[0].join()

    def finish(self, fail: ErrorFactory) -> None:
        self._stop()
        self.tool.wait(fail)
        self._threads[1].join()

    def kill(self) -> None:
        self.tool.kill()
        self._stop()
        self._threads[1].join(timeout=5)
