"""Fail closed across destinations: a source that fails mid-stream completes no object
anywhere, even when nothing cleans up afterwards."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from offsite.errors import SourceFailed
from offsite.storage.fanout import put_everywhere
from offsite.storage.local import LocalStorage
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CheckedReader


def test_a_failing_source_completes_no_destination(tmp_path: Path) -> None:
    stores = [LocalStorage(str(tmp_path / name)) for name in ("a", "b")]
    pipeline = Pipeline()

    def fail() -> None:
        raise SourceFailed("db", "pg_dump exited 1")

    source = pipeline.stage("dump", lambda src, dst: dst.write(b"x" * 3_000_000), io.BytesIO())
    dying = pipeline.stage("die", lambda src, dst: (dst.write(src.read(1_000_000)), fail()), source)
    stream = CheckedReader(pipeline.checked(dying), lambda: None)
    with pytest.raises(SourceFailed):
        put_everywhere(pipeline, stores, "20240101T000000Z/db.out", stream)
    for store in stores:  # no cleanup ran: the puts themselves saw the failure
        assert store.stat("20240101T000000Z/db.out") is None
        assert list(store.list()) == []
