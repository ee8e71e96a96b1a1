"""A diff and its base (SPEC §10), read from a destination: the base a diff names, once it
is there and the one named, and the entry a diff's entry restores from.

A diff is a restore point only with its base: present, a full set of format 3, its
``manifest.json`` the bytes whose SHA-256 the diff's (authenticated) manifest names, and
holding a full entry of each name the diff stores as a diff or unchanged. Anything else
is a broken chain (``stored.chain_problem`` says why): never the latest, not counted by
retention, an exit 1 for ``verify``.
"""

from __future__ import annotations

from offsite.errors import BaseBroken, OffsiteError
from offsite.sets.manifest import Entry
from offsite.sets.stored import Check, StoredSet, chain_problem, mismatch, select
from offsite.storage.base import Storage


def base_of(storage: Storage, diff: StoredSet, check: Check | None = None) -> StoredSet:
    """The base of ``diff``, read from ``storage``, once it is the one named; BaseBroken
    (exit 1) when it is missing or another, saying which artifact to download when the
    diff came from a ``gh run download`` folder alone."""
    ref = diff.manifest.base
    assert ref is not None
    try:
        base = select(storage, ref.id, check)
    except OffsiteError as exc:
        if diff.prefix == "":  # a set `gh run download -n` fetched alone
            raise BaseBroken(diff.id, ref.id, chain_problem(diff, [])) from None
        raise BaseBroken(diff.id, ref.id, f"cannot be used: {exc.message()}") from None
    why = mismatch(diff, base)
    if why is not None:
        raise BaseBroken(diff.id, ref.id, why)
    return base


def underlying(base: StoredSet, entry: Entry) -> Entry:
    """The base's full entry a diff's ``entry`` builds on (``mismatch`` proved it is there)."""
    own = base.manifest.entry(entry.name)
    assert own is not None
    return own
