"""The manual's pages as the tests read them: their shell blocks, run as written.

A ```bash block runs unless the line before it is an HTML comment (invisible on GitHub
and on the site) that says why not: ``<!-- not run: … -->`` (addresses of your own, a
machine the tests cannot be), or ``<!-- run by tests/…: … -->`` (a test that needs a
setting-up of its own runs it, naming the page). Every other block of a page runs, in
order, in one bash process with ``set -euo pipefail``: a guide is a sequence of steps.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
SKIP = re.compile(r"<!--\s*(not run|run by (\S+?)):?\s(.*?)-->\s*$", re.S)


@dataclass(frozen=True)
class Block:
    page: str
    language: str
    text: str
    skipped: str | None  # why not run here, from the comment before it
    run_by: str | None  # the test file that runs it instead


def blocks(page: str) -> list[Block]:
    """Every fenced block of ``docs/<page>``, with the comment before it read."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        found.append(Block(page, m.group(1), m.group(2),
                           skip.group(3).strip() if skip else None,
                           skip.group(2) if skip and skip.group(2) else None))  # fmt: skip
    return found


def runnable(page: str) -> list[Block]:
    return [b for b in blocks(page) if b.language == "bash" and b.skipped is None]


def run_page(
    page: str, cwd: Path, env: dict[str, str] | None = None, *,
    replace: dict[str, str] | None = None, only: slice | None = None, timeout: float = 600,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """The page's runnable bash blocks (``only`` some of them), in order, in one bash run
    in ``cwd``, with offsite (this checkout's) first on PATH; the run must succeed.
    ``replace`` puts the test's own addresses where the page writes a reader's (each must
    be on the page: a guide that changed its example changes its test too)."""
    chosen = runnable(page)[only or slice(None)]
    script = "\n".join(b.text for b in chosen)
    assert script, f"{page} has no block to run"
    for example, actual in sorted((replace or {}).items(), key=lambda kv: -len(kv[0])):
        assert example in script, f"{page} no longer says {example!r}"
        script = script.replace(example, actual)
    bindir = str(Path(sys.executable).parent)
    environment = {**os.environ, **(env or {})}
    environment["PATH"] = bindir + os.pathsep + environment.get("PATH", "")
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"{page}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done
