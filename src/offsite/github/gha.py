"""GitHub Actions I/O: outputs, step summary, masks and annotations.

Everything here is a no-op outside Actions, so the CLI can call it unconditionally.
Workflow commands (``::add-mask::``, ``::error::``) go to stderr, which the runner reads
for them as it reads stdout, so that ``--json`` keeps stdout a single JSON document.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from typing import TextIO


def printable(text: str) -> str:
    """``text`` on one line without control characters: a message can quote what a
    destination holds, which must not start a workflow command (``::set-output``) on a
    line of its own, nor move a terminal's cursor."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", text)


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def error(message: str, stream: TextIO | None = None) -> None:
    """An ``::error::`` annotation, shown on the run's summary page."""
    if in_actions():
        print(f"::error::{_escape_data(message)}", file=stream or sys.stderr, flush=True)


def problem(message: str, stream: TextIO | None = None) -> None:
    """An error that does not stop the command (a webhook that failed), or the one that
    did: one line on stderr, and an ``::error::`` annotation in Actions."""
    print(f"offsite: error: {printable(message)}", file=stream or sys.stderr, flush=True)
    error(message, stream)


def warn(message: str, stream: TextIO | None = None) -> None:
    """A warning: one line on stderr, and a ``::warning::`` annotation in Actions."""
    out = stream or sys.stderr
    print(f"offsite: warning: {printable(message)}", file=out, flush=True)
    if in_actions():
        print(f"::warning::{_escape_data(message)}", file=out, flush=True)


def mask(value: str, stream: TextIO | None = None) -> None:
    """Ask the runner to hide ``value`` in every later log line."""
    if in_actions() and value:
        for line in value.splitlines():
            if line.strip():
                print(f"::add-mask::{_escape_data(line)}", file=stream or sys.stderr, flush=True)


def mask_url_password(url: str, stream: TextIO | None = None) -> None:
    """Hide the password of a URL, which the runner would not recognise on its own when
    only the whole URL is a secret and a line shows a part of it."""
    if not in_actions() or "://" not in url:
        return
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url.strip()).password
    except ValueError:
        return
    if password:
        mask(password, stream)
        mask(unquote(password), stream)


def set_output(name: str, value: str) -> None:
    """Append ``name`` to ``$GITHUB_OUTPUT`` with a heredoc delimiter that cannot clash."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    delimiter = f"offsite_{secrets.token_hex(8)}"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")
