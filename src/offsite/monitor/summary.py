"""The monitor's report as Markdown for ``$GITHUB_STEP_SUMMARY``: a table of targets and
a Mermaid ``xychart-beta`` of backup sizes over the recent successful runs."""

from __future__ import annotations

from offsite.monitor.health import HEALTHY, UNKNOWN, Health, human_age
from offsite.table import human_size

ICONS = {HEALTHY: "✅", UNKNOWN: "❔"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _label(text: str) -> str:
    return text.replace('"', "'")


def markdown(report: list[Health]) -> str:
    lines = [
        "## Backup health",
        "",
        "| target | status | last success | age | reason |",
        "|---|---|---|---:|---|",
    ]
    for h in report:
        when = h.last_success.strftime("%Y-%m-%d %H:%M UTC") if h.last_success else "never"
        link = f"[{_cell(h.target)}]({h.url})" if h.url.startswith("http") else _cell(h.target)
        age = human_age(h.age) if h.age is not None else ""
        icon = ICONS.get(h.status, "🚨")
        lines.append(f"| {link} | {icon} {h.status} | {when} | {age} | {_cell(h.reason)} |")
    for h in report:
        if len(h.sizes) >= 2:
            lines += ["", *chart(h)]
    return "\n".join(lines) + "\n"


def chart(h: Health) -> list[str]:
    unit, scale = "MiB", float(1 << 20)
    if max(h.sizes) < 1 << 20:
        unit, scale = "KiB", 1024.0
    values = ", ".join(f"{s / scale:.2f}" for s in h.sizes)
    labels = ", ".join(f'"{i - len(h.sizes) + 1}"' if i < len(h.sizes) - 1 else '"latest"'
                       for i in range(len(h.sizes)))  # fmt: skip
    top = max(h.sizes) / scale * 1.1 or 1
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{_label(h.target)}: backup size ({human_size(h.sizes[-1])} latest)"',
        f"    x-axis [{labels}]",
        f'    y-axis "{unit}" 0 --> {top:.2f}',
        f"    bar [{values}]",
        "```",
    ]
