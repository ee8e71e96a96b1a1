"""Any command's standard output (``--exec NAME=COMMAND``), run by ``/bin/sh -c``.

The command line can hold secrets, so the manifest records only its program name.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from offsite.errors import BadInput, SourceFailed
from offsite.sources.base import Dump, RestoreOptions, RunContext, Source
from offsite.sources.restorer import FileRestorer, Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CHUNK, CheckedReader


def exit_reason(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exited with status {code}"


class CommandSource(Source):
    kind = "command"
    suffix = ".out"

    def check(self) -> None:
        if not self.url.strip():
            raise BadInput(f"--exec {self.name}= has no command")

    @property
    def display(self) -> str:
        try:
            program = shlex.split(self.url)[0]
        except (ValueError, IndexError):
            program = "sh"
        return f"exec:{Path(program).name}"

    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", self.url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            bufsize=CHUNK,
            start_new_session=True,  # its own process group: a stop ends the whole command
        )
        assert proc.stdout is not None

        def finish() -> None:
            code = proc.wait()
            if code != 0:
                raise SourceFailed(self.name, f"command {exit_reason(code)}")

        try:
            yield Dump(CheckedReader(proc.stdout, finish))
        finally:
            if proc.poll() is None:  # stopped early: the shell and whatever it started
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()

    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return FileRestorer(Path(cls.local_target(target)).expanduser(), options.force)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return f"> {name}.out"
