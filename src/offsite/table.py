"""Plain-text tables and human-readable sizes and durations for terminal output."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from offsite.github.gha import printable  # what a manifest says is an attacker's text


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def counted(n: int, one: str, many: str = "") -> str:
    """``1 entry``, ``2 entries``: ``many`` defaults to ``one`` with an s."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def entries(n: int) -> str:
    return counted(n, "entry", "entries")


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def render(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()
) -> str:
    """Columns padded to their widest cell; indexes in ``right`` are right-aligned."""
    cells = [[printable(str(c)) for c in headers]] + [
        [printable(str(c)) for c in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ).rstrip()

    return "\n".join([fmt(cells[0])] + [fmt(r) for r in cells[1:]])


def markdown(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table (a step summary's); a ``|`` or line break in a cell cannot break it."""

    def cell(value: str) -> str:
        return printable(str(value)).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)
