"""Applying a retention plan to a destination: complete sets by policy, and incomplete
sets (no manifest) once they are more than a day old.

Only valid sets dated up to an hour ahead are counted or removed (SPEC §7): a planted set
dated in the future cannot make ``--keep-within`` or ``--keep-last`` push real sets out,
and a set whose manifest offsite refuses is reported and left alone. A diff counts
like a full set and keeps its base; a diff whose base is gone or another is removed and
reported (SPEC §10).

A removed set loses its manifest first, so at no moment does a half-deleted set look
complete; a delete that fails (e.g. an object under lock) is reported, not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from offsite.errors import BadInput, BaseBroken, CheckFailed, OffsiteError
from offsite.names import set_time
from offsite.sets.manifest import MANIFEST_NAME
from offsite.sets.retention import Plan, Policy, keep_bases, plan
from offsite.sets.stored import Check, Scan, chain_problem, scan
from offsite.storage import Storage
from offsite.storage.base import HasUploads
from offsite.wal.verify import prune_archives

INCOMPLETE_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class PruneResult:
    plan: Plan
    incomplete: list[str]  # prefixes of incomplete sets old enough to remove
    dry_run: bool
    failures: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)  # interrupted uploads aborted
    # left alone, never counted: sets dated in the future, sets whose manifest is refused,
    # and (with a key) sets that do not prove they were made with it; "id: why" each
    untouched: list[str] = field(default_factory=list)
    wal: list[str] = field(default_factory=list)  # WAL files no kept base backup needs
    broken: list[str] = field(default_factory=list)  # diffs without their base: removed


def _delete_set(storage: Storage, prefix: str) -> None:
    storage.delete(prefix + MANIFEST_NAME)
    for obj in list(storage.list(prefix)):
        storage.delete(obj.key)


def run_prune(
    storage: Storage,
    policy: Policy,
    dry_run: bool,
    now: datetime | None = None,
    check: Check | None = None,
    found: Scan | None = None,
) -> PruneResult:
    """``check`` (with a key configured) raises for a set that does not prove it was made
    with the key: such a set is neither counted nor removed. ``found``: the destination's
    sets, where the caller listed them already."""
    now = now or datetime.now(timezone.utc)
    found = found or scan(storage)
    if any(s.prefix == "" for s in found.sets):
        raise BadInput(f"{storage.url} is a single downloaded set, not a destination to prune")
    counted, untouched = [], []
    for stored in found.sets:
        if stored.future(now):
            untouched.append(f"{stored.id}: dated in the future")
            continue
        try:
            if check is not None and not check(stored, False):
                untouched.append(f"{stored.id}: only an --allow-… flag lets it in")
                continue
        except CheckFailed as exc:
            untouched.append(f"{stored.id}: {exc.message()}")
            continue
        counted.append(stored)
    untouched += [f"{i.id}: {i.reason}" for i in found.invalid]
    # a diff whose base is gone or another is no restore point: removed, and said (SPEC §10)
    broken = {}
    for stored in counted:
        why = chain_problem(stored, found.sets, check)
        if why is not None and stored.manifest.base is not None:
            broken[stored.id] = BaseBroken(stored.id, stored.manifest.base.id, why).message()
    points = [s for s in counted if s.id not in broken]
    by_id = {s.id: s for s in counted}
    decided = plan([(s.id, set_time(s.id)) for s in points], policy)
    bases = {s.id: s.manifest.base.id for s in points if s.manifest.base is not None}
    decided = keep_bases(decided, bases)
    stale = [i.prefix for i in found.incomplete if now - i.newest > INCOMPLETE_GRACE]
    store = storage if isinstance(storage, HasUploads) else None
    uploads = (
        []
        if store is None
        else [u for u in store.incomplete_uploads() if now - u[2] > INCOMPLETE_GRACE]
    )
    result = PruneResult(
        decided, stale, dry_run, uploads=[key for key, _, _ in uploads], untouched=untouched,
        broken=list(broken.values()),
    )  # fmt: skip
    removed = {d.set_id for d in decided.remove} | set(broken)
    kept = [s for s in found.sets if s.id not in removed]  # uncounted sets keep theirs too
    trusted = [s for s in counted if s.id not in removed]
    if dry_run:
        result.wal.extend(prune_archives(storage, kept, trusted, dry_run=True))
        return result
    for prefix in [by_id[i].prefix for i in sorted(removed)] + stale:
        try:
            _delete_set(storage, prefix)
        except OffsiteError as exc:  # e.g. an object still under Object Lock
            result.failures.append(f"{prefix.rstrip('/')}: {exc.message()}")
    for key, upload_id, _ in uploads:
        assert store is not None  # only a store with uploads has any
        try:
            store.abort_upload(key, upload_id)
        except OffsiteError as exc:
            result.failures.append(f"interrupted upload of {key}: {exc.message()}")
    try:
        result.wal.extend(prune_archives(storage, kept, trusted, dry_run=False))
    except OffsiteError as exc:
        result.failures.append(f"WAL archive: {exc.message()}")
    return result
