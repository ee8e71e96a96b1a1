"""MongoDB: ``mongodump --archive`` to a stream, ``mongorestore --archive`` from one.

The connection string (password included) goes to the tools in a 0600 ``--config``
YAML file, never on argv. Documents per collection come from mongodump's own
"done dumping" lines. Not tested against a live server: MongoDB cannot be installed
on the machines offsite is built on (see docs/guides/databases.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from offsite.errors import BadInput, RestoreFailed, SourceFailed
from offsite.names import safe_name
from offsite.sources.base import Dump, RestoreOptions, RunContext, Source, SourceOptions
from offsite.sources.dburl import DbURL
from offsite.sources.process import Tool, find_tool, pipe_into
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader, Readable
from offsite.urls import redact

PACKAGE = "mongodb-database-tools"
_DONE = re.compile(r"done dumping (\S+) \((\d+) documents?\)")


@contextlib.contextmanager
def config_file(url: str, folder: Path | None = None) -> Iterator[str]:
    """A 0600 YAML file holding ``uri:``; JSON string quoting is valid YAML."""
    fd, name = tempfile.mkstemp(prefix="offsite-mongo-", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"uri: {json.dumps(url)}\n")
        yield name
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


class MongoSource(Source):
    kind = "mongodb"
    suffix = ".archive"
    target_schemes = ("mongodb", "mongodb+srv")

    def __init__(self, name: str, url: str, options: SourceOptions | None = None) -> None:
        super().__init__(name, url, options)
        self.parsed = DbURL.parse(url, "mongodb")

    @classmethod
    def default_name(cls, url: str) -> str:
        database = DbURL.parse(url, "mongodb").database or "mongodb"
        return safe_name(database, cls.kind)

    @property
    def display(self) -> str:
        return redact(self.url)

    def _fail(self, reason: str) -> SourceFailed:
        return SourceFailed(self.name, reason)

    def check(self) -> None:
        find_tool("mongodump", package=PACKAGE)

    @contextlib.contextmanager
    def dump(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        documents: dict[str, int] = {}

        def on_line(line: str) -> None:
            m = _DONE.search(line)
            if m:
                documents[m.group(1)] = int(m.group(2))

        with config_file(self.url, context.workdir) as config:
            argv = [find_tool("mongodump", package=PACKAGE), f"--config={config}", "--archive"]
            dump = Tool(argv, {}, (self.parsed.password,), on_stderr=on_line)

            def finish() -> None:
                dump.wait(self._fail)
                dump.stderr_lines()  # waits until every "done dumping" line was parsed

            try:
                yield Dump(
                    CheckedReader(dump.stdout, finish),
                    lambda: {"rows": dict(sorted(documents.items()))},
                )
            finally:
                dump.kill()

    @classmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        return MongoRestorer(target, options)

    @classmethod
    def hint_tail(cls, name: str) -> str:
        return '| mongorestore --archive --uri "$MONGODB_URI"'


class MongoRestorer(Restorer):
    """``mongorestore --archive``. Always needs ``--force``: with no MongoDB client to
    ask, offsite cannot check that the target is empty, so it will not assume it."""

    applies_as_it_reads = True  # statements run as they arrive

    def stages_first(self, force: bool) -> bool:
        return True  # mongorestore applies as it reads, into a server that may hold data

    def __init__(self, target: str, options: RestoreOptions) -> None:
        self.url = target
        self.location = redact(target)
        self.options = options
        find_tool("mongorestore", package=PACKAGE)
        if not options.force:
            raise BadInput(
                f"offsite cannot check that {self.location} is empty: "
                "pass --force to restore into it (mongorestore adds, it never drops)"
            )

    def _fail(self, reason: str) -> RestoreFailed:
        return RestoreFailed(self.location, reason)

    def write(self, stream: Readable) -> None:
        with config_file(self.url) as config:
            argv = [find_tool("mongorestore", package=PACKAGE), f"--config={config}", "--archive"]
            pipe_into(argv, {}, stream, self._fail, (DbURL.parse(self.url, "mongodb").password,))

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        pass
