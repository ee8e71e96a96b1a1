"""The backup set's manifest: frozen dataclasses, to and from JSON (format offsite-manifest/1)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from offsite import __version__
from offsite.errors import ManifestError, UnsupportedManifest

FORMAT = "offsite-manifest/1"
MANIFEST_NAME = "manifest.json"
SET_ID = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")


def set_id_for(moment: datetime) -> str:
    """The set id of a run started at ``moment``: UTC, ``YYYYMMDDTHHMMSSZ``."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def set_time(set_id: str) -> datetime:
    """The UTC start time a set id stands for (a ``-N`` clash suffix is ignored)."""
    return datetime.strptime(set_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Encryption:
    mode: str  # "passphrase" | "recipients" | "none"
    cipher: str | None = None
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    source: str
    file: str
    size: int
    sha256: str
    raw_size: int
    compression: str
    encryption: Encryption
    stats: dict[str, Any] = field(default_factory=dict)
    restore_hint: str = ""


@dataclass(frozen=True)
class Origin:
    repository: str
    workflow: str
    run_id: str
    run_url: str
    sha: str


@dataclass(frozen=True)
class Manifest:
    id: str
    created_at: str
    finished_at: str
    entries: tuple[Entry, ...]
    labels: dict[str, str] = field(default_factory=dict)
    origin: Origin | None = None
    tool_version: str = __version__
    format: str = FORMAT

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def entry(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)

    def to_json(self) -> str:
        data = asdict(self)
        for entry in data["entries"]:
            entry["encryption"]["recipients"] = list(entry["encryption"]["recipients"])
        return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "manifest.json") -> Manifest:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise ManifestError(where, exc) from None
        fmt = data.get("format")
        if fmt != FORMAT:
            raise UnsupportedManifest(where, fmt, __version__, FORMAT)
        try:
            entries = tuple(
                Entry(
                    **{
                        **e,
                        "encryption": Encryption(
                            mode=e["encryption"]["mode"],
                            cipher=e["encryption"].get("cipher"),
                            recipients=tuple(e["encryption"].get("recipients", ())),
                        ),
                    }
                )
                for e in data["entries"]
            )
            origin = Origin(**data["origin"]) if data.get("origin") else None
            manifest = cls(
                id=data["id"],
                created_at=data["created_at"],
                finished_at=data["finished_at"],
                entries=entries,
                labels=dict(data.get("labels") or {}),
                origin=origin,
                tool_version=data.get("tool_version", "unknown"),
                format=fmt,
            )
        except (KeyError, TypeError) as exc:
            raise ManifestError(where, f"missing or unexpected field {exc}") from None
        if not SET_ID.match(manifest.id):
            raise ManifestError(where, f"bad set id {manifest.id!r}")
        return manifest
