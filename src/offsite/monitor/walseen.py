"""What the monitor reads of a destination's WAL archives (SPEC §9): freshness counts only
what proves itself.

Per cluster: one listing of ``wal/<system id>/`` (objects offsite did not write, and names
whose own object a push passed over, are named: planted?), the holes in it that are older
than the asynchronous push window, and the newest segment read and authenticated (it
decrypts with the archive's key and its frame names it). That costs one listing and one
GET of a segment (at most ``TRIED`` if the newest do not authenticate) per cluster and
check. Without the means to check (no passphrase, no secret key, an unencrypted archive),
the newest object's age is reported unverified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from offsite.errors import BadInput, OffsiteError, WalMissing
from offsite.storage.base import ObjectInfo, Storage
from offsite.wal.archive import Archive
from offsite.wal.names import is_segment
from offsite.wal.verify import listing

TRIED = 3  # the newest segments read, newest first, until one authenticates
PUSH_WINDOW = timedelta(minutes=10)  # --async pushes ahead, in parallel: a hole may close


@dataclass
class WalSeen:
    """One cluster's archive, as the monitor judges it."""

    times: list[datetime] = field(default_factory=list)  # every WAL object's time
    newest: datetime | None = None  # the newest segment that authenticated
    verified: bool = False  # whether the archive could be checked at all
    problems: list[str] = field(default_factory=list)


def holes(
    names: list[str], times: dict[str, datetime], before: datetime, most: int = 5
) -> list[str]:
    """Segments missing between two archived ones of a timeline (and one log file) where the
    later one was stored before ``before``: archiving skipped them; the first ``most`` (a
    planted name far ahead makes a gap of billions) (pure)."""
    missing: list[str] = []
    segments = sorted(n for n in names if is_segment(n))
    for older, newer in zip(segments, segments[1:]):
        if older[:16] != newer[:16] or times[newer] > before:
            continue
        number, end = int(older[16:], 16) + 1, int(newer[16:], 16)
        while number < end and len(missing) < most:
            missing.append(f"{older[:16]}{number:08X}")
            number += 1
    return missing


def observe_archive(
    storage: Storage,
    system_id: str,
    objects: list[ObjectInfo],
    passphrase: str | None,
    now: datetime,
) -> WalSeen:
    """The archive of ``system_id``, from ``objects`` (its part of the listing of wal/)."""
    seen = WalSeen()
    listed = listing(storage, system_id, objects)
    where = f"wal/{system_id}/"
    seen.problems += listed.problems()
    times = {name: obj.modified for name, obj in listed.files.items()}
    seen.times = [o.modified for objects in listed.objects.values() for o in objects]
    for name in holes(list(times), times, now - PUSH_WINDOW):
        seen.problems.append(f"WAL file {name} is missing from {where}, and later ones are "
                             "there: archiving skipped it")  # fmt: skip
    archive = Archive(storage, system_id, None)
    if archive.key_hash() is None:
        if any(o.key.endswith(".gpg") for o in objects):  # no key needed to see this
            seen.verified = True
            seen.problems.append(f"{where}key.gpg is gone and the archive holds encrypted "
                                 "files: nothing there authenticates (deleted?)")  # fmt: skip
        return seen  # an unencrypted archive: anyone could have written what it holds
    newest = sorted((n for n in times if is_segment(n)), key=lambda n: times[n], reverse=True)
    for name in newest[:TRIED]:
        try:
            archive.fetch(name, passphrase)
        except BadInput:
            return seen  # no passphrase, no secret key here: the age stays unverified
        except WalMissing:
            continue  # gone since the listing (prune)
        except OffsiteError as exc:
            seen.verified = True
            seen.problems.append(f"{where}{name}, among the newest, does not authenticate: "
                                 f"{exc.message()}")  # fmt: skip
            continue
        # the push time sealed inside it, not the store's: the same bytes written again
        # (a replay, a copy) would look fresh by their modification time; a file an older
        # offsite pushed has none, and its age stays unverified
        pushed = archive.pushed
        if pushed is None:
            return seen
        seen.verified = True
        seen.newest = min(times[name], datetime.fromtimestamp(pushed, timezone.utc))
        return seen
    return seen
