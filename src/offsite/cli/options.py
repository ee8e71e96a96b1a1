"""One name on every surface: ``--max-age`` is also ``OFFSITE_MAX_AGE``, shown in --help.

The option blocks several verbs share: output (``--json``), destinations
(``storage_options``), repository selection and extras. Those of the verbs that read sets
(DEST or ``--config``, the set selector, trust, restore) are in ``cli/reading.py``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar, cast

import click

from offsite.crypto.keys import DEFAULT_PASSPHRASE_ENV
from offsite.errors import BadInput
from offsite.github import gha

F = TypeVar("F", bound=Callable[..., Any])


class State:
    """What the error handler must know even when a command did not finish."""

    verbose = False
    json = False
    healthy: bool | None = None  # a command's own verdict (monitor); else: it exited 0
    argv: list[str] = []  # the command line as given (wal push --async keys its spool by it)


def envvar_for(long_name: str) -> str:
    return "OFFSITE_" + long_name.lstrip("-").split("/")[0].upper().replace("-", "_")


class Lines(click.types.StringParamType):
    """A text value; several of them in one environment variable go one per line
    (blank lines and the spaces around a value are dropped: an action's multi-line input)."""

    envvar_list_splitter = "\n"

    def split_envvar_value(self, rv: str) -> list[str]:
        return [line.strip() for line in rv.splitlines() if line.strip()]


def option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    long = next(d for d in decls if d.startswith("--"))
    kwargs.setdefault("envvar", envvar_for(long))
    kwargs.setdefault("show_envvar", True)
    if kwargs.get("multiple") and "type" not in kwargs:
        kwargs["type"] = Lines()
    return click.option(*decls, **kwargs)


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user gave parameter ``name`` (command line or its OFFSITE_* variable),
    rather than its default: what wins over a --config file."""
    source = ctx.get_parameter_source(name)
    return source in (click.core.ParameterSource.COMMANDLINE,
                      click.core.ParameterSource.ENVIRONMENT)  # fmt: skip


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    State.json = State.json or bool(value)
    return value


def json_option(f: F) -> F:
    return option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        callback=_set_json,
        help="Print a machine-readable JSON record instead of text.",
    )(f)


def passphrase_option(f: F) -> F:
    return option(
        "--passphrase-env",
        default=DEFAULT_PASSPHRASE_ENV,
        show_default=True,
        metavar="VAR",
        help="Environment variable that holds the passphrase.",
    )(f)


def read_passphrase_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.readline().rstrip("\r\n")
    except (OSError, UnicodeError) as exc:
        raise BadInput(f"cannot read --passphrase-file {path}: {exc}") from None
    if not value:
        raise BadInput(f"--passphrase-file {path} is empty")
    gha.mask(value)
    return value


def read_passphrase(variable: str, required: bool = False) -> str | None:
    value = os.environ.get(variable) or None
    if value:
        gha.mask(value)
    if required and not value:
        from offsite.errors import MissingPassphrase

        raise MissingPassphrase(variable)
    return value


def split_pairs(values: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` pairs; the value may itself hold ``=``."""
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{what} takes NAME=VALUE, not {value!r}")
        pairs.append((key.strip(), rest))
    return pairs


def emit_json(data: Any) -> None:
    """The ``--json`` record on stdout, and inside Actions the step output ``report``."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(text + "\n")
    gha.set_output("report", text)


_S3_FIELDS = (
    ("--s3-endpoint-url", "endpoint_url", "S3-compatible endpoint (MinIO, R2, B2, Wasabi); "
     "AWS_ENDPOINT_URL works too.", str),
    ("--s3-region", "region", "Region of the bucket (else AWS_REGION).", str),
    ("--s3-sse", "sse", "Server-side encryption: AES256 or aws:kms.", str),
    ("--s3-kms-key-id", "kms_key_id", "KMS key for --s3-sse aws:kms.", str),
    ("--s3-storage-class", "storage_class", "Storage class, e.g. STANDARD_IA, GLACIER_IR.", str),
    ("--s3-object-lock-mode", "object_lock_mode", "Object Lock: GOVERNANCE or COMPLIANCE.", str),
    ("--s3-object-lock-days", "object_lock_days", "Days each stored object stays locked.", int),
)  # fmt: skip


_WRITE_ONLY = ("sse", "kms_key_id", "storage_class", "object_lock_mode", "object_lock_days")


def _storage_options(f: F, writes: bool) -> F:
    import functools

    from offsite.storage.settings import S3Settings, SftpSettings, StorageSettings

    fields = [(flag, name, text, kind) for flag, name, text, kind in _S3_FIELDS
              if writes or name not in _WRITE_ONLY]  # fmt: skip

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        s3 = S3Settings(**{name: kwargs.pop(f"s3_{name}") for _, name, _, _ in fields})
        sftp = SftpSettings(insecure_host_key=kwargs.pop("sftp_insecure_host_key"))
        branch = kwargs.pop("artifacts_branch")
        settings = StorageSettings(s3=s3, sftp=sftp, artifacts_branch=branch)
        return f(*args, storage=settings, **kwargs)

    decorated: Any = option(
        "--sftp-insecure-host-key",
        is_flag=True,
        help="Accept an SFTP server whose host key is not in known_hosts (warns; avoid).",
    )(wrapper)
    decorated = option(
        "--artifacts-branch",
        metavar="BRANCH",
        help="gh-artifacts://: read the artifacts of the repository's own runs on BRANCH "
        "(default: its default branch; '*': any branch). A fork's never count.",
    )(decorated)
    for flag, name, text, kind in reversed(fields):
        decorated = option(flag, f"s3_{name}", type=kind, help=text)(decorated)
    return cast(F, decorated)


def storage_options(f: F) -> F:
    """The destination settings of a command that writes to a destination (backup, copy,
    verify --seal); the command receives them as one ``storage`` argument (a
    StorageSettings)."""
    return _storage_options(f, writes=True)


def read_storage_options(f: F) -> F:
    """The settings of a command that only reads or deletes (list, restore, drill, prune,
    monitor): no server-side encryption, storage class or Object Lock, which only a write
    uses."""
    return _storage_options(f, writes=False)


def repo_options(f: F) -> F:
    """github://OWNER's selection options; the command receives them as one ``choice``
    argument (a RepoChoice)."""
    import functools

    from offsite.github.repos import RepoChoice

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        choice = RepoChoice(
            forks=kwargs.pop("include_forks"),
            archived=kwargs.pop("include_archived"),
            private=not kwargs.pop("exclude_private"),
            patterns=kwargs.pop("repo_filter"),
        )
        return f(*args, choice=choice, **kwargs)

    decorated: Any = wrapper
    for decl, text in reversed(
        (
            ("--include-forks", "github://OWNER: also its forks."),
            ("--include-archived", "github://OWNER: also its archived repositories."),
            ("--exclude-private", "github://OWNER: leave private repositories out."),
        )
    ):
        decorated = option(decl, is_flag=True, help=text)(decorated)
    decorated = option(
        "--repo-filter",
        multiple=True,
        metavar="GLOB",
        help="github://OWNER: only repositories whose name matches (repeatable).",
    )(decorated)
    return cast(F, decorated)


def incremental_options(f: F) -> F:
    """--incremental and its limits; the command receives ``incremental`` and ``policy``
    (an Incremental, its ``full_after`` None where neither it nor the default was given)."""
    import functools

    from offsite.baseline import Incremental
    from offsite.durations import parse_duration

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        after, over = kwargs.pop("full_after"), kwargs.pop("full_when_over")
        base_from, days = kwargs.pop("base_from"), kwargs.pop("retention_days")
        cache = kwargs.pop("index_cache")
        if cache:
            try:
                Path(cache).expanduser().mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BadInput(f"--index-cache {cache}: {exc.strerror or exc}") from None
        share = 0.5
        if over:
            try:
                share = float(over.rstrip("%")) / 100
            except ValueError:
                share = -1.0
            if not 0 < share <= 1:
                raise BadInput(f"--full-when-over takes a share from 1% to 100%, not {over!r}")
        policy = Incremental(parse_duration(after) if after else None, share, base_from, days,
                             Path(cache).expanduser() if cache else None)  # fmt: skip
        return f(*args, policy=policy, **kwargs)

    decorated: Any = wrapper
    decorated = option(
        "--retention-days", type=click.IntRange(1, 400), metavar="DAYS",
        help="With --base-from: the days GitHub keeps this run's artifact (90 when not "
        "given); a base that expires first is no base.",
    )(decorated)  # fmt: skip
    for decl, metavar, text in (
        ("--index-cache", "DIR", "With --incremental: keep the indexes a diff is made against "
         "here (actions/cache), in the clear; a run for --recipient needs them."),
        ("--base-from", "URL", "With --incremental into github-artifacts: where the base is "
         "read, gh-artifacts://OWNER/REPO (the staging folder holds none)."),
        ("--full-when-over", "PERCENT", "With --incremental: a full run when a diff would be "
         "over this share of its base (default 50%)."),
        ("--full-after", "DURATION", "With --incremental: a full run when the newest full set "
         "is older (default 7d)."),
    ):  # fmt: skip
        decorated = option(decl, metavar=metavar, help=text)(decorated)
    decorated = option(
        "--incremental",
        is_flag=True,
        help="Files, repositories, their metadata, LFS objects and images keep an index, and a "
        "run stores a diff of what changed against the newest full set that has one at every "
        "DEST (a full run otherwise, saying why); databases and commands are stored full.",
    )(decorated)
    return cast(F, decorated)


def image_options(f: F) -> F:
    """Which container images of a GitHub owner (oci://ghcr.io/OWNER, or github://OWNER with
    --include-images); the command receives them as one ``images`` argument (an ImageChoice)."""
    import functools

    from offsite.oci.packages import ImageChoice

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        images = ImageChoice(
            patterns=kwargs.pop("image_filter"),
            tags=kwargs.pop("image_tags"),
            newest=kwargs.pop("image_versions"),
            include=kwargs.pop("include_images"),
        )
        return f(*args, images=images, **kwargs)

    decorated: Any = wrapper
    decorated = option(
        "--image-versions",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        metavar="N",
        help="Owners' images: the newest N tagged versions of each package.",
    )(decorated)
    decorated = option(
        "--image-tags", multiple=True, metavar="GLOB",
        help="Owners' images: only versions with a tag that matches (repeatable).",
    )(decorated)  # fmt: skip
    decorated = option(
        "--image-filter", multiple=True, metavar="GLOB",
        help="Owners' images: only packages whose name matches (repeatable).",
    )(decorated)  # fmt: skip
    decorated = option(
        "--include-images", is_flag=True,
        help="github://OWNER: also the owner's container images on ghcr.io.",
    )(decorated)  # fmt: skip
    return cast(F, decorated)


def extras_options(f: F) -> F:
    """What a repository's backup holds besides its bundle; the command receives them as
    one ``extras`` argument (a RepoExtras)."""
    import functools

    from offsite.sources.repo_extras import RepoExtras

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        extras = RepoExtras(
            lfs=kwargs.pop("include_lfs"),
            wiki=kwargs.pop("include_wiki"),
            metadata=kwargs.pop("include_metadata"),
            release_assets=kwargs.pop("include_release_assets"),
        )
        return f(*args, extras=extras, **kwargs)

    decorated: Any = wrapper
    for decl, text in reversed(
        (
            ("--include-lfs", "Repositories: also their Git LFS objects (entry NAME-lfs)."),
            ("--include-wiki", "Repositories: also their wiki, where there is one (NAME-wiki)."),
            (
                "--include-metadata",
                "GitHub repositories: also issues, pull requests with reviews, releases, "
                "labels and milestones as JSON (NAME-metadata).",
            ),
            (
                "--include-release-assets",
                "GitHub repositories: metadata with the releases' files too.",
            ),
        )
    ):
        decorated = option(decl, is_flag=True, help=text)(decorated)
    return cast(F, decorated)
