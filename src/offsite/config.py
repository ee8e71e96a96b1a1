"""The configuration file (``--config offsite.yml``): named sources in groups, destinations,
encryption, compression, labels and retention for a repository with many of each.

Parsing is pure: text in, a typed ``Config`` out, or one ``BadInput`` that names the file
and the key. ``${VAR}`` in any value is taken from the environment (``$${`` is a literal
``${``) by ``Config.expanded``, only for the sources a run selects, so secrets stay in CI
secrets, never in the file, and a job that backs up one group needs only its secrets.
Keys are the command-line options' names (``keep-daily``, ``passphrase-env``).

    destinations: [github-artifacts, s3://acme-backups/app]
    encryption: {passphrase-env: OFFSITE_PASSPHRASE}   # or {recipients: [...]} or none
    compress: zstd
    labels: {env: production}
    retention: {keep-daily: 7, keep-weekly: 4, keep-monthly: 12}
    sources:
      - {name: shop, url: "${DATABASE_URL}", groups: [database]}
      - {name: uploads, path: /srv/uploads, exclude: ["*.tmp"], groups: [files]}
      - {name: settings, exec: "cat /etc/app.conf", groups: [files]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from offsite.errors import BadInput

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

RETENTION_KEYS = (
    "keep-last",
    "keep-hourly",
    "keep-daily",
    "keep-weekly",
    "keep-monthly",
    "keep-yearly",
    "keep-within",
)


@dataclass(frozen=True)
class Objectives:
    """A recovery point and a recovery time objective (``objectives: {rpo: 1h, rto: 30m}``)."""

    rpo: timedelta | None = None
    rto: timedelta | None = None

    def stricter(self, other: Objectives) -> Objectives:
        def least(a: timedelta | None, b: timedelta | None) -> timedelta | None:
            return b if a is None else a if b is None else min(a, b)

        return Objectives(least(self.rpo, other.rpo), least(self.rto, other.rto))


@dataclass(frozen=True)
class SourceSpec:
    name: str
    url: str | None = None  # a source URL or path
    command: str | None = None  # or a command whose output is the entry
    groups: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    pg_globals: bool = False
    physical: bool = False  # a PostgreSQL base backup (point-in-time recovery), not a dump
    platform: str | None = None  # a container image: this platform of its index only
    objectives: Objectives = Objectives()
    incremental: bool = False  # files: an index kept, diffs made against it (SPEC §10)


@dataclass(frozen=True)
class EncryptionSpec:
    mode: str = "passphrase"  # passphrase | recipients | none
    passphrase_env: str | None = None
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: str
    sources: tuple[SourceSpec, ...]
    destinations: tuple[str, ...] = ()
    encryption: EncryptionSpec | None = None  # None: as the command line says
    compress: str | None = None
    level: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    retention: dict[str, str] = field(default_factory=dict)
    objectives: Objectives = Objectives()  # the file's, for every source
    group_objectives: dict[str, Objectives] = field(default_factory=dict)
    full_after: timedelta | None = None  # incremental sources: a base older is no base

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(sorted({g for s in self.sources for g in s.groups}))

    def objectives_of(self, source: SourceSpec) -> Objectives:
        """The strictest of the source's own, its groups' and the file's."""
        found = self.objectives.stricter(source.objectives)
        for group in source.groups:
            found = found.stricter(self.group_objectives.get(group, Objectives()))
        return found

    def strictest(self) -> Objectives:
        """What a destination holding every source must meet (the monitor's view)."""
        found = self.objectives
        for source in self.sources:
            found = found.stricter(self.objectives_of(source))
        return found

    def expanded(self, env: Mapping[str, str], only: tuple[str, ...] = ()) -> Config:
        """The configuration with the sources ``only`` selects, every value expanded."""

        def x(value: str, where: str) -> str:
            return expand(value, env, f"{self.path}: {where}")

        def source(s: SourceSpec) -> SourceSpec:
            at = f"sources.{s.name}"
            return replace(
                s,
                url=x(s.url, f"{at}.url") if s.url is not None else None,
                command=x(s.command, f"{at}.exec") if s.command is not None else None,
                exclude=tuple(x(e, f"{at}.exclude") for e in s.exclude),
            )

        chosen = self.select(only)
        return replace(self.settings(env), sources=tuple(source(s) for s in chosen))

    def settings(self, env: Mapping[str, str]) -> Config:
        """Everything but the sources expanded (they stay as written): what ``list``,
        ``restore``, ``verify``, ``prune`` and ``drill`` read, needing no source's secret."""

        def x(value: str, where: str) -> str:
            return expand(value, env, f"{self.path}: {where}")

        enc = self.encryption
        if enc is not None:
            enc = replace(
                enc,
                passphrase_env=x(enc.passphrase_env, "encryption.passphrase-env")
                if enc.passphrase_env
                else None,
                recipients=tuple(x(r, "encryption.recipients") for r in enc.recipients),
            )
        return replace(
            self,
            destinations=tuple(x(d, "destinations") for d in self.destinations),
            encryption=enc,
            compress=x(self.compress, "compress") if self.compress else None,
            labels={k: x(v, f"labels.{k}") for k, v in self.labels.items()},
            retention={k: x(v, f"retention.{k}") for k, v in self.retention.items()},
        )

    def select(self, only: tuple[str, ...]) -> tuple[SourceSpec, ...]:
        """The sources in any of the groups, or with any of the names, ``only`` lists;
        every source when it is empty. An unknown group or name is bad input."""
        wanted = {w for value in only for w in value.replace(",", " ").split()}
        if not wanted:
            return self.sources
        known = set(self.groups) | {s.name for s in self.sources}
        unknown = sorted(wanted - known)
        if unknown:
            raise BadInput(
                f"{self.path}: --only {', '.join(unknown)}: no such group or source "
                f"(groups: {', '.join(self.groups) or 'none'}; "
                f"sources: {', '.join(s.name for s in self.sources)})"
            )
        return tuple(s for s in self.sources if s.name in wanted or wanted & set(s.groups))


def check_references(value: str, where: str) -> str:
    """A ``$`` that starts neither ``${NAME}`` nor ``$${`` is most likely a typo."""
    rest = _VAR.sub("", value)
    if "${" in rest:
        raise BadInput(f"{where}: a ${{ without a variable name and }} (write $${{ for a literal)")
    return value


def expand(value: str, env: Mapping[str, str], where: str) -> str:
    """``${VAR}`` from ``env``; a variable that is unset is bad input naming it (not its
    value, which may be a secret)."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name = m.group(1)
        if name not in env:
            raise BadInput(f"{where}: ${{{name}}} is not set in the environment")
        return env[name]

    return _VAR.sub(one, value)


class _Reader:
    """Walks the parsed YAML, expanding and type-checking as it goes."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> BadInput:
        return BadInput(f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}")

    def mapping(self, value: Any, where: str, known: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping of {', '.join(known)}")
        for key in value:
            if key not in known:
                raise self.fail(where, f"unknown key {key!r} (known: {', '.join(known)})")
        return value

    def text(self, value: Any, where: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(where, "expected a text value")
        return check_references(str(value), f"{self.path}: {where}")

    def texts(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(where, "expected a list")
        return tuple(self.text(v, f"{where}[{i}]") for i, v in enumerate(value))

    def integer(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, "expected a whole number")
        return value

    def flag(self, value: Any, where: str) -> bool:
        if isinstance(value, bool):
            return value
        raise self.fail(where, "expected true or false")


_SOURCE_KEYS = (
    "name", "url", "path", "exec", "groups", "group", "exclude", "pg-globals", "physical",
    "platform", "objectives", "incremental",
)  # fmt: skip
_TOP_KEYS = (
    "sources",
    "destinations",
    "encryption",
    "compress",
    "level",
    "labels",
    "retention",
    "objectives",
    "group-objectives",
    "full-after",
)


def _objectives(r: _Reader, raw: Any, where: str) -> Objectives:
    from offsite.durations import parse_duration

    d = r.mapping(raw or {}, where, ("rpo", "rto"))
    found = {}
    for key in ("rpo", "rto"):
        if d.get(key) is not None:
            try:
                found[key] = parse_duration(r.text(d[key], f"{where}.{key}"))
            except BadInput as exc:
                raise r.fail(f"{where}.{key}", exc.message()) from None
    return Objectives(**found)


def _duration(r: _Reader, raw: Any, where: str) -> timedelta:
    from offsite.durations import parse_duration

    try:
        return parse_duration(r.text(raw, where))
    except BadInput as exc:
        raise r.fail(where, exc.message()) from None


def _source(r: _Reader, raw: Any, where: str) -> SourceSpec:
    d = r.mapping(raw, where, _SOURCE_KEYS)
    given = [k for k in ("url", "path", "exec") if d.get(k) is not None]
    if len(given) != 1:
        raise r.fail(where, "give exactly one of url, path and exec")
    if "name" not in d:
        raise r.fail(where, "every source needs a name (its entry's name)")
    from offsite.names import check_name

    name = r.text(d["name"], f"{where}.name")
    try:
        check_name(name)
    except BadInput as exc:
        raise r.fail(f"{where}.name", exc.message()) from None
    groups = r.texts(d.get("groups"), f"{where}.groups") + r.texts(d.get("group"), f"{where}.group")
    kind = given[0]
    value = r.text(d[kind], f"{where}.{kind}")
    return SourceSpec(
        name=name,
        url=None if kind == "exec" else value,
        command=value if kind == "exec" else None,
        groups=groups,
        exclude=r.texts(d.get("exclude"), f"{where}.exclude"),
        pg_globals=r.flag(d["pg-globals"], f"{where}.pg-globals") if "pg-globals" in d else False,
        physical=r.flag(d["physical"], f"{where}.physical") if "physical" in d else False,
        platform=r.text(d["platform"], f"{where}.platform") if "platform" in d else None,
        objectives=_objectives(r, d.get("objectives"), f"{where}.objectives"),
        incremental=r.flag(d["incremental"], f"{where}.incremental") if "incremental" in d
        else False,
    )  # fmt: skip


def _encryption(r: _Reader, raw: Any) -> EncryptionSpec:
    if raw in ("none", False):
        return EncryptionSpec("none")
    d = r.mapping(raw, "encryption", ("passphrase-env", "recipients", "none"))
    if d.get("none") is True:
        return EncryptionSpec("none")
    recipients = r.texts(d.get("recipients"), "encryption.recipients")
    if recipients and "passphrase-env" in d:
        raise r.fail("encryption", "choose one of passphrase-env and recipients")
    if recipients:
        return EncryptionSpec("recipients", recipients=recipients)
    env = d.get("passphrase-env")
    return EncryptionSpec(
        "passphrase",
        passphrase_env=r.text(env, "encryption.passphrase-env") if env is not None else None,
    )


def parse(text: str, path: str) -> Config:
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise BadInput(f"{path}: {at}{problem}") from None
    r = _Reader(path)
    d = r.mapping(raw if raw is not None else {}, "", _TOP_KEYS)
    raw_sources = d.get("sources") or []
    if not isinstance(raw_sources, list):
        raise r.fail("sources", "expected a list of sources")
    sources = tuple(_source(r, s, f"sources[{i}]") for i, s in enumerate(raw_sources))
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise r.fail("sources", f"two sources are named {twice[0]!r}")
    labels = r.mapping(d.get("labels") or {}, "labels", tuple(d.get("labels") or {}))
    retention = r.mapping(d.get("retention") or {}, "retention", RETENTION_KEYS)
    raw_groups = d.get("group-objectives") or {}
    by_group = r.mapping(raw_groups, "group-objectives", tuple(raw_groups))
    return Config(
        path=path,
        sources=sources,
        destinations=r.texts(d.get("destinations"), "destinations"),
        encryption=_encryption(r, d["encryption"]) if "encryption" in d else None,
        compress=r.text(d["compress"], "compress") if "compress" in d else None,
        level=r.integer(d["level"], "level") if "level" in d else None,
        labels={str(k): r.text(v, f"labels.{k}") for k, v in labels.items()},
        retention={k: r.text(v, f"retention.{k}") for k, v in retention.items()},
        objectives=_objectives(r, d.get("objectives"), "objectives"),
        group_objectives={
            str(group): _objectives(r, value, f"group-objectives.{group}")
            for group, value in by_group.items()
        },
        full_after=_duration(r, d["full-after"], "full-after") if "full-after" in d else None,
    )


def load(path: str) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read configuration file {path}: {exc}") from None
    return parse(text, path)
