"""Alerts to chat webhooks: Slack, Discord, Microsoft Teams (an Adaptive Card, which
Workflows webhooks accept since Office 365 connectors were retired) and plain JSON.

Each message says what is wrong, since when, and links the run. Payloads stay inside
each service's documented limits (Slack: a 3,000-character section, 50 blocks;
Discord: 2,000 characters of content, 10 embeds of at most 25 fields, 6,000 characters
in all; Teams: 28 KB). Sending retries (``monitor.posting``); a webhook that still
fails is returned as a failure for the caller to report.

Text from outside (names, states, error lines: a hostile API answer or a planted object
may have written them) is escaped for each format, so it can neither mention (Slack's
``<!channel>``, Discord's ``@everyone``) nor hide a link behind other words; a message links
only to http(s) addresses on GitHub's own hosts (the server and the API's).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from offsite.errors import BadInput
from offsite.monitor.health import HEALTHY, UNKNOWN, Health, human_age
from offsite.monitor.posting import post
from offsite.table import counted

FORMATS = ("auto", "slack", "discord", "teams", "json")
COLOURS = {HEALTHY: 0x2EB67D, UNKNOWN: 0xECB22E}
RED = 0xE01E5A
JSON = "application/json; charset=utf-8"


def detect_format(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack"
    if host in ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"):
        return "discord"
    if host.endswith((".webhook.office.com", ".logic.azure.com", ".powerplatform.com",
                      ".powerautomate.com")):  # fmt: skip
        return "teams"
    return "json"


def shown(url: str) -> str:
    """A webhook's address without its secret path, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…"


def _inert(text: str) -> str:
    """``@`` and ``](`` broken apart (a zero-width space): no renderer, whatever escapes
    it ignores, makes a mention or a link of them."""
    return text.replace("@", "@\u200b").replace("](", "]\u200b(")


def slack_text(text: str) -> str:
    """Slack's mrkdwn control characters as entities: no ``<!here>``, no ``<url|words>``."""
    return _inert(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MARKDOWN = re.compile(r"([\\`*_~|<>\[\]()#])")


def discord_text(text: str) -> str:
    """Discord's markdown escaped (and the payload's ``allowed_mentions`` names none)."""
    return _MARKDOWN.sub(r"\\\1", _inert(text))


def teams_text(text: str) -> str:
    """An Adaptive Card's markdown (a CommonMark subset) escaped."""
    return _MARKDOWN.sub(r"\\\1", _inert(text))


def github_link(url: str) -> str | None:
    """``url`` when it is an http(s) address on GitHub's own hosts, else None."""
    from offsite.github import env as github_env

    parts = urlsplit(url)
    hosts = {urlsplit(github_env.server_url()).hostname, urlsplit(github_env.api_url()).hostname}
    if parts.scheme not in ("https", "http") or parts.hostname not in hosts:
        return None
    if any(c in url for c in '<>|"\\ \t\r\n'):
        return None
    return url


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _headline(h: Health) -> str:
    if h.status == HEALTHY:
        return f"✅ {h.target}: backups healthy again"
    if h.status == UNKNOWN:
        return f"❔ {h.target}: could not be checked"
    return f"🚨 {h.target}: backups unhealthy"


def _detail(h: Health, limit: int = 1000) -> str:
    """What is wrong (cut to fit ``limit``), then since when: the date always shows."""
    since = f"last success {_when(h.last_success)}"
    if h.age is not None:
        since += f" ({human_age(h.age)} ago)"
    return f"{_cut(h.reason, limit - len(since) - 3)}. {since}."


def _title(alerts: list[Health]) -> str:
    bad = [h for h in alerts if h.status != HEALTHY]
    if not bad:
        return f"offsite: {counted(len(alerts), 'backup target')} recovered"
    verb = "needs" if len(bad) == 1 else "need"
    return f"offsite: {counted(len(bad), 'backup target')} {verb} attention"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack(alerts: list[Health]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(_title(alerts), 150)}}
    ]
    for h in alerts[:48]:
        url = github_link(h.url)
        link = f" <{url}|run>" if url else ""
        head = f"*{slack_text(_cut(_headline(h), 300))}*\n"
        detail = _cut(
            slack_text(_detail(h, 3000 - len(head) - len(link))), 3000 - len(head) - len(link)
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": head + detail + link}})
    if len(alerts) > 48:
        more = f"… and {len(alerts) - 48} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    fallback = "\n".join(f"{_headline(h)}: {h.reason}" for h in alerts)
    return {"text": _cut(slack_text(fallback), 3000), "blocks": blocks}


def discord(alerts: list[Health]) -> dict[str, Any]:
    embeds: list[dict[str, Any]] = []
    budget = 6000 - len(_title(alerts))
    for h in alerts[:10]:
        embed: dict[str, Any] = {
            "title": _cut(discord_text(_headline(h)), 256),
            "description": _cut(discord_text(_detail(h)), 4096),
            "color": COLOURS.get(h.status, RED),
        }
        url = github_link(h.url)
        if url:
            embed["url"] = url
        cost = len(embed["title"]) + len(embed["description"])
        if cost > budget:
            break
        budget -= cost
        embeds.append(embed)
    return {"content": _cut(_title(alerts), 2000), "embeds": embeds,
            "allowed_mentions": {"parse": []}}  # fmt: skip


def teams(alerts: list[Health]) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _title(alerts), "weight": "Bolder", "size": "Medium",
         "wrap": True}
    ]  # fmt: skip
    actions: list[dict[str, Any]] = []
    for h in alerts[:20]:
        body.append({"type": "TextBlock", "text": teams_text(_headline(h)), "weight": "Bolder",
                     "wrap": True})  # fmt: skip
        body.append({"type": "TextBlock", "text": teams_text(_detail(h)), "wrap": True})
        url = github_link(h.url)
        if url and len(actions) < 4:
            actions.append({"type": "Action.OpenUrl", "title": f"Open {h.target}"[:60],
                            "url": url})  # fmt: skip
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
             "content": card}
        ],
    }  # fmt: skip


def plain(alerts: list[Health]) -> dict[str, Any]:
    return {
        "source": "offsite",
        "title": _title(alerts),
        "targets": [
            {
                "target": h.target, "status": h.status, "reasons": h.reasons,
                "last_success": h.last_success.isoformat() if h.last_success else None,
                "age_seconds": int(h.age.total_seconds()) if h.age is not None else None,
                "url": h.url, "failures": h.failures, "sizes": h.sizes,
                "largest_gap": None if h.gap is None else {
                    "seconds": int(h.gap.length.total_seconds()),
                    "from": h.gap.start.isoformat(),
                    "to": None if h.gap.open else h.gap.end.isoformat(),
                },
                "drill": None if h.drill is None else {
                    "set_id": h.drill.set_id, "at": h.drill.when.isoformat(),
                    "rto_seconds": h.drill.rto_seconds, "ok": h.drill.ok,
                    "verified": h.drill.verified,
                },
            }
            for h in alerts
        ],
    }  # fmt: skip


BUILDERS = {"slack": slack, "discord": discord, "teams": teams, "json": plain}


def payload(fmt: str, url: str, alerts: list[Health]) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise BadInput(f"--webhook-format is one of {', '.join(FORMATS)}, not {fmt!r}")
    return BUILDERS[detect_format(url) if fmt == "auto" else fmt](alerts)


@dataclass(frozen=True)
class Delivery:
    url: str
    ok: bool
    detail: str


def send(url: str, body: dict[str, Any]) -> Delivery:
    problem = post(url, json.dumps(body).encode(), JSON)
    return Delivery(url, problem is None, problem or "delivered")
