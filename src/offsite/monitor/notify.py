"""Who hears what, and when: which targets to alert on, from the last state seen.

``change`` (the default) alerts when a target turns unhealthy (or cannot be checked)
and once when it recovers, never twice for the same state; ``failure`` alerts on every
unhealthy check; ``always`` reports every check. The last state lives in a small JSON
file the workflow keeps (actions/cache), so the decision survives between runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from offsite.errors import BadInput
from offsite.monitor.health import HEALTHY, Health

MODES = ("change", "failure", "always")


def to_notify(previous: dict[str, str], current: list[Health], mode: str) -> list[Health]:
    """The targets worth a message now. A target never seen before counts as healthy."""
    if mode not in MODES:
        raise BadInput(f"--notify-on is one of {', '.join(MODES)}, not {mode!r}")
    if mode == "always":
        return list(current)
    if mode == "failure":
        return [h for h in current if h.status != HEALTHY]
    return [h for h in current if h.status != previous.get(h.target, HEALTHY)]


def load_state(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BadInput(f"monitor state file {path} is unreadable: {exc}") from None
    states = data.get("states") if isinstance(data, dict) else None
    if not isinstance(states, dict):
        raise BadInput(f"monitor state file {path} has no states: delete it to start afresh")
    return {str(k): str(v) for k, v in states.items()}


def save_state(path: Path, current: list[Health], previous: dict[str, str]) -> None:
    """Keep targets not checked this time: several monitors may share one file."""
    states = {**previous, **{h.target: h.status for h in current}}
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.write_text(json.dumps({"format": "offsite-monitor-state/1", "states": states}, indent=2))
    os.replace(tmp, path)
