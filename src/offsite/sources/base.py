"""What every source kind provides, in two halves kept apart on purpose.

``Kind``: what a stored entry of a kind is (its format suffix, how it restores, how a drill
inspects it, the standard-tools hint). Class methods only: restore, verify and drill never
build a source, they look the kind up by the manifest's ``kind`` (``registry.kind_class``).

``Source(Kind)``: one thing a backup run dumps. ``registry.from_url(url, name, options)``
builds it once, complete, from a frozen ``SourceOptions``; after its ``__init__`` it cannot
change (setting an attribute raises), so the order in which a run reads sources never
matters. A run's work lives in what the source returns, never on it: ``prepare`` returns a
``Prepared`` (the entries it makes, what it left in the work folder, or why there is nothing
to back up) and each ``Part`` of it yields a ``Dump`` (the raw stream, and the stats it
counted on the way, read once the stream ended).
"""

from __future__ import annotations

import abc
import contextlib
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TypeVar

from offsite.errors import BadInput, SourceFailed
from offsite.names import check_name, safe_name
from offsite.sources.restorer import Restorer
from offsite.stream.pipeline import SUFFIX, Pipeline
from offsite.stream.readers import Readable
from offsite.urls import local_path, redact, scheme_of

T = TypeVar("T")


@dataclass(frozen=True)
class RestoreOptions:
    force: bool = False  # restore over a non-empty target
    jobs: int = 0  # parallel workers, where the engine has them (pg_restore --jobs); 0: its default
    no_owner: bool = False  # PostgreSQL: do not set object owners (pg_restore --no-owner)
    # point-in-time recovery of a base backup (SPEC §8): the target, none for the latest
    to_time: datetime | None = None
    to_lsn: str | None = None
    archive: str | None = None  # the destination its WAL is fetched from
    passphrase_file: str | None = None  # what restore_command reads the passphrase from
    program: str | None = None  # the offsite restore_command runs (default: this one)
    timeline: int | None = None  # the timeline to recover into (None: 'latest')
    archive_key: str | None = None  # key.gpg's SHA-256 as the restore saw it ("": none)
    size: int = 0  # the entry's decoded bytes (what a restorer that stages it needs)


@dataclass(frozen=True)
class SourceOptions:
    """How a run builds its sources; each kind reads the fields that concern it."""

    excludes: tuple[str, ...] = ()  # files: glob patterns never archived
    mirror_cache: Path | None = None  # repositories: mirrors kept here between runs
    lfs: bool = False  # repositories: their LFS objects too, as a second entry NAME-lfs
    physical: bool = False  # PostgreSQL: a base backup of the cluster, not a dump
    incremental: bool = False  # files, repositories: an index or ref list kept, diffs made
    wal_included: bool = False  # ... with the WAL it needs inside (no archive to restore)
    optional: bool = False  # a repository that may not exist (a wiki): skipped, not failed
    platform: str | None = None  # container images: this platform of an index (os/arch[/v])


@dataclass(frozen=True)
class Baseline:
    """The full set an incremental run diffs against (SPEC §10): its start, and what each
    of its entries left to diff against (``read(name, role)``: a companion, decoded)."""

    set_id: str
    started_ns: int  # the base run's start: a file modified since is always read
    raw_sizes: Mapping[str, int]  # per entry name with an index or refs: its decoded bytes
    read: Callable[[str, str], bytes]
    full_when_over: float = 0.5  # a diff larger than this share of its base: a full run

    def load(self, name: str, parse: Callable[[bytes], T], role: str = "index") -> T | None:
        """What entry ``name`` of the base left to diff against, parsed (``parse`` raises
        ValueError on what it does not take); None where the base has no such entry (a
        new source). One that cannot be read or parsed makes the run full, not failed."""
        if name not in self.raw_sizes:
            return None
        try:
            return parse(self.read(name, role))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FullNeeded(f"the {role} of {name} in set {self.set_id} is not readable "
                             f"({exc})") from None  # fmt: skip


class FullNeeded(Exception):
    """An entry cannot be a diff (over ``--full-when-over``, or what its base left to diff
    against cannot be read): the run is full, saying why."""


@dataclass(frozen=True)
class RunContext:
    """What a backup run gives every source it dumps."""

    workdir: Path  # the run's work folder (gone when the run ends)
    skip: tuple[Path, ...] = ()  # absolute paths never archived: a destination inside a folder
    baseline: Baseline | None = None  # an incremental run's base


def no_stats() -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Dump:
    """One entry's raw bytes in one run, and what making them counted: a ``reader`` of
    them, or a ``writer`` that writes them into a file object it is given (a tar: then
    the backup compresses them as they are written, in the same stage, no pipe between)."""

    reader: Readable | None = None
    stats: Callable[[], dict[str, Any]] = no_stats  # call once the bytes have all passed
    writer: Callable[[BinaryIO], None] | None = None
    delta: str = ""  # an incremental source's: full | diff | unchanged (no bytes at all)
    # companion objects by role (index, deleted, refs), decoded: called once bytes passed
    companions: Callable[[], dict[str, bytes]] = dict


@dataclass(frozen=True)
class Part:
    """One entry a source makes in a run (a repository with ``lfs`` makes two)."""

    name: str
    kind: type[Kind]
    dump: Callable[[Pipeline], AbstractContextManager[Dump]]


@dataclass(frozen=True)
class Prepared:
    """What ``Source.prepare`` did for one run."""

    parts: tuple[Part, ...] = ()
    absent: str | None = None  # why there is nothing to back up (an optional source)
    made: tuple[Path, ...] = ()  # files and folders in the work folder, gone on ``release``

    def release(self) -> None:
        for path in self.made:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()


@dataclass(frozen=True)
class Inspection:
    """What a drill found in a restored target."""

    rows: dict[str, int] | None = None  # rows per table, counted in the target
    problems: list[str] = field(default_factory=list)  # integrity check findings
    checks: list[str] = field(default_factory=list)  # what was checked, for the report
    recovery_seconds: float = 0.0  # part of the restore done while checking (WAL replay)


class Kind(abc.ABC):
    """A stored entry's kind: its format and how it restores (class methods only)."""

    kind: ClassVar[str]
    suffix: ClassVar[str]  # the format suffix, e.g. ".sqlite"
    # what a whole-set restore calls this entry's target in its folder (NAME + this)
    target_suffix: ClassVar[str | None] = None  # None: the format suffix
    # the URL schemes a restore target of this kind may have ("file": a plain path)
    target_schemes: ClassVar[tuple[str, ...]] = ("file",)
    target_hint: ClassVar[str] = ""  # what to do instead, when a target is of another kind
    diffs: ClassVar[bool] = False  # whether an incremental source of the kind makes diffs

    @classmethod
    def local_target(cls, url: str) -> str:
        """The filesystem path a URL of this kind names (for dumping or restoring)."""
        return local_path(url)

    @classmethod
    @abc.abstractmethod
    def restorer(cls, target: str, options: RestoreOptions) -> Restorer:
        """A restorer into ``target``; refuses a non-empty target without ``force``."""

    @classmethod
    def restorer_for(
        cls, target: str, options: RestoreOptions, stats: Mapping[str, Any]
    ) -> Restorer:
        """``restorer``, for a kind that needs what the backup recorded of the entry."""
        return cls.restorer(target, options)

    @classmethod
    def restore_packages(cls, stats: Mapping[str, Any]) -> list[str]:
        """The Debian packages this machine lacks to restore (and drill) an entry of this
        kind that recorded ``stats`` (``offsite requirements --restore``)."""
        return []

    @classmethod
    def check_target(cls, target: str) -> None:
        """Refuse, before anything is created, a target of another kind: a database URL
        for a file entry must not become a relative path (nor show its password)."""
        scheme = scheme_of(target)
        if scheme in cls.target_schemes or (
            scheme.startswith("git+") and "git+" in cls.target_schemes
        ):
            return
        kinds = ", ".join("a path" if s == "file" else f"{s}://" for s in cls.target_schemes)
        hint = f"; {cls.target_hint}" if cls.target_hint else ""
        raise BadInput(f"a {cls.kind} entry restores into {kinds}, not {redact(target)}{hint}")

    @classmethod
    def inspect(cls, target: str, stats: dict[str, Any]) -> Inspection:
        """Check a restored ``target`` for a drill: count rows, run the engine's check."""
        return Inspection()

    @classmethod
    def inspect_entry(cls, target: str, source: str, stats: dict[str, Any]) -> Inspection:
        """``inspect``, for a kind that needs the entry's source (its redacted URL) too."""
        return cls.inspect(target, stats)

    @classmethod
    @abc.abstractmethod
    def hint_tail(cls, name: str) -> str:
        """The end of the standard-tools restore command: '> file' or '| tool ...'."""

    @classmethod
    def restore_hint(cls, name: str, file: str, compression: str, encrypted: bool) -> str:
        steps: list[str] = []
        quoted = shlex.quote(file)
        prefix = ""
        if encrypted:  # the set's data key first (SPEC §2), then the entry with it
            prefix = "gpg --decrypt key.gpg > set.key && "
            steps.append(f"gpg --batch --passphrase-file set.key --decrypt {quoted}")
        tool = {"zstd": "zstd -d", "gzip": "gunzip"}.get(compression)
        if tool:
            steps.append(tool if steps else f"{tool} -c {quoted}")
        if not steps:
            steps.append(f"cat {quoted}")
        return prefix + " | ".join(steps) + " " + cls.hint_tail(name)

    @classmethod
    def file_name(cls, name: str, compression: str, encrypted: bool) -> str:
        return f"{name}{cls.suffix}{SUFFIX[compression]}{'.gpg' if encrypted else ''}"


class Source(Kind):
    """One thing a backup run dumps; immutable once its ``__init__`` returned."""

    def __init__(self, name: str, url: str, options: SourceOptions | None = None) -> None:
        self.name = check_name(name)
        self.url = url
        self.options = options or SourceOptions()
        if type(self).__init__ is Source.__init__:  # no subclass ``__init__`` to wait for
            object.__setattr__(self, "_sealed", True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Seal each instance once the ``__init__`` of its own class has returned."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        def sealing_init(self: Source, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            if type(self).__init__ is sealing_init:  # the most derived ``__init__`` is done
                object.__setattr__(self, "_sealed", True)

        sealing_init.__doc__ = init.__doc__
        cls.__init__ = sealing_init  # type: ignore[method-assign]

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_sealed"):
            raise AttributeError(f"a source is immutable: cannot set {name!r} on {self.name!r}")
        object.__setattr__(self, name, value)

    @classmethod
    def default_name(cls, url: str) -> str:
        """The entry name when the user gave none: the file or folder name, made safe."""
        stem = Path(cls.local_target(url).rstrip("/")).name
        return safe_name(stem, cls.kind)

    @property
    def display(self) -> str:
        """The source as it may appear in a manifest or a log line: no password."""
        return redact(self.url)

    def entry_names(self) -> tuple[str, ...]:
        """The names of the entries a run of this source makes."""
        return (self.name,)

    def missing_packages(self) -> list[str]:
        """The Debian packages this machine lacks to dump the source (``offsite
        requirements``, which the actions install on Ubuntu runners)."""
        return []

    def check(self) -> None:
        """Fail with BadInput before anything is written if the source is unusable."""

    def prepare(self, context: RunContext) -> Prepared:
        """The slow, network-bound part of a dump that can run beside other sources'
        (a repository's fetch), before the dumps go one by one through the pipeline.
        By default nothing: the one entry is dumped when its turn comes."""
        return Prepared(parts=(Part(self.name, type(self), lambda p: self.dump(p, context)),))

    @abc.abstractmethod
    def dump(self, pipeline: Pipeline, context: RunContext) -> AbstractContextManager[Dump]:
        """The raw dump. Its EOF raises if the dump failed, was empty or fails its self-check."""

    @contextlib.contextmanager
    def dump_prepared(self, pipeline: Pipeline, context: RunContext) -> Iterator[Dump]:
        """``dump`` for a source whose ``prepare`` does the work (a repository, GitHub's
        metadata): prepared now, its first entry, what it made released after."""
        prepared = self.prepare(context)
        try:
            if not prepared.parts:
                raise SourceFailed(self.name, f"nothing to back up: {prepared.absent}")
            with prepared.parts[0].dump(pipeline) as dump:
                yield dump
        finally:
            prepared.release()


def stage_folder(workdir: Path, name: str) -> Path:
    """A new, empty folder in the work folder for what ``prepare`` gathers."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))


@contextlib.contextmanager
def tar_dump(
    pipeline: Pipeline,
    name: str,
    write_tar: Callable[[BinaryIO], None],
    stats: Callable[[], dict[str, Any]] = no_stats,
    delta: str = "",
    companions: Callable[[], dict[str, bytes]] = dict,
) -> Iterator[Dump]:
    """A tar that ``write_tar`` writes, as a ``Dump``: the backup runs it on a pipeline
    thread, writing into the compressor."""
    yield Dump(stats=stats, writer=write_tar, delta=delta, companions=companions)
