"""What a destination holds: its complete sets, newest first, as backups to assess."""

from __future__ import annotations

from offsite.errors import BadInput, DestinationMissing, OffsiteError
from offsite.manifest import set_time
from offsite.monitor.health import Backup, Observation
from offsite.sets import scan
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings


def observe_storage(dest: str, settings: StorageSettings) -> Observation:
    seen = Observation(dest, url=dest)
    try:
        found = scan(open_storage(dest, settings))
    except DestinationMissing:
        return seen  # not made yet: no backup there, which the rules judge
    except BadInput:
        raise  # a destination the user wrote wrong: exit 2, not "could not check"
    except (OffsiteError, OSError) as exc:
        seen.error = exc.message() if isinstance(exc, OffsiteError) else str(exc)
        return seen
    # a set dated in the future (planted, or a clock gone wrong) never makes backups fresh
    current = found.current()
    seen.backups = [Backup(s.id, s.manifest.size, set_time(s.id)) for s in reversed(current)]
    return seen
