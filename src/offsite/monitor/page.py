"""The status page (``monitor --html PATH``): one self-contained HTML file, with no
script, style sheet, font or image from elsewhere (GitHub Pages may publish it; a
browser opens it from disk). A row per target: its state, newest backup, the largest gap
against the RPO, the newest drill against the RTO, and the size over time as an inline
SVG chart; links to the runs. Every name in it comes from GitHub or a destination, so
every one is escaped, and only http(s) addresses become links.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape

from offsite.monitor.health import HEALTHY, UNKNOWN, Health, Thresholds, human_age, human_seconds
from offsite.table import counted, human_size

NONE = "&#8211;"  # an en dash: nothing to show

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem;margin:0 0 .2rem}p.meta{color:#59636e;margin:0 0 1.2rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.5rem .6rem;
border-bottom:1px solid #d1d9e0;vertical-align:top}th{font-weight:600;background:#f6f8fa}
.state{display:inline-block;padding:.1rem .55rem;border-radius:1rem;font-weight:600;
font-size:.85rem}.healthy{background:#dafbe1;color:#116329}.unhealthy{background:#ffebe9;
color:#a40e26}.unknown{background:#fff8c5;color:#7d4e00}.over{color:#a40e26;font-weight:600}
ul.why{margin:.3rem 0 0;padding-left:1.1rem;color:#59636e}a{color:#0969da}
svg{display:block}
"""


def _link(text: str, url: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{escape(url, quote=True)}">{escape(text)}</a>'
    return escape(text)


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    stamp = moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{escape(stamp)}<br><small>{human_age(now - moment)} ago</small>"


def _gap(h: Health, t: Thresholds) -> str:
    if h.gap is None:
        return NONE
    length = h.gap.length
    shown = human_age(length)
    if t.rpo is None:
        return escape(shown)
    over = length > t.rpo
    mark = ' class="over"' if over else ""
    return f"<span{mark}>{escape(shown)}</span> / RPO {escape(human_age(t.rpo))}"


def _drill(h: Health, t: Thresholds, now: datetime) -> str:
    d = h.drill
    if d is None:
        return "none recorded"
    over = t.rto is not None and d.rto_seconds > t.rto.total_seconds()
    rto = f"RTO {human_seconds(d.rto_seconds)}"
    if t.rto is not None:
        rto += f" / {human_seconds(t.rto.total_seconds())}"
    mark = ' class="over"' if over or not d.ok else ""
    label = "" if d.verified else " <small>(unverified)</small>"
    result = "passed" if d.ok else "FAILED"
    return (f"<span{mark}>{result}, {escape(rto)}</span>{label}<br>"
            f"<small>{human_age(now - d.when)} ago</small>")  # fmt: skip


def chart(points: Sequence[tuple[datetime, int]], width: int = 220, height: int = 48) -> str:
    """Sizes over time as an inline SVG line, with its newest size."""
    if len(points) < 2:
        return escape(human_size(points[-1][1])) if points else NONE
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    top = max(size for _, size in points) or 1
    span = (t1 - t0) or 1.0
    xy = [(4 + (width - 8) * (when.timestamp() - t0) / span,
           height - 4 - (height - 8) * size / top) for when, size in points]  # fmt: skip
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    title = escape(f"{len(points)} backups, newest {human_size(points[-1][1])}")
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2"/>' for x, y in xy[-1:])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img"><title>{title}</title>'
            f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{line}"/>'
            f'<g fill="#0969da">{dots}</g></svg>'
            f"<small>{escape(human_size(points[-1][1]))}</small>")  # fmt: skip


def render(report: Sequence[Health], t: Thresholds, now: datetime, title: str = "Backups") -> str:
    healthy = sum(h.status == HEALTHY for h in report)
    rows = []
    for h in report:
        state = h.status if h.status in (HEALTHY, UNKNOWN) else "unhealthy"
        why = "".join(f"<li>{escape(r)}</li>" for r in h.reasons)
        rows.append(
            "<tr>"
            f'<td><span class="state {state}">{escape(h.status)}</span></td>'
            f"<td>{_link(h.target, h.url)}"
            f"{f'<ul class=why>{why}</ul>' if why else ''}</td>"
            f"<td>{_when(h.last_success, now)}</td>"
            f"<td>{_gap(h, t)}</td>"
            f"<td>{_drill(h, t, now)}</td>"
            f"<td>{chart(h.history)}</td>"
            "</tr>"
        )
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    targets = counted(len(report), "target")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}: {healthy} of {len(report)} healthy</title>
<style>{STYLE}</style></head>
<body><h1>{escape(title)}</h1>
<p class="meta">{healthy} of {escape(targets)} healthy · checked {escape(stamp)} by
offsite monitor · window {escape(human_age(t.window))}</p>
<table><thead><tr><th>state</th><th>target</th><th>newest backup</th>
<th>largest gap</th><th>newest drill</th><th>size over time</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
