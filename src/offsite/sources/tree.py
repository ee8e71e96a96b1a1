"""A folder's index and what a diff of it holds (SPEC §10): pure decisions over ``lstat``.

The index lists, per path (relative, no ``./``; ``.`` for the folder itself), its type
(``f`` file, ``d`` folder, ``l`` symlink), size, mtime in nanoseconds, mode, numeric uid and
gid, SHA-256 for a file and target for a symlink: one JSON object per line, in the order
a tar of the folder holds them. A diff compares the tree with its base's index: a path
whose type, size, mtime, mode and owner are all equal is unchanged unread; a file whose
content, mode and owner are equal is unchanged whatever its mtime; a file whose mtime is
not older than the base run's start is always read; anything else is a member of the
diff (a folder whose mtime moved is a header alone, so it comes back with its mtime).
A path gone, or of another type, is on the deleted list (a folder once, not its contents).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from offsite.stream.readers import HashingReader

TYPES = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l"}
ROOT = "."
MAX_PATHS = 10_000_000  # paths in an index read back: more is refused, not held
MAX_DELETED = 256 << 20  # bytes of a deleted list: a diff run with more is full

Keep = Callable[[str, bool], bool]  # whether a relative path (a folder?) is archived


@dataclass(frozen=True)
class Item:
    path: str
    type: str  # f | d | l
    size: int
    mtime_ns: int
    mode: int
    uid: int
    gid: int
    sha256: str = ""  # files
    target: str = ""  # symlinks

    def same_owner_and_mode(self, other: Item) -> bool:
        return (self.mode, self.uid, self.gid) == (other.mode, other.uid, other.gid)

    def same_metadata(self, other: Item) -> bool:
        return self.same_owner_and_mode(other) and (
            self.type,
            self.size,
            self.mtime_ns,
            self.target,
        ) == (other.type, other.size, other.mtime_ns, other.target)


def item(rel: str, path: Path, st: os.stat_result) -> Item | None:
    """The index item of a path, None for a type a tar does not keep (sockets, devices are
    kept by tar as headers; offsite's restore creates neither, the index leaves them out)."""
    kind = TYPES.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    return Item(
        path=rel,
        type=kind,
        size=st.st_size if kind == "f" else 0,
        mtime_ns=st.st_mtime_ns,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        target=os.readlink(path) if kind == "l" else "",
    )


def walk(top: Path, keep: Keep) -> Iterator[tuple[str, Path, os.stat_result]]:
    """``(relative path, path, lstat)`` of ``top`` and, a folder, everything under it, in
    the order ``tarfile.add`` archives them (each folder's names sorted)."""
    st = os.lstat(top)
    if not stat.S_ISDIR(st.st_mode):
        yield top.name, top, st
        return
    yield ROOT, top, st
    stack = [_children("", top, keep)]
    while stack:
        found = next(stack[-1], None)
        if found is None:
            stack.pop()
            continue
        yield found
        rel, path, child = found
        if stat.S_ISDIR(child.st_mode):  # its contents right after it, as tarfile recurses
            stack.append(_children(rel + "/", path, keep))


def _children(prefix: str, folder: Path, keep: Keep) -> Iterator[tuple[str, Path, os.stat_result]]:
    for name in sorted(os.listdir(folder)):
        rel, path = prefix + name, folder / name
        st = os.lstat(path)
        if keep(rel, stat.S_ISDIR(st.st_mode)):
            yield rel, path, st


def hash_file(path: Path) -> str:
    with open(path, "rb") as fh:
        hashed = HashingReader(fh)
        hashed.drain()
    return hashed.hexdigest()


def dumps(items: list[Item]) -> bytes:
    return b"".join(
        json.dumps([i.path, i.type, i.size, i.mtime_ns, i.mode, i.uid, i.gid, i.sha256,
                    i.target], ensure_ascii=False, separators=(",", ":")).encode(
                        "utf-8", "surrogateescape") + b"\n"
        for i in items
    )  # fmt: skip


def loads(data: bytes) -> dict[str, Item]:
    """An index read back (from a set that proved itself); ValueError when it is not one."""
    found: dict[str, Item] = {}
    lines = data.splitlines()
    if len(lines) > MAX_PATHS:
        raise ValueError(f"more than {MAX_PATHS} paths")
    text = (b"[" + b",".join(lines) + b"]").decode("utf-8", "surrogateescape")
    rows = json.loads(text)  # one parse, not one a line (names not UTF-8 kept as written)
    if len(rows) != len(lines):
        raise ValueError("a line holds more than one item")
    for n, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 9):
            raise ValueError(f"line {n + 1} is not an index item")
        path, kind, size, mtime, mode, uid, gid, digest, target = row
        if not (isinstance(path, str) and kind in ("f", "d", "l")
                and all(type(x) is int for x in (size, mtime, mode, uid, gid))
                and isinstance(digest, str) and isinstance(target, str)):  # fmt: skip
            raise ValueError(f"line {n + 1} is not an index item")
        found[path] = Item(path, kind, size, mtime, mode, uid, gid, digest, target)
    return found


@dataclass
class Plan:
    """What a diff of a tree against its base's index holds."""

    members: list[str] = field(default_factory=list)  # relative paths to (re)write
    deleted: list[str] = field(default_factory=list)  # gone or of another type, topmost
    changed_bytes: int = 0  # the members' file bytes
    files: int = 0  # the whole tree's files and their bytes, as a full entry's stats
    bytes: int = 0

    @property
    def empty(self) -> bool:
        return not self.members and not self.deleted


def plan(
    top: Path, keep: Keep, base: dict[str, Item], started_ns: int, digest: Callable[[Path], str]
) -> Plan:
    """Compare the tree at ``top`` with ``base``, an index its run started at
    ``started_ns``; ``digest`` reads a file's SHA-256 (only where metadata cannot decide)."""
    result = Plan()
    seen: dict[str, int] = {}  # path -> its place in the walk
    retyped: set[str] = set()
    links: dict[tuple[int, int], list[str]] = {}  # a file's inode -> its paths
    for rel, path, st in walk(top, keep):
        now = item(rel, path, st)
        if now is None:
            continue
        seen[rel] = len(seen)
        if now.type == "f" and st.st_nlink > 1:
            links.setdefault((st.st_dev, st.st_ino), []).append(rel)
        if now.type == "f":
            result.files += 1
            result.bytes += now.size
        old = base.get(rel)
        if old is not None and old.type != now.type:
            retyped.add(rel)
        elif old is not None and _unchanged(now, old, path, started_ns, digest):
            continue
        result.members.append(rel)
        if now.type == "f":
            result.changed_bytes += now.size
    # a member's hardlinks go with it, so the diff's tar links them again
    chosen = set(result.members)
    for paths in links.values():
        if chosen.intersection(paths):
            chosen.update(paths)
    result.members = sorted(chosen, key=seen.__getitem__)
    gone = sorted((set(base) - set(seen)) | retyped)
    topmost: set[str] = set()
    for rel in gone:  # sorted: a folder comes before its contents
        if rel == ROOT or any(p in topmost for p in _parents(rel)):
            continue
        topmost.add(rel)
        result.deleted.append(rel)
    return result


def _unchanged(
    now: Item, old: Item, path: Path, started_ns: int, digest: Callable[[Path], str]
) -> bool:
    """Whether ``now`` is what the base holds (of the same type): its metadata all equal (a
    file's mtime also older than the base run's start), or a file's content, mode and
    owner (a fresh checkout: every mtime new)."""
    if now.same_metadata(old) and (now.type != "f" or now.mtime_ns < started_ns):
        return True
    if now.type != "f" or not now.same_owner_and_mode(old):
        return False
    return now.size == old.size and digest(path) == old.sha256


def _parents(rel: str) -> Iterator[str]:
    parts = rel.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])
