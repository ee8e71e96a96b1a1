"""A bundle's whole-pack check, and a repository's diff (SPEC §10): its ref list, the
bundle of what the base's refs do not reach, and setting a restored repository's refs
to the list exactly.

The ref list is ``git show-ref --head`` (``<sha> <ref>`` lines) and a last line ``ref:
<target>`` naming what HEAD points at. A diff's bundle holds every ref and excludes the
commits of the base's refs that the repository still has (``^<sha>``), so it carries only
new objects; a diff whose refs only moved onto old commits or went away is a ref list
alone, and one whose list is the base's is ``unchanged``. The list a restore reads is
untrusted: git itself refuses a ref name it would not make, and an object the repository
does not hold.
"""

from __future__ import annotations

import re
from pathlib import Path

from offsite.errors import OffsiteError
from offsite.sources.git_remote import git_binary, run_git
from offsite.sources.process import ErrorFactory, run_tool

SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
INCOMING = "refs/offsite-incoming/"  # where a diff's bundle is fetched before refs are set


def ref_list(repo: Path, fail: ErrorFactory) -> bytes:
    """The repository's ref list, as a diff and a restore read it."""
    listed = run_git(["show-ref", "--head"], {"LC_ALL": "C"}, fail, repo)
    try:
        head = run_git(["symbolic-ref", "-q", "HEAD"], {"LC_ALL": "C"}, fail, repo).strip()
    except OffsiteError:  # a detached HEAD: the list names no target
        head = ""
    return (listed + (f"ref: {head}\n" if head else "")).encode()


def parse(data: bytes) -> tuple[dict[str, str], str | None, str | None]:
    """``{ref: sha}`` (names under ``refs/`` only), HEAD's target and HEAD's commit (a
    detached HEAD has a commit and no target); ValueError for a list that is not one."""
    refs: dict[str, str] = {}
    head = head_sha = None
    for line in data.decode("utf-8", "strict").splitlines():
        if line.startswith("ref: refs/") and not any(c.isspace() for c in line[5:]):
            head = line[5:]
            continue
        sha, _, name = line.partition(" ")
        if (
            not SHA.fullmatch(sha)
            or any(c.isspace() for c in name)
            or not (name == "HEAD" or name.startswith("refs/"))
        ):
            raise ValueError(f"not a ref line: {line[:80]!r}")
        if name == "HEAD":
            head_sha = sha
        else:
            refs[name] = sha
    return refs, head, head_sha


def _run(repo: Path, args: list[str], data: bytes, fail: ErrorFactory) -> str:
    return run_tool([git_binary(), "-C", str(repo), *args], {"LC_ALL": "C"}, fail, input=data)


def known(repo: Path, shas: set[str], fail: ErrorFactory) -> list[str]:
    """The objects of ``shas`` the repository holds (a force-push may have dropped some)."""
    if not shas:
        return []
    out = _run(repo, ["cat-file", "--batch-check=%(objectname)"], "\n".join(sorted(shas)).encode()
               + b"\n", fail)  # fmt: skip
    return [line for line in out.splitlines() if SHA.fullmatch(line)]


def new_objects(repo: Path, refs: list[str], base: list[str], fail: ErrorFactory) -> bool:
    """Whether the refs reach an object the base's do not (a commit, or a new annotated
    tag of an old one)."""
    lines = "\n".join([*refs, *(f"^{sha}" for sha in base)]) + "\n"
    out = _run(repo, ["rev-list", "--objects", "--stdin"], lines.encode(), fail)
    return bool(out.strip())


def bundle(repo: Path, path: Path, refs: list[str], base: list[str], fail: ErrorFactory) -> None:
    """A bundle of every ref, without what ``base`` reaches (its prerequisites)."""
    lines = "\n".join([*refs, *(f"^{sha}" for sha in base)]) + "\n"
    _run(repo, ["bundle", "create", "--quiet", str(path), "--stdin"], lines.encode(), fail)


def apply(repo: Path, fetched: Path | None, data: bytes, fail: ErrorFactory) -> None:
    """Over a repository restored from the base: fetch the diff's bundle (its
    prerequisites are checked by git), then set every ref to the list, deleting the refs
    it does not name, and HEAD to its target."""
    try:
        listed, head, head_sha = parse(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(f"the diff's ref list is not one: {exc}") from None
    if fetched is not None:  # (the whole pack is indexed: HEAD's commit too)
        run_git(["fetch", "--quiet", "--no-tags", str(fetched), f"+refs/*:{INCOMING}*"],
                {"LC_ALL": "C"}, fail, repo)  # fmt: skip
    present = run_git(["for-each-ref", "--format=%(refname)"], {"LC_ALL": "C"}, fail, repo)
    # two transactions: one could not delete refs/heads/a and create refs/heads/a/b
    deletes = [f"delete {ref}" for ref in present.splitlines()]
    updates = [f"create {ref} {sha}" for ref, sha in sorted(listed.items())]
    for commands in (deletes, updates):
        if commands:
            _run(repo, ["update-ref", "--stdin"], ("\n".join(commands) + "\n").encode(), fail)
    if head is not None:
        run_git(["symbolic-ref", "HEAD", head], {"LC_ALL": "C"}, fail, repo)
    elif head_sha is not None and known(repo, {head_sha}, fail):  # a detached HEAD
        run_git(["update-ref", "--no-deref", "HEAD", head_sha], {"LC_ALL": "C"}, fail, repo)


def pack_problem(bundle: Path) -> str | None:
    """Read the whole bundle: its header, then the pack, whose trailer is the SHA-1 (or
    SHA-256) of every byte before it. ``git bundle verify`` reads only the header and the
    prerequisites: a corrupt or truncated pack passes it."""
    import hashlib

    with open(bundle, "rb") as fh:
        first = fh.readline()
        if first not in (b"# v2 git bundle\n", b"# v3 git bundle\n"):
            return "not a git bundle"
        algorithm = "sha1"
        while True:
            line = fh.readline()
            if not line:
                return "the bundle ends in its header"
            if line == b"\n":
                break
            if line.startswith(b"@object-format=sha256"):
                algorithm = "sha256"
        size = 32 if algorithm == "sha256" else 20
        digest = hashlib.new(algorithm)
        if fh.read(4) != b"PACK":
            return "the bundle holds no pack"
        digest.update(b"PACK")
        tail = b""
        while chunk := fh.read(1 << 20):
            data = tail + chunk
            digest.update(data[:-size])
            tail = data[-size:]
        if len(tail) < size or digest.digest() != tail:
            return "the pack's checksum does not match its content"
    return None
