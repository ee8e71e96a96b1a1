"""One ``offsite backup`` run: every source once, through the pipeline, to every destination.

Per source: ``prepare`` (on a pool: a repository's fetch), then per entry it makes:
dump → count → compress → encrypt → hash → (tee) → storage.put.
The manifest goes last, to every destination; a failure anywhere before it removes
what this run wrote, so a destination never holds a set that looks complete and isn't.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from offsite import __version__, baseline
from offsite.baseline import Incremental
from offsite.crypto.auth import SIGNATURE, sign
from offsite.crypto.keys import KEY_FILE, EncryptionConfig
from offsite.crypto.streaming import Encryptor
from offsite.errors import BadInput, OffsiteError, OperationFailed, SourceFailed
from offsite.github import env as github_env
from offsite.github import gha
from offsite.sets.manifest import (
    FORMAT,
    FORMAT_SET_KEY,
    MANIFEST_NAME,
    Companion,
    Entry,
    Manifest,
    Origin,
    iso,
)
from offsite.sets.reserve import allocate_id, remove_partial
from offsite.sets.stored import StoredSet
from offsite.sets.trust import with_auth
from offsite.sources import Prepared, RunContext, Source
from offsite.sources.base import Baseline, FullNeeded, Part
from offsite.storage import Storage, open_storage
from offsite.storage.fanout import put_everywhere, put_one
from offsite.storage.local import LocalStorage
from offsite.storage.settings import StorageSettings
from offsite.stream.pipeline import (
    COMPRESSIONS,
    SUFFIX,
    CountingWriter,
    Pipeline,
    compress,
    produce_compressed,
)
from offsite.stream.progress import Progress
from offsite.stream.readers import CheckedReader, CountingReader, HashingReader, Readable
from offsite.urls import local_path
from offsite.wal.archive import archive_facts
from offsite.wal.names import BASE_KIND


@dataclass(frozen=True)
class BackupConfig:
    sources: tuple[Source, ...]
    destinations: tuple[str, ...]
    encryption: EncryptionConfig
    compression: str = "zstd"
    level: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    storage: StorageSettings = field(default_factory=StorageSettings)
    shard: tuple[int, int] | None = None  # (I, N): the I-th of N jobs of one plan
    jobs: int = 4  # sources prepared at once (repositories fetched in parallel)
    sign_key: str | None = None  # sign manifest.json with this key (manifest.json.sig)
    # folders whose set ids this set must not take too: the job's GitHub Artifacts staging,
    # where a set written elsewhere in the same second would otherwise be copied later
    id_space: tuple[str, ...] = ()
    incremental: Incremental = field(default_factory=Incremental)  # how a base is chosen
    artifacts: str | None = None  # the destination that is GitHub Artifacts' staging folder


@dataclass(frozen=True)
class EntryResult:
    entry: Entry
    seconds: float


@dataclass(frozen=True)
class BackupResult:
    manifest: Manifest
    destinations: tuple[str, ...]
    entries: tuple[EntryResult, ...]
    skipped: tuple[str, ...] = ()  # "name: why" of optional sources with nothing there
    full_because: str = ""  # a run with incremental sources that is full: why

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.entries)


def origin_from_env(env: dict[str, str] | None = None) -> Origin | None:
    """Where the run happened, when it ran in GitHub Actions."""
    env = dict(os.environ) if env is None else env
    repo, run_id = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    if not repo or not run_id:
        return None
    server = github_env.server_url(env)
    return Origin(
        repository=repo,
        workflow=env.get("GITHUB_WORKFLOW_REF") or env.get("GITHUB_WORKFLOW", ""),
        run_id=run_id,
        run_url=f"{server}/{repo}/actions/runs/{run_id}",
        sha=env.get("GITHUB_SHA", ""),
    )


def _validate(config: BackupConfig) -> None:
    if not config.sources:
        raise BadInput("nothing to back up: name at least one SOURCE or --exec NAME=COMMAND")
    if not config.destinations:
        raise BadInput("no destination: give --to DEST")
    if config.compression not in COMPRESSIONS:
        raise BadInput(
            f"unknown compression {config.compression!r} (known: {', '.join(COMPRESSIONS)})"
        )
    if config.level is not None:
        low, high = (1, 22) if config.compression == "zstd" else (1, 9)
        if not low <= config.level <= high:
            raise BadInput(f"--level for {config.compression} goes from {low} to {high}")
    seen: set[str] = set()
    for source in config.sources:
        for name in source.entry_names():
            if name in seen:
                raise BadInput(f"two entries are named {name!r}: name them with --name NAME=SOURCE")
            seen.add(name)
        source.check()


def _dump_entry(
    part: Part,
    display: str,
    set_id: str,
    storages: list[Storage],
    encryptor: Encryptor,
    config: BackupConfig,
    progress: Progress,
) -> EntryResult:
    kind = part.kind
    file = kind.file_name(part.name, config.compression, encryptor.encrypted)
    pipeline = Pipeline()
    companions: list[Companion] = []
    try:
        with progress.task(part.name) as meter, part.dump(pipeline) as dump:
            if dump.reader is None and dump.writer is None:  # unchanged, or a ref list alone
                stored = tuple(_companion(part, role, data, set_id, storages, encryptor, config)
                               for role, data in sorted(dump.companions().items()))  # fmt: skip
                entry = Entry(part.name, kind.kind, display, "", 0, "", 0, config.compression,
                              encryptor.manifest_encryption, dump.stats(), delta=dump.delta,
                              companions=stored)  # fmt: skip
                return EntryResult(entry, meter.seconds)
            counted: CountingReader | CountingWriter

            def not_empty() -> None:
                if counted.count == 0:
                    raise SourceFailed(part.name, "the dump is empty")

            stream: Readable
            if dump.writer is not None:  # written straight into the compressor
                writer = dump.writer

                def write(dst: BinaryIO) -> None:
                    writer(dst)
                    not_empty()

                counted = CountingWriter(meter.add_read)
                # the compressed pipe itself goes on, so gpg can take it as its stdin
                stream = produce_compressed(pipeline, part.name, write, config.compression,
                                            config.level, counted)  # fmt: skip
            else:
                assert dump.reader is not None
                counted = CountingReader(dump.reader, meter.add_read)
                stream = CheckedReader(counted, not_empty)
                stream = compress(pipeline, stream, config.compression, config.level)
            stream = encryptor.stage(pipeline, stream)
            hashed = HashingReader(pipeline.checked(stream), meter.add_written)
            put_everywhere(pipeline, storages, f"{set_id}/{file}", hashed)
            pipeline.join()
            stats = dump.stats()
            for role, data in sorted(dump.companions().items()):
                companions.append(_companion(part, role, data, set_id, storages, encryptor,
                                             config))  # fmt: skip
        if kind.kind == BASE_KIND and isinstance(stats.get("system_id"), int):
            stats = {**stats, **archive_facts(storages, str(stats["system_id"]), config.encryption)}
    except BaseException:
        # after the source's own cleanup stopped its process: a stage still reading its
        # output then sees the end, and the join below cannot wait on it for ever
        pipeline.abort()
        raise
    entry = Entry(
        name=part.name,
        kind=kind.kind,
        source=display,
        file=file,
        size=hashed.count,
        sha256=hashed.hexdigest(),
        raw_size=counted.count,
        compression=config.compression,
        encryption=encryptor.manifest_encryption,
        stats=stats,
        restore_hint=kind.restore_hint(part.name, file, config.compression, encryptor.encrypted),
        delta=dump.delta,
        companions=tuple(companions),
    )
    return EntryResult(entry, meter.seconds)


def _companion(
    part: Part,
    role: str,
    data: bytes,
    set_id: str,
    storages: list[Storage],
    encryptor: Encryptor,
    config: BackupConfig,
) -> Companion:
    """An entry's index or deleted list, stored beside it compressed and encrypted alike."""
    file = f"{part.name}.{role}{SUFFIX[config.compression]}{'.gpg' if encryptor.encrypted else ''}"
    pipeline = Pipeline()
    try:
        stream = compress(pipeline, io.BytesIO(data), config.compression, config.level)
        hashed = HashingReader(pipeline.checked(encryptor.stage(pipeline, stream)))
        put_everywhere(pipeline, storages, f"{set_id}/{file}", hashed)
        pipeline.join()
    except BaseException:
        pipeline.abort()
        raise
    if config.incremental.cache and role != "deleted":  # what a later diff reads
        config.incremental.cache.stage(set_id, part.name, role, data)
    return Companion(role, file, hashed.count, hashed.hexdigest(),
                     hashlib.sha256(data).hexdigest())  # fmt: skip


def _prepared(
    sources: tuple[Source, ...], context: RunContext, jobs: int
) -> Iterator[tuple[Source, Prepared]]:
    """Each source, in order, with what its ``prepare`` (a repository's fetch and bundle) made:
    ``jobs`` run at once, at most ``2 * jobs`` ahead of the dump, so the work folder never
    holds more than that many prepared bundles. One failing fails the run after the others
    finished, naming every one that failed; nothing more is dumped after a failure."""
    ahead = threading.Semaphore(2 * max(1, jobs))
    stop = threading.Event()

    def task(source: Source) -> Prepared | None:
        ahead.acquire()
        return None if stop.is_set() else source.prepare(context)

    failed: list[OffsiteError] = []
    pool = concurrent.futures.ThreadPoolExecutor(max(1, jobs))
    futures = [pool.submit(task, s) for s in sources]
    try:
        for source, future in zip(sources, futures):
            exc = future.exception()
            if isinstance(exc, OffsiteError):
                failed.append(exc)
            elif exc is not None:
                raise exc
            prepared = future.result() if exc is None else None
            if prepared is not None:
                try:
                    if not failed:
                        yield source, prepared
                finally:
                    prepared.release()
            ahead.release()
    finally:
        stop.set()
        for _ in sources:
            ahead.release()  # let every waiting task see the stop
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:  # what was prepared after a stop or a failure goes too
            if not future.cancelled() and future.exception() is None:
                done = future.result()
                if done is not None:
                    done.release()
    if len(failed) == 1:
        raise failed[0]
    if failed:
        reasons = "; ".join(sorted(e.message() for e in failed))
        raise OperationFailed(f"{len(failed)} of {len(sources)} sources failed: {reasons}")


def run_backup(config: BackupConfig, progress: Progress | None = None) -> BackupResult:
    """One run; with an incremental source, a diff against the base ``baseline`` finds, or
    a full run saying why (also when a diff turns out too large, as it is found)."""
    progress = progress or Progress(enabled=False)
    _validate(config)
    storages = [open_storage(url, config.storage) for url in config.destinations]
    if not any(s.diffs and s.options.incremental for s in config.sources):
        return _run(config, storages, progress, None)
    with contextlib.ExitStack() as stack:
        holders, why = baseline.holders(config.destinations, storages, config.artifacts,
                                        config.incremental.base_from, config.storage,
                                        config.incremental.retention_days)  # fmt: skip
        try:
            base = baseline.choose(holders, stack, config.encryption, config.incremental,
                                   config.sign_key) if not why else (None, None, why)  # fmt: skip
        except OperationFailed as exc:  # the base's destination unreadable: a full run
            base = (None, None, f"the base cannot be read: {exc.message()}")
        if base[0] is not None:
            try:
                return _run(config, storages, progress, base)
            except FullNeeded as exc:
                gha.warn(f"{exc}: the run is full")
                return _run(config, storages, progress, (None, None, str(exc)))
        return _run(config, storages, progress, base)


def _run(
    config: BackupConfig,
    storages: list[Storage],
    progress: Progress,
    base: tuple[Baseline | None, StoredSet | None, str] | None,
) -> BackupResult:
    """The run itself: ``base`` is None for a run without incremental sources (formats 1
    and 2, as ever), else what it diffs against (None, and why, for a full run)."""
    # never archive a local destination that sits inside a folder being backed up
    skip = tuple(s.root.resolve() for s in storages if isinstance(s, LocalStorage))
    with Encryptor(config.encryption) as encryptor:
        started = datetime.now(timezone.utc)
        set_id = allocate_id([*storages, *_spaces(config)], started, config.shard)
        results: list[EntryResult] = []
        skipped: list[str] = []
        # the passphrase's stretch (~0.2 s of gpg) runs beside the dumps, not before them
        wrapping = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="offsite-key")
        try:
            wrapped = wrapping.submit(encryptor.wrapped_key) if encryptor.encrypted else None
            with tempfile.TemporaryDirectory(prefix="offsite-work-") as workdir:
                context = RunContext(Path(workdir), skip, base[0] if base else None)
                for source, prepared in _prepared(config.sources, context, config.jobs):
                    if prepared.absent:
                        skipped.append(f"{source.name}: {prepared.absent}")
                    for part in prepared.parts:
                        result = _dump_entry(
                            part, source.display, set_id, storages, encryptor, config, progress
                        )
                        results.append(result)
            if wrapped is not None:  # key.gpg: the data key, wrapped, before the manifest
                for storage in storages:
                    put_one(storage, f"{set_id}/{KEY_FILE}", io.BytesIO(wrapped.result()))
            manifest = Manifest(
                id=set_id,
                created_at=iso(started),
                finished_at=iso(datetime.now(timezone.utc)),
                entries=tuple(r.entry for r in results),
                labels=dict(config.labels),
                origin=origin_from_env(),
                tool_version=__version__,
                format=FORMAT_SET_KEY if encryptor.encrypted else FORMAT,
            )
            if base is not None or any(r.entry.delta for r in results):
                # incremental sources, per-item metadata: format 3, each entry its delta
                manifest = baseline.delta_manifest(manifest, base[1] if base else None)
            if encryptor.encrypted:
                manifest = with_auth(manifest, encryptor.data_key)
            text = manifest.to_json().encode()
            if config.sign_key:
                signature = sign(text, config.sign_key, config.encryption.passphrase)
                for storage in storages:
                    put_one(storage, f"{set_id}/{SIGNATURE}", io.BytesIO(signature))
            for storage in storages:  # last: the manifest is what makes the set complete
                put_one(storage, f"{set_id}/{MANIFEST_NAME}", io.BytesIO(text))
            if config.incremental.cache:
                config.incremental.cache.commit(set_id, text, manifest.base is None)
        except BaseException:
            remove_partial(storages, set_id)
            if config.incremental.cache:
                config.incremental.cache.discard(set_id)
            raise
        finally:
            wrapping.shutdown(wait=True)
    why = base[2] if base is not None else ""
    return BackupResult(manifest, config.destinations, tuple(results), tuple(skipped), why)


def _spaces(config: BackupConfig) -> list[Storage]:
    """The id spaces a set id is reserved in too, those that can take a reservation: a
    staging folder that cannot be written is no reason to fail a backup elsewhere."""
    usable = []
    for url in config.id_space:
        try:
            Path(local_path(url)).expanduser().mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        usable.append(open_storage(url, config.storage))
    return usable
