"""Drill records (SPEC §9): ``DEST/drills/<set-id>/<UTC time>.json``, what a drill
measured, for the monitor to judge the RTO by.

A record carries an ``auth`` like a manifest's: an HMAC-SHA256 of its canonical JSON,
keyed from the drilled set's data key (``auth.py``'s HKDF, another label), and a copy of
the set's ``key.gpg``, so it still proves itself once retention has pruned the set. The
monitor trusts a record it can verify with the passphrase it is given (only the
passphrase can open that ``key.gpg``). A set made for recipients has a key anyone can
wrap, so its records are signed with ``--sign-key`` (``<record>.json.sig``, a detached
OpenPGP signature of their bytes) and verified with ``--trust-key``. The others the
monitor labels unverified, and with a key given it leaves them out, as it leaves out
planted sets; an unverified record satisfies no objective. Records are created, never
overwritten (create-if-absent), but by ``rekey``, which seals them again.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from offsite.crypto.auth import ALG, mac, mac_holds
from offsite.names import SET_ID, is_set_id

PREFIX = "drills/"
INFO = b"offsite-drill-auth"
STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(rf"drills/(?P<set>{SET_ID.pattern})/(?P<time>[0-9]{{8}}T[0-9]{{6}}Z)\.json")
MAX_RECORD = 1 << 20
SIGNATURE = ".sig"  # a record's detached OpenPGP signature: <record key>.sig (--sign-key)


@dataclass(frozen=True)
class DrillRecord:
    set_id: str
    when: str  # UTC, STAMP: also its name
    ok: bool
    rto_seconds: float  # the measured restore time, replay included
    into: str  # the kind of scratch target: postgresql, mysql, sqlite, redis, folder, …
    entries: list[dict[str, Any]] = field(default_factory=list)  # name, kind, seconds, checks
    key_gpg: str = ""  # the drilled set's key.gpg, base64: what the auth is keyed from
    auth: dict[str, str] | None = None

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.set_id}/{self.when}.json"

    @property
    def moment(self) -> datetime:
        return datetime.strptime(self.when, STAMP).replace(tzinfo=timezone.utc)

    def canonical(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "auth"}
        # as parsed back: 60 and 60.0 are one time (JSON keeps whichever was written)
        fields.update(ok=bool(self.ok), rto_seconds=float(self.rto_seconds))
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def sealed(self, data_key: str | None) -> DrillRecord:
        if data_key is None:
            return self
        return DrillRecord(
            **{
                **asdict(self),
                "auth": {"alg": ALG, "mac": mac(self.canonical(), data_key, info=INFO)},
            }
        )

    def holds(self, data_key: str) -> bool:
        if not self.auth or self.auth.get("alg") != ALG:
            return False
        return mac_holds(self.canonical(), data_key, str(self.auth.get("mac", "")), info=INFO)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"


def names(keys: list[str]) -> list[tuple[str, str, str]]:
    """(key, set id, time stamp) of every record key among ``keys``, newest first."""
    found = [(k, m["set"], m["time"]) for k in keys if (m := _NAME.fullmatch(k))]
    return sorted(found, key=lambda f: (f[2], f[1]), reverse=True)


def parse(data: bytes, key: str) -> DrillRecord:
    """The record stored under ``key``; ValueError when it is not one, or names another
    set or time than its key does."""
    if len(data) > MAX_RECORD:
        raise ValueError("it is too large")
    try:
        fields = json.loads(data)
    except (ValueError, RecursionError):  # a nesting deep enough to exhaust the parser
        raise ValueError("it is not JSON") from None
    if not isinstance(fields, dict):
        raise ValueError("it is not an object")
    try:
        record = DrillRecord(
            set_id=str(fields["set_id"]),
            when=str(fields["when"]),
            ok=bool(fields["ok"]),
            rto_seconds=float(fields["rto_seconds"]),
            into=str(fields.get("into", "")),
            entries=list(fields.get("entries") or []),
            key_gpg=str(fields.get("key_gpg") or ""),
            auth=fields.get("auth") if isinstance(fields.get("auth"), dict) else None,
        )
    except (KeyError, TypeError, ValueError):
        raise ValueError("its fields do not parse") from None
    if record.key != key:
        raise ValueError(f"it says {record.key}")
    if not record.rto_seconds >= 0:
        raise ValueError("its restore time is not a time")
    if not is_set_id(record.set_id):
        raise ValueError("its set id is not one")
    try:
        record.moment  # noqa: B018  (20260231T…: the shape of a time, not a time)
    except ValueError:
        raise ValueError("its time is not a time") from None
    return record
