"""The git side of a restore into GitHub (SPEC §11): a repository's refs pushed by name,
only those the target lacks (``refs/pull/*`` left out: GitHub's own), then its LFS
objects, then its wiki; nothing the target holds is deleted or moved."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from offsite.errors import OffsiteError, RebuildFailed
from offsite.github import env as github_env
from offsite.github.rebuild_report import Report
from offsite.sources.git_remote import git_env, run_git, wiki_remote


def git_fail(full: str) -> Any:
    return lambda reason: RebuildFailed(full, f"git: {reason}")


def drop_pull_refs(mirror: Path) -> None:
    """GitHub refuses pushes to ``refs/pull/*``: they stay out of the restored copy."""
    listed = run_git(
        ["for-each-ref", "--format=%(refname)", "refs/pull/"], {}, git_fail(""), mirror
    ).split()
    for ref in listed:
        run_git(["update-ref", "-d", ref], {}, git_fail(""), mirror)


def push(
    full: str, mirror: Path, wiki: Path | None, lfs: bool, force: bool, report: Report
) -> None:
    """Every ref of the restored repository the target lacks (an earlier run's are there
    already); nothing the target holds is deleted or moved. Then its LFS objects, and the
    wiki the same way."""
    remote = f"{github_env.server_url()}/{full}.git"
    push_refs(full, mirror, remote, force)
    if lfs:
        if shutil.which("git-lfs"):
            with git_env(remote, mirror) as env:
                run_git(["lfs", "push", "--all", remote], env, git_fail(full), mirror)
        else:
            report.failed.append("LFS objects: git-lfs is not installed here; install it "
                                 "and run again")  # fmt: skip
    report.made["git refs"] += 1
    if wiki is None:
        return
    try:  # GitHub's first page, made so that the wiki can be pushed, gives way to the set's
        push_refs(full, wiki, wiki_remote(remote), force, overwrite=not force)
        report.made["wiki"] += 1
    except OffsiteError:  # GitHub makes a wiki's repository with its first page only
        report.failed.append("the wiki: GitHub makes a wiki's repository with its first "
                             "page: create one on GitHub, then run again")  # fmt: skip


def push_refs(full: str, local: Path, remote: str, force: bool, overwrite: bool = False) -> None:
    """Push the refs of ``local`` that ``remote`` lacks, by name (never a deletion, never
    one that moves a ref the remote has: with ``--force`` those are the target's own);
    ``overwrite``: every ref, moved where the remote's differs (a wiki's first page)."""
    with git_env(remote, local) as env:
        theirs = remote_refs(full, local, remote, env)
        refs = run_git(["for-each-ref", "--format=%(objectname) %(refname)"], {},
                       git_fail(full), local).split("\n")  # fmt: skip
        mine = {r.split()[1]: r.split()[0] for r in refs if r.strip()}
        wanted = [
            n for n, sha in mine.items() if n not in theirs or (overwrite and theirs[n] != sha)
        ]
        plus = "+" if overwrite else ""
        for start in range(0, len(wanted), 200):  # (a command line of bounded length)
            batch = [f"{plus}{ref}:{ref}" for ref in wanted[start : start + 200]]
            run_git(["push", "--quiet", "--", remote, *batch], env, git_fail(full), local)


def remote_refs(full: str, local: Path, remote: str, env: dict[str, str]) -> dict[str, str]:
    """The remote's refs, name → object (peeled tags and HEAD left out)."""
    listed = run_git(["ls-remote", "--", remote], env, git_fail(full), local).split()
    return {listed[i + 1]: listed[i] for i in range(0, len(listed) - 1, 2)
            if listed[i + 1] != "HEAD" and not listed[i + 1].endswith("^{}")}  # fmt: skip
