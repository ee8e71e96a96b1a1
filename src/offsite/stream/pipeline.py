"""Stream stages on threads joined by OS pipes: compress, encrypt, tee.

Each stage reads a ``Readable`` and writes to the next pipe. Memory stays bounded by
the pipe and chunk sizes whatever the size of the data. When a stage fails it closes
its input (the stage before gets a broken pipe) and its output (the stage after sees
EOF); the reader returned by ``checked`` turns that EOF into the first real error, so
nothing downstream mistakes a failure for the end of the data.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import threading
from typing import IO, BinaryIO, Callable, cast

import zstandard

from offsite.errors import OffsiteError, OperationFailed
from offsite.stream.readers import CHUNK, CheckedReader, Readable

COMPRESSIONS = ("zstd", "gzip", "none")
SUFFIX = {"zstd": ".zst", "gzip": ".gz", "none": ""}
DEFAULT_LEVEL = {"zstd": 3, "gzip": 6}
ZSTD_JOB_SIZE = 2 * CHUNK
_F_SETPIPE_SZ = 1031  # Linux: grow the pipe so stages hand over whole chunks

StageFn = Callable[[Readable, BinaryIO], None]


def grow_pipe(fd: int) -> None:
    """Let the pipe hold a whole chunk, so a writer rarely waits for its reader."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, CHUNK)


def _is_knock_on(exc: BaseException) -> bool:
    """Errors that are only a consequence of another stage failing first."""
    if isinstance(exc, BrokenPipeError):
        return True
    return isinstance(exc, ValueError) and "closed file" in str(exc)


class Pipeline:
    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._closers: list[Callable[[], None]] = []
        self._readers: set[int] = set()  # ids of the pipes' read ends not read from yet
        self._lock = threading.Lock()

    # -- building ----------------------------------------------------------------------
    def _pipe(self) -> tuple[BinaryIO, BinaryIO]:
        r, w = os.pipe()
        grow_pipe(w)
        reader = os.fdopen(r, "rb", buffering=CHUNK)
        writer = os.fdopen(w, "wb", buffering=CHUNK)
        self._closers.append(reader.close)
        self._readers.add(id(reader))
        return reader, writer

    def fd_of(self, src: Readable) -> int | None:
        """The descriptor of ``src`` when it is the read end of one of this pipeline's
        pipes, handed to one stage and not read from yet: a subprocess may take it as
        its stdin (gpg), and the bytes never pass through Python."""
        if id(src) not in self._readers:
            return None
        self._readers.discard(id(src))  # one taker
        return cast(IO[bytes], src).fileno()

    def _start(self, name: str, body: Callable[[], None]) -> None:
        thread = threading.Thread(target=body, name=f"offsite-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def stage(self, name: str, fn: StageFn, src: Readable) -> BinaryIO:
        """Run ``fn(src, pipe)`` on a thread; return the pipe's read end."""
        reader, writer = self._pipe()

        def body() -> None:
            try:
                fn(src, writer)
                writer.flush()
            except BaseException as exc:
                self.fail(exc)
            finally:
                with contextlib.suppress(Exception):
                    writer.close()
                with contextlib.suppress(Exception):
                    src.close()

        self._start(name, body)
        return reader

    def produce(self, name: str, fn: Callable[[BinaryIO], None]) -> BinaryIO:
        """A stage with no input: ``fn`` writes the data into the pipe."""

        class _Nothing:
            def read(self, size: int = -1, /) -> bytes:
                return b""

            def close(self) -> None:
                pass

        return self.stage(name, lambda _src, dst: fn(dst), _Nothing())

    def tee(self, src: Readable, n: int) -> list[BinaryIO]:
        """The same bytes to ``n`` readers; one reader failing fails them all."""
        pipes = [self._pipe() for _ in range(n)]

        def body() -> None:
            try:
                while chunk := src.read(CHUNK):
                    for _, writer in pipes:
                        writer.write(chunk)
                for _, writer in pipes:
                    writer.flush()
            except BaseException as exc:
                self.fail(exc)
            finally:
                for _, writer in pipes:
                    with contextlib.suppress(Exception):
                        writer.close()
                with contextlib.suppress(Exception):
                    src.close()

        self._start("tee", body)
        return [reader for reader, _ in pipes]

    def checked(self, src: Readable) -> CheckedReader:
        """``src`` whose EOF waits for every stage started so far and raises their error."""
        upstream = list(self._threads)
        return CheckedReader(src, lambda: self._join(upstream))

    # -- finishing ---------------------------------------------------------------------
    def _join(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            thread.join()
        self.raise_error()

    def raise_error(self) -> None:
        with self._lock:
            errors = list(self._errors)
        if not errors:
            return
        root = next((e for e in errors if not _is_knock_on(e)), errors[0])
        if isinstance(root, OffsiteError):
            raise root
        raise OperationFailed(f"{type(root).__name__}: {root}") from root

    def join(self) -> None:
        self._join(list(self._threads))

    def abort(self) -> None:
        """Stop every stage after a consumer failed: close the pipes and wait."""
        for close in self._closers:
            with contextlib.suppress(Exception):
                close()
        for thread in self._threads:
            thread.join()


# -- compression ---------------------------------------------------------------------


def compress(pipeline: Pipeline, src: Readable, algo: str, level: int | None) -> Readable:
    if algo == "none":
        return src
    lvl = DEFAULT_LEVEL[algo] if level is None else level
    if algo == "zstd":
        # Multi-threaded, with 2 MiB jobs: zstd's default job size for level 3 holds
        # ~90 MiB of buffers on two cores, 2 MiB jobs ~30 MiB at the same speed.
        params = zstandard.ZstdCompressionParameters.from_level(
            lvl, threads=-1, job_size=ZSTD_JOB_SIZE, write_checksum=True
        )
        cctx = zstandard.ZstdCompressor(compression_params=params)

        def run_zstd(source: Readable, dst: BinaryIO) -> None:
            cctx.copy_stream(cast(IO[bytes], source), dst, read_size=CHUNK, write_size=CHUNK)

        return pipeline.stage("zstd", run_zstd, src)

    def run_gzip(source: Readable, dst: BinaryIO) -> None:
        with gzip.GzipFile(filename="", fileobj=dst, mode="wb", compresslevel=lvl, mtime=0) as gz:
            while chunk := source.read(CHUNK):
                gz.write(chunk)

    return pipeline.stage("gzip", run_gzip, src)


class CountingWriter:
    """A file object's ``write`` that counts what passes (``on_write`` sees each length);
    the file object it writes into is set by ``into``."""

    def __init__(self, on_write: Callable[[int], None] | None = None) -> None:
        self._inner: IO[bytes] | None = None
        self._on_write = on_write
        self.count = 0

    def into(self, inner: IO[bytes]) -> CountingWriter:
        self._inner = inner
        return self

    def write(self, data: bytes) -> int:
        assert self._inner is not None
        written = self._inner.write(data)
        self.count += len(data)
        if self._on_write is not None and data:
            self._on_write(len(data))
        return written

    def flush(self) -> None:
        if self._inner is not None:
            self._inner.flush()


def produce_compressed(
    pipeline: Pipeline,
    name: str,
    write: Callable[[BinaryIO], None],
    algo: str,
    level: int | None,
    raw: CountingWriter,
) -> BinaryIO:
    """``write``'s bytes compressed in the same stage, as they are written: no pipe, and
    no second thread, between the writer and the compressor (a tar of a folder). ``raw``
    counts the bytes before compression."""

    def run(dst: BinaryIO) -> None:
        if algo == "none":
            write(cast(BinaryIO, raw.into(dst)))
            return
        lvl = DEFAULT_LEVEL[algo] if level is None else level
        sink: IO[bytes]
        if algo == "zstd":
            params = zstandard.ZstdCompressionParameters.from_level(
                lvl, threads=-1, job_size=ZSTD_JOB_SIZE, write_checksum=True
            )
            sink = zstandard.ZstdCompressor(compression_params=params).stream_writer(
                dst, write_size=CHUNK, closefd=False
            )
        else:
            gz = gzip.GzipFile(filename="", fileobj=dst, mode="wb", compresslevel=lvl, mtime=0)
            sink = cast(IO[bytes], gz)
        with sink:
            write(cast(BinaryIO, raw.into(sink)))

    return pipeline.produce(f"{name}-{algo}", run)


class _Decompressed:
    """A decompressing reader whose format errors become one clear OffsiteError."""

    def __init__(self, inner: Readable, algo: str) -> None:
        self._algo = algo
        self._reader: Readable
        if algo == "zstd":
            self._reader = zstandard.ZstdDecompressor().stream_reader(
                cast(IO[bytes], inner), read_size=CHUNK, read_across_frames=True, closefd=False
            )
        else:
            self._reader = gzip.GzipFile(fileobj=cast(IO[bytes], inner), mode="rb")
        self._inner = inner

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._reader.read(size if size > 0 else CHUNK)
        except OffsiteError:
            raise
        except (zstandard.ZstdError, OSError, EOFError) as exc:
            raise OperationFailed(f"corrupt {self._algo} data: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._reader.close()
        self._inner.close()


def decompress(src: Readable, algo: str) -> Readable:
    return src if algo == "none" else _Decompressed(src, algo)
