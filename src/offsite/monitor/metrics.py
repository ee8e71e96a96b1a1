"""What the monitor (and a backup or a drill, of its own run) tells Prometheus (SPEC §9):
the text exposition format, for node_exporter's textfile collector (``--metrics-file``)
or a Pushgateway (``--pushgateway``).

Every series is labelled by its target: ``repository`` and ``workflow`` for a backup
workflow, ``destination`` (the URL without secrets) for a destination; a WAL archive
adds ``system_id``. ``NAMES`` is every metric offsite emits (the dashboard's test reads
it).
"""

from __future__ import annotations

import base64
import math
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from offsite.errors import BadInput, OffsiteError, OperationFailed
from offsite.monitor.health import HEALTHY, UNKNOWN, Health, Thresholds
from offsite.urls import redact

GAUGES = {
    "offsite_target_healthy": "1 when the target meets every check and objective, else 0.",
    "offsite_target_checked": "1 when the target could be checked, 0 when it could not.",
    "offsite_last_success_timestamp_seconds": "When the newest successful backup finished.",
    "offsite_backup_size_bytes": "The newest successful backup's size.",
    "offsite_backup_duration_seconds": "The newest successful backup's run time.",
    "offsite_rpo_seconds": "The largest gap between successful backups in the window: "
    "the RPO achieved.",
    "offsite_rpo_objective_seconds": "The RPO objective.",
    "offsite_rto_objective_seconds": "The RTO objective.",
    "offsite_drill_rto_seconds": "The newest drill's measured restore time.",
    "offsite_drill_timestamp_seconds": "When the newest drill ran.",
    "offsite_drill_success": "1 when the newest drill passed its checks and its record "
    "proves itself, else 0.",
    "offsite_drill_verified": "1 when the newest drill's record proved it was made with the "
    "set's key, else 0 (unverified).",
    "offsite_wal_last_archived_timestamp_seconds": "When the newest WAL file was archived.",
    "offsite_monitor_api_requests": "GitHub API requests the monitor's check made.",
    "offsite_monitor_timestamp_seconds": "When the monitor checked.",
}
NAMES = frozenset(GAUGES)
Sample = tuple[str, dict[str, str], float]


def labels_of(h: Health) -> dict[str, str]:
    """A workflow's target is "OWNER/REPO FILE"; a destination's is its URL."""
    if h.kind == "workflow":
        repo, _, flow = h.target.partition(" ")
        return {"repository": repo, "workflow": flow}
    return {"destination": redact(h.target)}


def instance() -> str:
    """Whose metrics a Pushgateway group holds: the repository in Actions, else the host
    (two monitors, or two backups into one destination, never replace each other's)."""
    import socket

    return os.environ.get("GITHUB_REPOSITORY") or socket.gethostname()


def _stamp(moment: datetime | None) -> float | None:
    return None if moment is None else moment.astimezone(timezone.utc).timestamp()


def samples(report: Sequence[Health], t: Thresholds, requests: int, now: datetime) -> list[Sample]:
    out: list[Sample] = []
    for h in report:
        labels = labels_of(h)
        out.append(("offsite_target_checked", labels, float(h.status != UNKNOWN)))
        out.append(("offsite_target_healthy", labels, float(h.status == HEALTHY)))
        values: dict[str, float | None] = {
            "offsite_last_success_timestamp_seconds": _stamp(h.last_success),
            "offsite_backup_size_bytes": None if h.size is None else float(h.size),
            "offsite_backup_duration_seconds": h.duration,
            "offsite_rpo_seconds": None if h.gap is None else h.gap.length.total_seconds(),
            "offsite_rpo_objective_seconds": None if t.rpo is None else t.rpo.total_seconds(),
            "offsite_rto_objective_seconds": None if t.rto is None else t.rto.total_seconds(),
        }
        if h.drill is not None:
            values["offsite_drill_rto_seconds"] = h.drill.rto_seconds
            values["offsite_drill_timestamp_seconds"] = _stamp(h.drill.when)
            values["offsite_drill_success"] = float(h.drill.ok and h.drill.verified)
            values["offsite_drill_verified"] = float(h.drill.verified)
        out += [(name, labels, value) for name, value in values.items() if value is not None]
        for system_id, newest in sorted(h.wal_newest.items()):
            out.append(("offsite_wal_last_archived_timestamp_seconds",
                        {**labels, "system_id": system_id}, newest.timestamp()))  # fmt: skip
    out.append(("offsite_monitor_api_requests", {}, float(requests)))
    out.append(("offsite_monitor_timestamp_seconds", {}, now.timestamp()))
    return out


def push_run(
    gateway: str, job: str, destinations: Sequence[str], values: dict[str, float],
    grouping: dict[str, str] | None = None,
) -> str | None:  # fmt: skip
    """A backup's or a drill's own metrics, one group per destination (``job``,
    ``destination``, ``instance`` and ``grouping``: the next such run replaces them); what
    went wrong, or None. A run that worked is not failed by its metrics: the caller warns."""
    try:
        for dest in destinations:
            labels = {"destination": redact(dest), "instance": instance(), **(grouping or {})}
            text = exposition((name, labels, value) for name, value in values.items())
            push(gateway, job, labels, text)
    except OffsiteError as exc:
        return exc.message()
    return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def exposition(found: Iterable[Sample]) -> str:
    """The text format: each metric's HELP and TYPE once, then its samples."""
    by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
    for name, labels, value in found:
        by_name.setdefault(name, []).append((labels, value))
    lines = []
    for name in sorted(by_name):
        lines += [f"# HELP {name} {GAUGES[name]}", f"# TYPE {name} gauge"]
        for labels, value in by_name[name]:
            shown = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{shown}}} {_number(value)}" if shown
                         else f"{name} {_number(value)}")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_file(path: Path, text: str) -> None:
    """Whole or not at all (the textfile collector may read at any moment)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        temp.write_text(text)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise BadInput(f"cannot write {path}: {exc.strerror}") from None


def push(gateway: str, job: str, grouping: dict[str, str], text: str) -> None:
    """Replace the group ``job`` + ``grouping`` in a Pushgateway with ``text`` (PUT).
    Label values go base64-encoded in the path, so a URL or a slash is fine."""
    if not gateway.startswith(("http://", "https://")):
        raise BadInput(f"--pushgateway {redact(gateway)} is not an http(s) address")
    path = f"/metrics/job@base64/{_b64(job)}"
    for name, value in sorted(grouping.items()):
        path += f"/{name}@base64/{_b64(value)}"
    request = urllib.request.Request(
        gateway.rstrip("/") + path, data=text.encode(), method="PUT",
        headers={"Content-Type": "text/plain; version=0.0.4"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        said = exc.read(300).decode(errors="replace").strip()
        where = redact(gateway)
        raise OperationFailed(f"the Pushgateway {where} answered {exc.code}: {said}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OperationFailed(f"cannot reach the Pushgateway {redact(gateway)}: {reason}") from None


def _b64(value: str) -> str:
    # the Pushgateway's form: URL-safe base64; an empty value is "=" (its docs)
    return base64.urlsafe_b64encode(value.encode()).decode() or "="
