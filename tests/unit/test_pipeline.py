"""The pipeline's promise: a clean EOF means every stage succeeded."""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import pytest

from offsite.errors import OperationFailed, SourceFailed
from offsite.stream.pipeline import (
    CountingWriter,
    Pipeline,
    compress,
    decompress,
    produce_compressed,
)
from offsite.stream.readers import CHUNK, CheckedReader, HashingReader, Readable


def _read_all(stream: Readable) -> bytes:
    out = bytearray()
    while chunk := stream.read(CHUNK):
        out += chunk
    return bytes(out)


@pytest.mark.parametrize("algo", ["zstd", "gzip", "none"])
def test_compress_decompress_round_trip(algo: str) -> None:
    data = os.urandom(3 * CHUNK + 17) + b"abc" * 500_000
    p = Pipeline()
    packed = _read_all(p.checked(compress(p, io.BytesIO(data), algo, None)))
    p.join()
    assert _read_all(decompress(io.BytesIO(packed), algo)) == data
    if algo != "none":
        assert len(packed) < len(data)


@pytest.mark.parametrize("algo", ["zstd", "gzip", "none"])
def test_a_writer_compressed_in_its_own_stage_reads_back_and_counts(algo: str) -> None:
    """A tar written straight into the compressor: the same bytes come back, counted
    before compression, and the stream a stage after it reads is a pipe of its own (gpg
    takes it as its stdin)."""
    data = os.urandom(2 * CHUNK + 5) + b"abc" * 400_000
    seen: list[int] = []
    raw = CountingWriter(seen.append)

    def write(dst: BinaryIO) -> None:
        for start in range(0, len(data), 300_000):
            dst.write(data[start : start + 300_000])

    p = Pipeline()
    reader = produce_compressed(p, "tar", write, algo, None, raw)
    assert p.fd_of(reader) is not None
    packed = _read_all(p.checked(reader))
    p.join()
    assert _read_all(decompress(io.BytesIO(packed), algo)) == data
    assert raw.count == sum(seen) == len(data)


def test_a_writer_failing_half_way_turns_eof_into_its_error() -> None:
    def write(dst: BinaryIO) -> None:
        dst.write(b"z" * CHUNK)
        raise SourceFailed("files", "a file vanished")

    p = Pipeline()
    out = p.checked(produce_compressed(p, "tar", write, "zstd", None, CountingWriter()))
    with pytest.raises(SourceFailed, match="vanished"):
        _read_all(out)


def test_a_failing_source_turns_eof_into_its_error() -> None:
    """A source that dies half-way must not look like a short, complete stream."""

    def check() -> None:
        raise SourceFailed("db", "pg_dump exited with status 1")

    source = CheckedReader(io.BytesIO(b"x" * (2 * CHUNK)), check)
    p = Pipeline()
    out = p.checked(compress(p, source, "zstd", None))
    with pytest.raises(SourceFailed, match="pg_dump exited"):
        _read_all(out)


def test_a_failing_stage_fails_the_reader_not_silently() -> None:
    def explode(src: Readable, dst: BinaryIO) -> None:
        dst.write(src.read(10))
        raise RuntimeError("disk on fire")

    p = Pipeline()
    out = p.checked(p.stage("explode", explode, io.BytesIO(b"y" * 100)))
    with pytest.raises(OperationFailed, match="disk on fire"):
        _read_all(out)


def test_abort_stops_upstream_stages() -> None:
    """A consumer that gives up must not leave stages blocked on a full pipe."""
    endless_calls = 0

    class Endless:
        def read(self, size: int = -1, /) -> bytes:
            nonlocal endless_calls
            endless_calls += 1
            return b"z" * CHUNK

        def close(self) -> None:
            pass

    p = Pipeline()
    out = p.checked(compress(p, Endless(), "gzip", 1))
    out.read(100)
    # abort returns only once every stage has stopped; one that cannot stop them must fail
    # this test, not hang it: abort runs on a thread the test waits for a bounded time
    import threading

    aborting = threading.Thread(target=p.abort, daemon=True)
    aborting.start()
    aborting.join(timeout=20)
    assert not aborting.is_alive(), "Pipeline.abort() did not return: a stage is stuck"
    assert endless_calls < 1000


def test_tee_gives_identical_streams() -> None:
    data = os.urandom(5 * CHUNK)
    p = Pipeline()
    readers = p.tee(io.BytesIO(data), 2)
    import threading

    results: list[bytes] = [b"", b""]

    def drain(i: int) -> None:
        results[i] = _read_all(p.checked(readers[i]))

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == results[1] == data


def test_hashing_reader_drain_covers_every_byte() -> None:
    import hashlib

    data = os.urandom(CHUNK + 5)
    r = HashingReader(io.BytesIO(data))
    r.read(10)
    r.drain()
    assert r.count == len(data)
    assert r.hexdigest() == hashlib.sha256(data).hexdigest()
