"""The backup set's manifest: frozen dataclasses, to and from JSON.

A manifest comes from a destination, which anyone holding its credentials can write: it
is untrusted input. ``from_json`` checks it against the JSON Schema shipped beside this
module (``schemas/manifest.schema.json``) before building anything from it, then what a
schema cannot say (names and files unique, each file named after its entry). Formats
``offsite-manifest/1`` and ``/2`` (sets with a data key) are read; a newer one says
"upgrade offsite".

Format ``offsite-manifest/3`` (SPEC §10) is written by a run with an incremental source: a
diff's ``base`` (its id and the SHA-256 of its manifest's bytes), each entry's ``delta``
(``full``, ``diff``, ``unchanged``: no file) and its companion objects (an index, a deleted
list), each named and checksummed like the entry's file. Formats 1 and 2 hold none of
these, and their JSON comes back from the dataclasses byte for byte as it was read (the
``auth`` of a set is computed over it).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from offsite import __version__
from offsite.crypto.modes import Encryption
from offsite.errors import ManifestError, UnsupportedManifest
from offsite.names import NAME, is_set_id

FORMAT = "offsite-manifest/1"
FORMAT_SET_KEY = "offsite-manifest/2"  # entries encrypted with the set's data key
FORMAT_DELTA = "offsite-manifest/3"  # incremental sets: base, delta, companions (SPEC §10)
FORMATS = (FORMAT, FORMAT_SET_KEY, FORMAT_DELTA)
DELTAS = ("full", "diff", "unchanged")
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST = 16 << 20  # bytes: a manifest larger than this is refused unread
# fullmatch these: $ matches before a newline; [0-9], not \d, which takes any script's digits
FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")
SHA256 = re.compile(r"[0-9a-f]{64}")


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    from importlib.resources import files

    import jsonschema

    schema = json.loads(
        files("offsite.sets").joinpath("schemas/manifest.schema.json").read_text(encoding="utf-8")
    )
    return jsonschema.Draft202012Validator(schema)


def _problem(data: Any) -> str | None:
    """The first way ``data`` breaks the schema, in one short line; None when it holds."""
    error = next(iter(_validator().iter_errors(data)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    message = error.message if len(error.message) <= 160 else error.message[:160] + "…"
    return f"{where}: {message}"


def canonical(data: dict[str, Any]) -> bytes:
    """The bytes a manifest's ``auth`` covers: the object without ``auth``, keys sorted,
    no spaces, UTF-8 (SPEC §2)."""
    rest = {k: v for k, v in data.items() if k != "auth"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Companion:
    """An object stored beside an entry's file, compressed and encrypted like it."""

    role: str  # index | deleted | refs
    file: str
    size: int
    sha256: str
    raw_sha256: str = ""  # of the decoded bytes (what --index-cache keeps is checked by)


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    source: str
    file: str  # "" for an unchanged entry (format 3): nothing stored
    size: int
    sha256: str
    raw_size: int
    compression: str
    encryption: Encryption
    stats: dict[str, Any] = field(default_factory=dict)
    restore_hint: str = ""
    delta: str = ""  # format 3: full | diff | unchanged; "" in formats 1 and 2
    companions: tuple[Companion, ...] = ()

    @property
    def stored(self) -> bool:
        """Whether the entry has a file of its own (an unchanged one has none, nor a diff
        that is its companions alone: a repository's ref list)."""
        return self.file != ""

    def companion(self, role: str) -> Companion | None:
        return next((c for c in self.companions if c.role == role), None)

    def part(self, role: str) -> Entry | None:
        """The companion of ``role`` as an entry of its own, to read, verify or copy it
        like a file (the same compression and encryption), or None when there is none."""
        c = self.companion(role)
        if c is None:
            return None
        return replace(self, file=c.file, size=c.size, sha256=c.sha256, delta="full",
                       companions=())  # fmt: skip

    def objects(self) -> list[Entry]:
        """What the destination holds of this entry: its file, then each companion."""
        own = [self] if self.stored else []
        return own + [p for c in self.companions if (p := self.part(c.role)) is not None]


@dataclass(frozen=True)
class BaseRef:
    """A diff's base: the full set it was made against, pinned by its manifest's bytes."""

    id: str
    manifest_sha256: str


@dataclass(frozen=True)
class Origin:
    repository: str
    workflow: str
    run_id: str
    run_url: str
    sha: str


@dataclass(frozen=True)
class Auth:
    alg: str
    mac: str


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
    auth: Auth | None = None
    base: BaseRef | None = None  # format 3: the full set a diff was made against

    @property
    def size(self) -> int:
        return sum(o.size for e in self.entries for o in e.objects())

    @property
    def delta(self) -> str:
        """``full`` or ``diff``: what kind of set this is."""
        return "full" if self.base is None else "diff"

    def entry(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)

    def data(self) -> dict[str, Any]:
        """The manifest as a JSON object (``auth`` only when there is one)."""
        data = asdict(self)
        for entry in data["entries"]:
            entry["encryption"]["recipients"] = list(entry["encryption"]["recipients"])
            if not entry["delta"]:  # formats 1 and 2: as they were written
                del entry["delta"], entry["companions"]
            elif not entry["file"]:  # unchanged, or a diff of companions alone
                del entry["file"], entry["size"], entry["sha256"]
            for companion in entry.get("companions", ()):
                if not companion["raw_sha256"]:  # (sets written before it was recorded)
                    del companion["raw_sha256"]
        if data["auth"] is None:
            del data["auth"]
        if data["base"] is None:
            del data["base"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.data(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    def canonical(self) -> bytes:
        return canonical(self.data())

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "manifest.json") -> Manifest:
        """Parse and validate; ManifestError (exit 1) for anything the schema refuses,
        UnsupportedManifest (exit 2) for a newer format."""
        try:
            data = json.loads(text)
        except RecursionError:
            raise ManifestError(where, "nested too deeply") from None
        except ValueError as exc:  # also bad UTF-8 and integers of thousands of digits
            raise ManifestError(where, str(exc)[:160]) from None
        if not isinstance(data, dict):
            raise ManifestError(where, "not a JSON object")
        try:  # a lone surrogate (\ud800) is valid JSON but no UTF-8: refused here, once
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ManifestError(where, "it holds text that is not UTF-8") from None
        fmt = data.get("format")
        if isinstance(fmt, str) and fmt.startswith("offsite-manifest/") and fmt not in FORMATS:
            raise UnsupportedManifest(where, fmt[:40], __version__, " and ".join(FORMATS))
        try:
            problem = _problem(data)
        except RecursionError:
            problem = "nested too deeply"
        if problem:
            raise ManifestError(where, problem)
        if not is_set_id(data["id"]):  # the schema's $ also matches before a newline, and
            raise ManifestError(where, "its id is not a set id")  # 20261399T… is no date
        _check_entries(data, where)
        entries = tuple(_entry(e) for e in data["entries"])
        auth = data.get("auth")
        return cls(
            id=data["id"],
            created_at=data["created_at"],
            finished_at=data["finished_at"],
            entries=entries,
            labels=dict(data.get("labels") or {}),
            origin=Origin(**data["origin"]) if data.get("origin") else None,
            tool_version=data.get("tool_version", "unknown"),
            format=data["format"],
            auth=Auth(auth["alg"], auth["mac"]) if auth else None,
            base=BaseRef(**data["base"]) if "base" in data else None,
        )


def _check_entries(data: dict[str, Any], where: str) -> None:
    """What the schema cannot say: plain, unique names and files, each after its entry's
    name; the fields of format 3 in format 3 only, where every entry has its delta."""
    delta_format = data["format"] == FORMAT_DELTA
    if "base" in data and not delta_format:
        raise ManifestError(where, "only a format 3 manifest names a base")
    names: set[str] = set()
    files: set[str] = set()
    for e in data["entries"]:
        name = e["name"]
        if not (NAME.fullmatch(name) and KIND.fullmatch(e["kind"])):
            raise ManifestError(where, "an entry name or kind is not a plain name")
        if ("delta" in e) != delta_format or ("companions" in e) != delta_format:
            raise ManifestError(
                where, f"entry {name!r}: delta and companions belong to format 3, always both"
            )
        if e["encryption"]["mode"] == "set-key" and data["format"] == FORMAT:
            raise ManifestError(where, "a format 1 manifest cannot hold set-key entries")
        if e.get("delta") in ("diff", "unchanged") and "base" not in data:
            raise ManifestError(where, f"entry {name!r} is a {e['delta']} in a set with no base")
        if name in names:
            raise ManifestError(where, f"entry {name!r} appears twice")
        names.add(name)
        stored = [(e["file"], e["sha256"])] if "file" in e else []
        stored += [(c["file"], c["sha256"]) for c in e.get("companions", ())]
        if len({c["role"] for c in e.get("companions", ())}) != len(e.get("companions", ())):
            raise ManifestError(where, f"entry {name!r} has two companions of one role")
        for file, digest in stored:
            if not (FILE.fullmatch(file) and SHA256.fullmatch(digest)):
                raise ManifestError(where, f"entry {name!r} has a bad file name or digest")
            if file in files:
                raise ManifestError(where, f"the file {file!r} appears twice")
            if not file.startswith(name + "."):
                raise ManifestError(where, f"entry {name!r} has a file of another name")
            files.add(file)


def _entry(e: dict[str, Any]) -> Entry:
    encryption = Encryption(
        mode=e["encryption"]["mode"],
        cipher=e["encryption"].get("cipher"),
        recipients=tuple(e["encryption"].get("recipients", ())),
    )
    companions = tuple(Companion(**c) for c in e.get("companions", ()))
    return Entry(
        **{
            "file": "",
            "size": 0,
            "sha256": "",
            **e,
            "encryption": encryption,
            "companions": companions,
        }
    )
