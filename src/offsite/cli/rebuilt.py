"""What a restore into GitHub says: per repository, what was made and found made already,
what the token would need, and what cannot come back (terminal, ``--json``, step summary)."""

from __future__ import annotations

import click

from offsite.cli.options import emit_json
from offsite.github import gha
from offsite.restore_github import Rebuilt
from offsite.table import human_duration, markdown, render


def report_rebuilt(done: list[Rebuilt], as_json: bool) -> int:
    if as_json:
        emit_json({"rebuilt": [r.as_json() for r in done]})
    lines: list[tuple[str, tuple[str, ...], list[tuple[str, ...]], list[str]]] = []
    for r in done:
        if r.error is not None:
            continue
        if r.dry_run:
            rows: list[tuple[str, ...]] = [(kind, str(n)) for kind, n in r.planned.items()]
            head = (
                f"{r.repository} (dry run: nothing written): about {r.estimate[0]} writes, "
                f"{human_duration(r.estimate[1])} at this pace"
            )
        else:
            kinds = sorted(set(r.report.made) | set(r.report.found))
            rows = [(k, str(r.report.made[k]), str(r.report.found[k])) for k in kinds]
            created = "created, " if r.created else ""
            head = (
                f"{r.repository}: {created}restored from entry {r.entry} "
                f"({sum(r.requests.values())} requests)"
            )
        columns: tuple[str, ...] = (
            ("kind", "would make") if r.dry_run else ("kind", "made", "found made")
        )
        moved = [f"#{old} is #{new} here" for old, new in sorted(r.report.numbers.items())]
        if moved:  # (--force: numbers could not be kept)
            shown = ", ".join(moved[:20]) + (
                f" and {len(moved) - 20} more" if len(moved) > 20 else ""
            )
            moved = [f"numbers GitHub gave ({len(moved)}): {shown}; --json lists them all"]
        said = [f"note: {x}" for x in r.checks + moved]
        said += [f"not restored: {x}" for x in r.report.lost + r.report.left_out]
        lines.append((head, columns, rows, said))
    summary = []
    for head, columns, rows, notes in lines:
        summary.append(f"### {head}\n\n{markdown(columns, rows)}")
        if notes:
            summary.append("\n".join(f"- {x}" for x in notes))
        if not as_json:
            click.echo(head)
            click.echo(render(columns, rows, right=tuple(range(1, len(columns)))))
            for x in notes:
                click.echo(f"  {x}")
    gha.append_summary("\n\n".join(summary))
    failed = [(r.repository, x) for r in done for x in r.report.failed]
    for repository, what in failed:
        click.echo(f"offsite: error: restore into github://{repository}: {what}", err=True)
    if failed:
        click.echo("offsite: error: the rest is back; a second run tries these again", err=True)
    codes = [3] if failed else []
    for r in done:
        if r.error is not None:  # one repository of several could not be restored
            click.echo(f"offsite: error: {r.error[1]}", err=True)
            codes.append(r.error[0])
    return max(codes, default=0)
