"""One name on every surface: ``--max-age`` is also ``OFFSITE_MAX_AGE``, shown in --help."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, TypeVar

import click

from offsite import gha
from offsite.crypto import DEFAULT_PASSPHRASE_ENV
from offsite.errors import BadInput

F = TypeVar("F", bound=Callable[..., Any])


class State:
    """What the error handler must know even when a command did not finish."""

    verbose = False
    json = False


def envvar_for(long_name: str) -> str:
    return "OFFSITE_" + long_name.lstrip("-").split("/")[0].upper().replace("-", "_")


class Lines(click.types.StringParamType):
    """A text value; several of them in one environment variable go one per line."""

    envvar_list_splitter = "\n"


def option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    long = next(d for d in decls if d.startswith("--"))
    kwargs.setdefault("envvar", envvar_for(long))
    kwargs.setdefault("show_envvar", True)
    if kwargs.get("multiple") and "type" not in kwargs:
        kwargs["type"] = Lines()
    return click.option(*decls, **kwargs)


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
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
