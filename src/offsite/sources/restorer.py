"""How an entry goes back: a ``Restorer`` in two phases, so nothing is committed before the
stored bytes' checksum matched (``write`` into a staging place, then ``commit`` or
``discard``), and the restorers of a file and of a folder that most kinds build on.
"""

from __future__ import annotations

import abc
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

from offsite.errors import BadInput, TargetNotEmpty
from offsite.stream import safetar
from offsite.stream.readers import Readable, copy


def make_parents(path: Path) -> list[Path]:
    """Create the missing folders above ``path``; return them, deepest first."""
    created = []
    parent = path.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    return created


def remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


class Restorer(abc.ABC):
    """Two phases, so nothing is committed before the stored bytes' checksum matched."""

    location: str
    overlaid = False  # ``write`` stages a diff's base: ``overlay`` comes after it
    # whether ``write`` applies what it reads as the bytes arrive (statements run in a
    # server): an unencrypted entry's stored bytes are then staged and checked first
    applies_as_it_reads: ClassVar[bool] = False

    def stages_first(self, force: bool) -> bool:
        """Whether the entry must be read, checked and decrypted whole before ``write`` sees
        it: a kind whose ``write`` applies statements as it reads them (a SQL client),
        over a target that holds data (``--force``), where ``discard`` cannot undo them."""
        return False

    @abc.abstractmethod
    def write(self, stream: Readable) -> None:
        """Restore into a staging place next to the target."""

    def overlay(self, stream: Readable | None, companions: dict[str, bytes]) -> None:
        """After ``write`` staged a base entry: a diff of it over what is staged (SPEC §10),
        with its companions (a deleted list, a ref list), decoded; ``stream`` is None for a
        diff that stores no file (a ref list alone). Only kinds that have diffs take one."""
        raise BadInput(f"a diff cannot be restored into {self.location}: its kind has no diffs")

    @abc.abstractmethod
    def commit(self) -> None:
        """Move the staged restore into place."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Remove whatever ``write`` staged."""


class FileRestorer(Restorer):
    """Restores one file: staged beside the target, checked, renamed over it."""

    def __init__(self, target: Path, force: bool) -> None:
        self.target = target
        self.location = str(target)
        if target.is_dir():
            raise BadInput(f"restore target {target} is a folder; name a file")
        if target.exists() and target.stat().st_size > 0 and not force:
            raise TargetNotEmpty(target)
        self._staged: Path | None = None
        self._created: list[Path] = []

    def write(self, stream: Readable) -> None:
        self._created = make_parents(self.target)
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", dir=self.target.parent)
        self._staged = Path(name)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would surprise whoever reads the restore
        with os.fdopen(fd, "wb") as out:
            copy(stream, out.write)
        self.check_staged(self._staged)

    def check_staged(self, path: Path) -> None:
        """Kind-specific check of the staged file before it replaces the target."""

    def commit(self) -> None:
        assert self._staged is not None
        os.replace(self._staged, self.target)
        self._staged = None

    def discard(self) -> None:
        if self._staged is not None:
            with contextlib.suppress(OSError):
                self._staged.unlink()
            self._staged = None
        remove_empty(self._created)


class FolderStagingRestorer(Restorer):
    """A restorer that extracts into a staging folder (``_staged``) first; discarding removes
    it and the parent folders ``write`` created."""

    def __init__(self, target: Path) -> None:
        if target.exists() and not target.is_dir():
            raise BadInput(f"restore target {target} exists and is not a folder")
        self.target = target
        self.location = str(target)
        self._staged: Path | None = None
        self._created: list[Path] = []

    def discard(self) -> None:
        if self._staged is not None:
            with contextlib.suppress(OSError):  # a read-only folder staged: removable
                safetar.open_folders(self._staged)
            shutil.rmtree(self._staged, ignore_errors=True)
            self._staged = None
        remove_empty(self._created)
