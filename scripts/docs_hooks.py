"""MkDocs hook (mkdocs.yml ``hooks:``): the actions' reference generated from their
``action.yml`` files, so the manual lists every input, its default and every output as
the actions declare them.

A page holds ``<!-- offsite:actions -->`` where the tables go; on GitHub, where no hook
runs, the comment is invisible and the page links each ``action.yml`` instead. On the
commands' page, a paragraph of ``--help`` laid out in indented columns keeps its lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- offsite:actions -->"


def action_files() -> list[Path]:
    """The root action, then each action under ``actions/``, by name."""
    return [ROOT / "action.yml", *sorted(ROOT.glob("actions/*/action.yml"))]


def _cell(text: object) -> str:
    flat = " ".join(str(text).split())
    return flat.replace("|", "\\|") if flat else ""


def _uses(path: Path) -> str:
    folder = path.parent.relative_to(ROOT).as_posix()
    return "offsite-dev/offsite" + ("" if folder == "." else f"/{folder}")


def render(path: Path) -> str:
    """One action's section: what it does, its inputs (default, required), its outputs."""
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    lines = [f"## `{_uses(path)}`", "", _cell(spec.get("description", "")), ""]
    inputs = spec.get("inputs") or {}
    if inputs:
        lines += ["| input | default | description |", "|---|---|---|"]
        for name, field in inputs.items():
            field = field or {}
            default = field.get("default")
            shown = (
                "*(required)*"
                if field.get("required") and default is None
                else (f"`{_cell(default)}`" if default not in (None, "") else "")
            )
            lines.append(f"| `{name}` | {shown} | {_cell(field.get('description', ''))} |")
        lines.append("")
    outputs = spec.get("outputs") or {}
    if outputs:
        lines += ["| output | description |", "|---|---|"]
        lines += [
            f"| `{n}` | {_cell((o or {}).get('description', ''))} |" for n, o in outputs.items()
        ]
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, "\n".join(render(p) for p in action_files()))


# a paragraph of a command's help whose lines are laid out (indented columns, as --help
# prints them): kept as lines on the page too
_LAID_OUT = re.compile(r"<p>(?=(?:(?!</p>).)*\n  )", re.S)


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != "reference/cli.md":
        return html
    return _LAID_OUT.sub('<p style="white-space: pre-wrap">', html)
