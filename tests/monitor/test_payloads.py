"""Webhook payloads in each service's documented shape and limits
(shared/reference/webhook-payloads.md), and the step summary's Markdown and Mermaid."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from offsite.monitor import alerts, notify, summary
from offsite.monitor.health import HEALTHY, UNHEALTHY, UNKNOWN, Health

NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


def health(i: int, status: str = UNHEALTHY, reason: str = "last success 3d ago") -> Health:
    return Health(f"octo-org/repo-{i} backup.yml", status, [reason] if status != HEALTHY else [],
                  NOW - timedelta(days=3), timedelta(days=3),
                  f"https://github.com/octo-org/repo-{i}/actions/runs/{i}",
                  history=[(NOW - timedelta(days=d), s) for d, s in ((5, 5 << 20), (4, 4 << 20), (3, 1 << 20))])  # fmt: skip


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        ("https://hooks.slack.com/services/T0/B0/x", "slack"),
        ("https://discord.com/api/webhooks/1/abc", "discord"),
        (
            "https://prod-01.westus.logic.azure.com:443/workflows/x/triggers/manual/paths/invoke",
            "teams",
        ),
        ("https://contoso.webhook.office.com/webhookb2/x", "teams"),
        ("https://example.com/hook", "json"),
    ],
)
def test_format_by_host(url: str, fmt: str) -> None:
    assert alerts.detect_format(url) == fmt


@pytest.mark.parametrize("count", [1, 60])
def test_slack(count: int) -> None:
    body = alerts.slack([health(i, reason="x" * 5000) for i in range(count)])
    assert body["text"] and len(body["text"]) <= 40_000
    assert len(body["blocks"]) <= 50
    for block in body["blocks"]:
        if block["type"] == "section":
            assert block["text"]["type"] == "mrkdwn" and len(block["text"]["text"]) <= 3000
            assert "<https://github.com/octo-org/" in block["text"]["text"]  # links the run
    assert (
        "since" not in body
        and "last success 2026-11-19 12:00 UTC" in body["blocks"][1]["text"]["text"]
    )


@pytest.mark.parametrize("count", [1, 30])
def test_discord(count: int) -> None:
    body = alerts.discord([health(i, reason="y" * 3000) for i in range(count)])
    assert 0 < len(body["content"]) <= 2000
    assert 1 <= len(body["embeds"]) <= 10
    total = len(body["content"])
    for embed in body["embeds"]:
        assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
        assert embed["url"].startswith("https://github.com/") and isinstance(embed["color"], int)
        total += len(embed["title"]) + len(embed["description"])
    assert total <= 6000


def test_teams_adaptive_card() -> None:
    body = alerts.teams([health(i) for i in range(30)])
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] and card["body"]
    assert all(b["type"] == "TextBlock" and b["text"] for b in card["body"])
    assert len(card["actions"]) <= 4 and card["actions"][0]["type"] == "Action.OpenUrl"
    assert len(json.dumps(body).encode()) < 28 * 1024


def test_json_and_recovery_wording() -> None:
    body = alerts.plain([health(1, HEALTHY)])
    assert body["source"] == "offsite" and "recovered" in body["title"]
    (t,) = body["targets"]
    assert t["status"] == "healthy" and t["age_seconds"] == 3 * 86400 and t["sizes"][-1] == 1 << 20
    assert (
        "could not be checked" in alerts.slack([health(2, UNKNOWN, "GitHub answered 502")])["text"]
    )


def test_notify_decisions() -> None:
    bad, good = health(1), health(1, HEALTHY)
    assert notify.to_notify({}, [bad], "change") == [bad]
    assert notify.to_notify({bad.target: UNHEALTHY}, [bad], "change") == []
    assert notify.to_notify({bad.target: UNHEALTHY}, [good], "change") == [good]
    assert notify.to_notify({}, [good], "change") == []
    assert notify.to_notify({bad.target: UNHEALTHY}, [bad], "failure") == [bad]
    assert notify.to_notify({}, [good], "always") == [good]


XY_LINE = re.compile(
    r'^(xychart-beta|    title "[^"]*"|    x-axis \[("[^"]*"(, "[^"]*")*)\]|'
    r'    y-axis "[^"]*" \d+(\.\d+)? --> \d+(\.\d+)?|    (bar|line) \[(\d+(\.\d+)?(, \d+(\.\d+)?)*)\])$'
)


def test_summary_table_and_mermaid_grammar() -> None:
    text = summary.markdown([health(1), health(2, HEALTHY), health(3, UNKNOWN, "a | b")])
    lines = text.splitlines()
    header = lines.index("| target | status | last success | age | reason |")
    rows = lines[header + 2 : header + 5]
    assert all(r.count(" | ") == 4 and r.startswith("| [octo-org/") for r in rows), rows
    assert "a \\| b" in rows[2]
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    for block in blocks:
        body = block.strip().splitlines()
        assert body[0] == "xychart-beta"
        assert all(XY_LINE.match(line) for line in body), body
        labels = re.search(r"x-axis \[(.*)\]", block).group(1).split(", ")  # type: ignore[union-attr]
        values = re.search(r"bar \[(.*)\]", block).group(1).split(", ")  # type: ignore[union-attr]
        assert len(labels) == len(values) == 3 and values[-1] == "1.00"


HOSTILE = (
    "<!channel> <!here> @everyone <@123> <https://evil.example|https://github.com/"
    "settings/keys> [GitHub](https://evil.example/steal)"
)


def _texts(body: object) -> list[str]:
    """Every string in a payload."""
    if isinstance(body, str):
        return [body]
    if isinstance(body, dict):
        return [t for v in body.values() for t in _texts(v)]
    if isinstance(body, list):
        return [t for v in body for t in _texts(v)]
    return []


@pytest.mark.parametrize("fmt", ["slack", "discord", "teams"])
def test_text_from_outside_neither_mentions_nor_hides_a_link(fmt: str) -> None:
    """Issue 30, case 7: names, states and error lines come from an API answer or a
    destination; in a chat they must not ping a channel or disguise a link."""
    hostile = Health(f"octo-org/{HOSTILE}", UNHEALTHY, [HOSTILE], NOW - timedelta(days=3),
                     timedelta(days=3), "https://evil.example/runs/1")  # fmt: skip
    good = health(1)
    body = alerts.payload(fmt, "https://example.com/hook", [hostile, good])
    text = "\n".join(_texts(body))
    for marker in ("<!channel>", "<!here>", "@everyone", "<@123>", "<https://evil",
                   "](https://evil"):  # fmt: skip
        # markup left working: not escaped (an entity, or a backslash before it)
        assert not re.search(r"(?<!\\)" + re.escape(marker), text), (fmt, marker)
    links = [t for t in _texts(body) if t.startswith("https://")] + re.findall(
        r"<(https://[^|>]+)\|", text
    )
    assert "https://evil.example/runs/1" not in links  # a link only to GitHub's own hosts
    assert any(link.startswith("https://github.com/octo-org/repo-1/") for link in links)
    if fmt == "discord":
        assert body["allowed_mentions"] == {"parse": []}
