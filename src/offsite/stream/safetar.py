"""Extracting a tar that a destination holds, by offsite's own rules (SPEC §7).

The archive is untrusted: whoever can write to a destination can write it. Python's
``tarfile`` filters differ between versions (Debian 12's 3.11.2 has none) and its ``tar``
filter lets a hardlink point at any file outside the target, so extraction is done here,
member by member, the same on every Python offsite supports:

- a member's path is relative, holds no ``..``, no NUL, and never crosses a symlink of
  the same archive; nothing is ever written through a symlink, because symlinks are
  created last, after every other member, as links (whatever they point at);
- a hardlink must point at a regular file extracted earlier by the same archive;
- a file is written to a fresh name (an existing one is unlinked first, never opened),
  so a hardlink planted earlier cannot carry the write elsewhere;
- device nodes and FIFOs are not created, setuid and setgid bits are dropped, each with
  a warning naming the member.

A refused member raises ``UnsafeMember`` (exit 1); the caller extracts into a staging
folder and removes it, so nothing of a refused archive remains.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from offsite.errors import ArchiveUnreadable, OffsiteError, UnsafeMember
from offsite.stream.readers import CHUNK, Readable

Warn = Callable[[str], None]
Parts = tuple[str, ...]


def member_path(name: str) -> Parts:
    """The path components of a member name; ValueError when it is absolute, climbs
    (``..``), holds a NUL or names nothing. ``./a//b`` is ``("a", "b")``; ``.`` is ``()``."""
    if "\x00" in name:
        raise ValueError("its name holds a NUL byte")
    if name.startswith("/"):
        raise ValueError("its path is absolute")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ValueError("its path climbs out of the target (..)")
    return parts


@dataclass
class _State:
    root: Path
    warn: Warn
    files: set[Parts] = field(default_factory=set)  # regular files extracted so far
    links: dict[Parts, tarfile.TarInfo] = field(default_factory=dict)  # made at the end
    dirs: dict[Parts, tarfile.TarInfo] = field(default_factory=dict)  # modes set at the end
    folders: set[Parts] = field(default_factory=set)  # every folder made, members or not
    owner: bool = field(default_factory=lambda: os.geteuid() == 0)
    # a diff extracted over its base: the folders there, their modes and mtimes to put back
    over: dict[Parts, tuple[int, int]] | None = None

    def path(self, parts: Parts) -> Path:
        return self.root.joinpath(*parts)


def shown(info: tarfile.TarInfo | None) -> str:
    """A member's name for a message: at most 200 characters, never unprintable."""
    if info is None:
        return "(the links at the end)"
    return _printable(info.name)


def _printable(name: str) -> str:
    name = name.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return name if len(name) <= 200 else name[:200] + "…"


def _mode(info: tarfile.TarInfo, what: str, warn: Warn) -> int:
    mode = info.mode & 0o7777
    if mode & (stat.S_ISUID | stat.S_ISGID):
        warn(f"dropping the setuid/setgid bit of {what} {shown(info)!r}")
        mode &= ~(stat.S_ISUID | stat.S_ISGID)
    return mode


def _crosses_link(state: _State, parts: Parts) -> Parts | None:
    for i in range(1, len(parts)):
        if parts[:i] in state.links:
            return parts[:i]
    return None


def _make_parents(state: _State, parts: Parts) -> None:
    for i in range(1, len(parts)):
        if parts[:i] in state.folders:
            continue
        folder = state.path(parts[:i])
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            os.mkdir(folder)
            st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"its folder {'/'.join(parts[:i])!r} is not a folder (a file or a "
                             "symlink before it)")  # fmt: skip
        state.folders.add(parts[:i])


def _is_folder(path: Path) -> bool:
    """A real folder (lstat: never a symlink to one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _clear(path: Path) -> None:
    """Make room for a new member at ``path``: an earlier file or link goes (unlinked,
    never written through); an earlier folder stays and refuses the member."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise ValueError("a folder of the same name was extracted before it")
    os.unlink(path)


def _owner(state: _State, path: Path, info: tarfile.TarInfo) -> None:
    """As root, the member's owner, like ``tar -p`` (names first, else the numbers)."""
    if not state.owner:
        return
    import grp
    import pwd

    uid, gid = info.uid, info.gid
    with contextlib.suppress(KeyError, OverflowError, TypeError):
        uid = pwd.getpwnam(info.uname).pw_uid if info.uname else uid
    with contextlib.suppress(KeyError, OverflowError, TypeError):
        gid = grp.getgrnam(info.gname).gr_gid if info.gname else gid
    with contextlib.suppress(OSError, OverflowError):
        os.chown(path, uid, gid, follow_symlinks=False)


def _times(path: Path, info: tarfile.TarInfo) -> None:
    with contextlib.suppress(OSError, OverflowError, ValueError):
        os.utime(path, (info.mtime, info.mtime), follow_symlinks=False)


def _file(state: _State, tar: tarfile.TarFile, info: tarfile.TarInfo, parts: Parts) -> None:
    path = state.path(parts)
    _clear(path)
    data = tar.extractfile(info)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        if data is not None:
            while chunk := data.read(CHUNK):
                out.write(chunk)
        os.fchmod(out.fileno(), _mode(info, "file", state.warn))
    _owner(state, path, info)
    _times(path, info)
    state.files.add(parts)
    state.links.pop(parts, None)


def _hardlink(state: _State, info: tarfile.TarInfo, parts: Parts) -> None:
    try:
        source = member_path(info.linkname)
    except ValueError as exc:
        raise ValueError(f"a hardlink whose target is not allowed: {exc}") from None
    if source not in state.files or _crosses_link(state, source) is not None:
        raise ValueError(
            f"a hardlink to {info.linkname!r}, which this archive did not extract before it"
        )
    if not stat.S_ISREG(os.lstat(state.path(source)).st_mode):
        raise ValueError(f"a hardlink to {info.linkname!r}, which is not a file")
    path = state.path(parts)
    if path == state.path(source):
        return
    _clear(path)
    os.link(state.path(source), path, follow_symlinks=False)
    state.files.add(parts)
    state.links.pop(parts, None)


def _member(state: _State, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
    parts = member_path(info.name)
    if not parts:
        if not info.isdir():
            raise ValueError("it names no path")
        state.dirs[()] = info
        return
    crossed = _crosses_link(state, parts)
    if crossed is not None:
        raise ValueError(f"its path crosses the symlink {'/'.join(crossed)!r}")
    if info.ischr() or info.isblk() or info.isfifo():
        what = "FIFO" if info.isfifo() else "device node"
        state.warn(f"not creating the {what} {shown(info)!r}")
        return
    if info.issparse():  # holes written out as zeros: a few KiB could fill the disk
        raise ValueError("sparse members are not supported (offsite never writes them)")
    if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
        state.warn(f"skipping {shown(info)!r}, a member of an unknown type {info.type!r}")
        return
    _make_parents(state, parts)
    if info.isdir():
        path = state.path(parts)
        if parts in state.links:
            raise ValueError("a symlink of the same name comes before it")
        if parts not in state.folders:
            if not (state.over is not None and _is_folder(path)):  # one its base made
                _clear(path)
                os.mkdir(path, 0o700)
            state.folders.add(parts)
        state.dirs[parts] = info
        state.files.discard(parts)
    elif info.issym():
        if "\x00" in info.linkname:
            raise ValueError("its link target holds a NUL byte")
        if parts in state.folders:
            raise ValueError("a folder of the same name was extracted before it")
        state.links[parts] = info
        state.files.discard(parts)
    elif info.islnk():
        _hardlink(state, info, parts)
    else:
        _file(state, tar, info, parts)


def _finish(state: _State) -> None:
    for parts, info in sorted(state.links.items()):
        path = state.path(parts)
        _clear(path)
        os.symlink(info.linkname, path)
        _owner(state, path, info)
        _times(path, info)
    for parts in sorted(state.dirs, key=len, reverse=True):  # deepest first
        info = state.dirs[parts]
        path = state.path(parts)
        os.chmod(path, _mode(info, "folder", state.warn))
        _owner(state, path, info)
        _times(path, info)
    before = state.over or {}
    for parts in sorted(set(before) - set(state.dirs), key=len, reverse=True):
        # a base's folder the diff did not name gets its mode and mtime back: only where
        # every folder of its path is still a real folder (one the diff replaced by a
        # symlink would carry the change elsewhere)
        if all(_is_folder(state.path(parts[:i])) for i in range(1, len(parts) + 1)):
            mode, mtime = before[parts]
            os.chmod(state.path(parts), mode)
            with contextlib.suppress(OSError):
                os.utime(state.path(parts), ns=(mtime, mtime), follow_symlinks=False)


def extract(
    stream: Readable,
    root: Path,
    entry: str,
    warn: Warn,
    over: dict[Parts, tuple[int, int]] | None = None,
) -> None:
    """Extract the tar ``stream`` into the existing, empty folder ``root``; with ``over``
    (what ``open_folders`` returned), into a folder a base entry was extracted into (a
    diff: its folders are reused, its files and links replaced, never written through;
    the folders the diff does not name get their modes and mtimes back).

    Raises UnsafeMember for a member the rules refuse, ArchiveUnreadable for a stream that
    is not a tar; the decoding pipeline's own errors pass through."""
    state = _State(root, lambda message: warn(f"entry {entry!r}: {message}"), over=over)
    info: tarfile.TarInfo | None = None
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
            for info in tar:
                _member(state, tar, info)
            info = None
            _finish(state)
    except OffsiteError:
        raise
    except tarfile.TarError as exc:
        raise ArchiveUnreadable(entry, exc) from None
    except (UnicodeError, OverflowError, EOFError, RecursionError) as exc:
        raise ArchiveUnreadable(entry, f"{type(exc).__name__}: {exc}") from None
    except ValueError as exc:
        raise UnsafeMember(entry, shown(info), exc) from None
    except OSError as exc:
        raise UnsafeMember(entry, shown(info), exc.strerror or exc) from None


def open_folders(root: Path) -> dict[Parts, tuple[int, int]]:
    """Every real folder under ``root`` (``root`` too) made writable by its owner, so a
    diff can go into a folder its base made read-only (or a staging folder be removed);
    their modes and mtimes before, to give back (``extract(over=...)``)."""
    found: dict[Parts, tuple[int, int]] = {}
    stack: list[Parts] = [()]
    while stack:
        parts = stack.pop()
        path = root.joinpath(*parts)
        st = os.lstat(path)
        found[parts] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns)
        if st.st_mode & 0o700 != 0o700:  # before listing it: a folder may be unreadable too
            os.chmod(path, stat.S_IMODE(st.st_mode) | 0o700)
        with os.scandir(path) as listing:
            stack += [(*parts, e.name) for e in listing if e.is_dir(follow_symlinks=False)]
    return found


def remove(root: Path, paths: list[str], entry: str, folders: dict[Parts, tuple[int, int]]) -> None:
    """Remove a diff's deleted paths (SPEC §10) from ``root``, where its base was extracted,
    and from ``folders`` (what ``open_folders`` found) the folders they took with them.

    The list is untrusted like member names: each path must be relative, without ``..``
    or NUL, and every folder above it a real folder, never a symlink (UnsafeMember, exit
    1, otherwise); a folder goes whole, a path that is not there is passed over."""
    for name in paths:
        try:
            parts = member_path(name)
            if not parts:
                raise ValueError("it names the target itself")
            for i in range(1, len(parts)):
                above = root.joinpath(*parts[:i])
                if os.path.lexists(above) and not _is_folder(above):
                    raise ValueError(f"its folder {'/'.join(parts[:i])!r} is not a folder")
            path = root.joinpath(*parts)
            if _is_folder(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
            for gone in [f for f in folders if f[: len(parts)] == parts]:
                del folders[gone]
        except ValueError as exc:
            raise UnsafeMember(entry, f"(deleted) {_printable(name)}", exc) from None
        except OSError as exc:
            why = exc.strerror or exc
            raise UnsafeMember(entry, f"(deleted) {_printable(name)}", why) from None
