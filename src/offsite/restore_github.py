"""``restore DEST --into github://OWNER/REPO``: a repository rebuilt in GitHub from a set
(SPEC §11), and ``github://OWNER`` for every repository of the set.

The repository's entries (git, its LFS objects, its wiki, its metadata) are restored into a
scratch folder first, each checked as any restore checks it (SPEC §7); only then is
anything written to GitHub, in SPEC §11's order: the repository (made private where it is
missing), refs (``refs/pull/*`` left out), LFS objects, the wiki, labels, milestones,
issues and pull requests, comments, releases, settings. Before the first write the run
checks that the token may do what the set needs, and names what it lacks.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from offsite.errors import BadInput, EntryNotFound, OffsiteError, RebuildFailed, RebuildRefused
from offsite.github import env as github_env
from offsite.github.held import Held
from offsite.github.rebuild import Items
from offsite.github.rebuild_report import Options, Report
from offsite.github.rebuild_settings import Settings
from offsite.github.writer import Writer
from offsite.rebuild_git import drop_pull_refs, git_fail, push, remote_refs
from offsite.restore import RestoreRequest, restore_set
from offsite.sets.stored import StoredSet, select
from offsite.sets.trust import Verifier
from offsite.sources.git_remote import git_env, run_git
from offsite.storage import open_storage
from offsite.stream.progress import Progress

HOURLY = 500  # content-creating requests GitHub takes an hour (its secondary limits)
_TARGET = re.compile(r"^github://([A-Za-z0-9-]{1,39})(?:/([A-Za-z0-9._-]{1,100}?))?(?:\.git)?/?$")


@dataclass
class Rebuilt:
    """One repository's restore into GitHub."""

    repository: str
    entry: str
    created: bool = False
    dry_run: bool = False
    refs: int = 0
    report: Report = field(default_factory=Report)
    requests: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)  # a dry run: what it would make
    estimate: tuple[int, float] = (0, 0.0)  # a dry run: writes, seconds at the pace
    checks: list[str] = field(default_factory=list)  # what the permission check says
    error: tuple[int, str] | None = None  # of a set of several, this one failed: why

    def as_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "error": self.error[1] if self.error else None,
            "entry": self.entry,
            "created": self.created,
            "dry_run": self.dry_run,
            "refs": self.refs,
            "requests": self.requests,
            "would_make": self.planned,
            "checks": self.checks,
            "estimate": {"writes": self.estimate[0], "seconds": self.estimate[1]},
            **self.report.as_json(),
        }


def is_github_target(into: str) -> bool:
    return into.startswith("github://")


def run(request: RestoreRequest, options: Options, progress: Progress) -> list[Rebuilt]:
    m = _TARGET.match(request.into)
    if not m:
        raise BadInput(f"{request.into}: use github://OWNER/REPO or github://OWNER")
    owner, name = m.group(1), m.group(2)
    storage = open_storage(request.source, request.storage)
    with Verifier(storage, request.trust) as verifier:
        stored = select(storage, request.set_id, verifier.check, request.entry)
        repos = [
            e.name
            for e in stored.manifest.entries
            if e.kind == "git"
            and not _is_wiki(e.source)  # (a wiki comes with its repository)
            and (request.entry is None or e.name == request.entry)
        ]
        if not repos:
            raise EntryNotFound(
                stored.id,
                request.entry or "(a repository)",
                ", ".join(e.name for e in stored.manifest.entries),
            )
        if name is not None and len(repos) > 1:
            raise BadInput(
                f"set {stored.id} holds {len(repos)} repositories: name one with "
                "--entry, or restore them all into github://OWNER"
            )
        done = []
        for entry in repos:
            full = f"{owner}/{name or entry}"
            try:
                with tempfile.TemporaryDirectory(prefix="offsite-github-") as scratch:
                    local = _restore_locally(
                        request, storage, verifier, stored, entry, Path(scratch), progress
                    )
                    done.append(_rebuild(full, entry, stored.id, local, options))
            except OffsiteError as exc:  # one repository of many: the others go on
                if len(repos) == 1:
                    raise
                done.append(Rebuilt(full, entry, dry_run=options.dry_run,
                                    error=(exc.exit_code, exc.message())))  # fmt: skip
        return done


def _restore_locally(
    request: RestoreRequest,
    storage: Any,
    verifier: Verifier,
    stored: StoredSet,
    entry: str,
    scratch: Path,
    progress: Progress,
) -> dict[str, Path]:
    """The repository's entries restored into ``scratch``, each checked: role → place."""
    set_id = stored.id
    sources = {e.name: e.source for e in stored.manifest.entries}
    names = {n for n in sources if not n.endswith("-wiki") or _is_wiki(sources[n])}
    places = {"git": scratch / f"{entry}.git"}
    roles = {"lfs": f"{entry}-lfs", "wiki": f"{entry}-wiki", "metadata": f"{entry}-metadata"}
    for role, name in roles.items():
        if name in names:
            places[role] = places["git"] if role == "lfs" else scratch / name
    for role, place in places.items():
        one = replace(request, set_id=set_id, entry=roles.get(role, entry), into=str(place))
        restore_set(one, storage, verifier, progress, None)
    return places


def _rebuild(
    full: str, entry: str, set_id: str, local: dict[str, Path], options: Options
) -> Rebuilt:
    try:
        return _rebuild_checked(full, entry, set_id, local, options)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:  # an odd item of the set
        odd = f"{type(exc).__name__}: {str(exc)[:80]}"
        raise RebuildFailed(
            full, f"the set's metadata holds an item unlike GitHub's ({odd})"
        ) from None


def _rebuild_checked(
    full: str, entry: str, set_id: str, local: dict[str, Path], options: Options
) -> Rebuilt:
    from offsite.github.repos import client

    def fail(reason: str) -> Exception:
        return RebuildFailed(full, reason)

    done = Rebuilt(full, entry, dry_run=options.dry_run)
    try:
        held = Held.read(local["metadata"]) if "metadata" in local else None
    except (OSError, ValueError) as exc:
        raise RebuildFailed(full, f"its metadata: {exc}") from None
    writer = Writer(client(writes=True).requester, full, options.pace, fail)
    mirror = local["git"]
    drop_pull_refs(mirror)
    ours = run_git(
        ["for-each-ref", "--format=%(objectname) %(refname)"], {}, git_fail(full), mirror
    ).split()
    done.refs = len(ours) // 2
    items = Items(writer, held, set_id, mirror, done.report, options) if held else None
    try:  # nothing written yet: a token refused here is bad input (exit 2)
        repo = writer.get("")
        if repo is None:
            _check_creatable(writer, full, done)
            empty = True
        else:
            _check_permissions(full, repo, held is not None)
            empty = _check_ours(full, mirror, items, options.force)
    except RebuildFailed as exc:
        if writer.status in (401, 403):
            raise RebuildRefused(full, exc.args[1]) from None
        raise
    if options.dry_run:
        return _plan(done, items, repo is None, options)
    # the workflows a push or a pull request starts (a deploy on a push to main) stay off
    # while a repository this restore makes is filled: from its making (or, where a run
    # stopped before its first push, from the next run) to the end of a run that ends
    off = repo is not None and not empty and _actions_off(writer)
    quiet = empty or (off and not options.force)
    if off and options.force:  # (whose doing it was cannot be told: they stay as found)
        done.checks.append(f"Actions are off in {full}: --force leaves them as it found them; "
                           "switch them on when the repository is ready")  # fmt: skip
    if repo is None:
        _create(writer, full, held)
        done.created = True
    if quiet:
        _switch_actions(writer, False, done.report)
    try:
        _fill(full, mirror, local, held, items, writer, done, options)
    except RebuildFailed as exc:
        if quiet:  # (a second run switches them on at its end)
            raise RebuildFailed(full, f"{exc.args[1]}; its Actions stay off until then") from None
        raise
    if quiet:
        _switch_actions(writer, True, done.report)
    done.requests = dict(writer.sent)
    return done


def _fill(
    full: str, mirror: Path, local: dict[str, Path], held: Held | None, items: Items | None,
    writer: Writer, done: Rebuilt, options: Options,
) -> None:  # fmt: skip
    push(full, mirror, local.get("wiki"), "lfs" in local, options.force, done.report)
    if held is None or items is None:
        return
    items.labels()
    items.milestones()
    items.issues()
    items.releases()
    branches = set(run_git(["for-each-ref", "--format=%(refname:short)", "refs/heads"], {},
                           git_fail(full), mirror).split())  # fmt: skip
    Settings(writer, held, done.report, options, branches).run()


def _actions_off(writer: Writer) -> bool:
    """Whether the repository's Actions are off (an earlier run of this restore switched
    them off and stopped before the end); False where the token may not read it."""
    try:
        found = writer.get("actions/permissions")
    except RebuildFailed:
        return False
    return isinstance(found, dict) and found.get("enabled") is False


def _switch_actions(writer: Writer, on: bool, report: Report) -> None:
    """Actions off while the repository is filled, on at the end. Where GitHub refuses (an
    organisation's policy decides, a server without Actions) it is said: switched off, a
    line in the report; left off, a failure (exit 3)."""
    try:
        writer.write("PUT", "actions/permissions", {"enabled": on})
    except RebuildFailed as exc:
        if writer.status not in (403, 404, 409, 422):
            raise
        if on:
            report.failed.append(f"Actions could not be switched on again: {exc.args[1]}")
        else:
            report.lost.append("Actions could not be switched off while the repository was "
                               "filled (workflows a push starts may have run): "
                               + exc.args[1])  # fmt: skip
        return
    if on:
        report.made["actions switched on again"] += 1


def _is_wiki(source: str) -> bool:
    return source.rstrip("/").endswith(".wiki.git")


def _check_creatable(writer: Writer, full: str, done: Rebuilt) -> None:
    """A repository to make: its owner is there; what the token needs is said (GitHub
    shows no token's permissions before it writes: the making is the first write, and a
    refusal stops the run there, before anything else is written)."""
    owner = full.split("/")[0]
    if writer.get(f"/users/{owner}") is None:
        raise RebuildRefused(full, f"GitHub knows no user or organisation {owner}")
    needs = f"Administration: write on {owner} (an Actions GITHUB_TOKEN cannot)"
    done.checks.append(f"{full} does not exist: it is made private; the token needs {needs}")


def _check_permissions(full: str, repo: dict[str, Any], metadata: bool) -> None:
    """What the token may do there, before the first write: push for git, admin for the
    settings and protection a set with metadata brings."""
    granted = repo.get("permissions")
    if not isinstance(granted, dict):
        return  # (GitHub shows permissions to a token that has any)
    lacking = []
    if not granted.get("push"):
        lacking.append("push (Contents: write) for refs, and Issues and Pull requests: write")
    if metadata and not granted.get("admin"):
        lacking.append(
            "admin (Administration: write) for settings, protection, rulesets, "
            "environments, variables and webhooks"
        )
    if lacking:
        raise RebuildRefused(full, "the token lacks " + "; ".join(lacking))


def _check_ours(full: str, mirror: Path, items: Items | None, force: bool) -> bool:
    """A repository holding what no earlier run of this restore made is refused: issues
    (their numbers are taken) always, other refs unless ``--force``. The target's
    ``refs/pull/*`` are GitHub's own, made for the pull requests an earlier run made.
    True where the target holds no refs yet."""
    remote = f"{github_env.server_url()}/{full}.git"
    with git_env(remote, mirror) as env:
        theirs = remote_refs(full, mirror, remote, env)
    lines = run_git(["for-each-ref", "--format=%(objectname) %(refname)"], {},
                    git_fail(full), mirror).splitlines()  # fmt: skip
    mine = {line.split()[1]: line.split()[0] for line in lines if line.strip()}
    foreign = sorted(name for name, sha in theirs.items()
                     if not name.startswith("refs/pull/") and mine.get(name) != sha)  # fmt: skip
    issues = items.survey() if items is not None else []
    if issues and not force:  # their numbers are taken: none of the set's can be kept
        shown = ", ".join(issues[:5]) + (" …" if len(issues) > 5 else "")
        why = f"it holds issues or milestones this set's restore did not make ({shown}), so"
        raise RebuildRefused(full, why + " numbers cannot be kept: restore into a new "
                             "repository, or pass --force to add the set's with the numbers "
                             "GitHub gives (the report maps them)")  # fmt: skip
    if foreign and not force:
        shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise RebuildRefused(full, f"it holds refs this set's restore did not make ({shown}): "
                             "restore into a new repository, or pass --force to add what is "
                             "missing (nothing there is deleted or moved)")  # fmt: skip
    return not any(not name.startswith("refs/pull/") for name in theirs)


def _create(writer: Writer, full: str, held: Held | None) -> None:
    owner, name = full.split("/")
    repo = held.repository if held else {}
    body = {
        "name": name,
        "private": True,
        "description": repo.get("description") or "",
        "homepage": repo.get("homepage") or "",
        "auto_init": False,
    }
    user = writer.get(f"/users/{owner}") or {}
    path = f"/orgs/{owner}/repos" if user.get("type") == "Organization" else "/user/repos"
    if path == "/user/repos":  # GitHub makes it for the token's own user, whoever is named
        try:
            me = writer.get("/user") or {}
        except RebuildFailed:
            me = {}  # (an App's token has no user: it cannot make a user's repository)
        if str(me.get("login", "")).lower() != owner.lower():
            why = f"{owner} is a user: only a token of {owner} can make a repository there"
            raise RebuildRefused(full, why + " (create it by hand, then run again)")
    try:
        writer.write("POST", path, body)
    except OffsiteError as exc:
        if writer.status not in (401, 403, 404):
            raise
        raise RebuildRefused(
            full,
            f"could not create it ({exc.message()}): the token needs "
            f"Administration: write on {owner} (an Actions GITHUB_TOKEN "
            "cannot create repositories: use a GitHub App's token or a "
            "fine-grained token)",
        ) from None


def _plan(done: Rebuilt, items: Items | None, create: bool, options: Options) -> Rebuilt:
    counts = items.counts() if items is not None else {}
    held = items.held if items is not None else None
    done.planned = {"repository": int(create), "git refs": done.refs, **counts}
    writes = int(create) + sum(counts.values())
    if held is not None:
        writes += sum(1 for i in held.issues.values() if i.get("state") == "closed")
        writes += sum(1 for i in held.issues.values() if i.get("locked"))
        writes += len(held.items("branch-protection")) + len(held.items("environments")) + 1
    # at the pace, and within GitHub's cap on content creation (about 500 an hour)
    creations = int(create) + sum(counts.values())
    done.estimate = (writes, max(writes * options.pace, creations / HOURLY * 3600))
    return done
