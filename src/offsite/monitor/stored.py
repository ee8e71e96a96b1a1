"""What a destination holds: its complete sets, newest first, as backups to assess."""

from __future__ import annotations

from offsite.errors import BadInput, DestinationMissing, OffsiteError
from offsite.manifest import set_time
from offsite.monitor.health import Backup, Observation
from offsite.sets import scan
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings
from offsite.trust import TrustConfig, Verifier
from offsite.wal.names import is_wal_name


def observe_storage(
    dest: str, settings: StorageSettings, trust: TrustConfig | None = None
) -> Observation:
    """With a key in ``trust``, only sets that prove they were made with it count: a set
    planted in the destination never makes its backups look fresh."""
    seen = Observation(dest, url=dest)
    try:
        opened = open_storage(dest, settings)
        found = scan(opened)
    except DestinationMissing:
        return seen  # not made yet: no backup there, which the rules judge
    except BadInput:
        raise  # a destination the user wrote wrong: exit 2, not "could not check"
    except (OffsiteError, OSError) as exc:  # OSError: a local folder's own checks
        seen.error = exc.message() if isinstance(exc, OffsiteError) else str(exc)
        return seen
    # a set dated in the future (planted, or a clock gone wrong) never makes backups fresh
    current = found.current()
    if trust is not None and trust.keyed:
        with Verifier(opened, trust) as verifier:
            current = [s for s in current if verifier.refusal(s) is None]
    seen.backups = [Backup(s.id, s.manifest.size, set_time(s.id)) for s in reversed(current)]
    try:
        for obj in opened.list("wal/"):
            system_id = obj.key.split("/")[1] if obj.key.count("/") >= 2 else ""
            name = obj.key.rsplit("/", 1)[-1].split(".zst", 1)[0]
            if system_id.isdigit() and is_wal_name(name):
                newest = seen.wal.get(system_id)
                seen.wal[system_id] = obj.modified if newest is None else max(newest, obj.modified)
    except (OffsiteError, OSError) as exc:
        seen.error = exc.message() if isinstance(exc, OffsiteError) else str(exc)
    return seen
