"""zizmor's configuration: every exception it makes says why (issue 30), and no audit is
switched off whole. scripts/test runs zizmor itself, offline, over the repository and
each template."""

from __future__ import annotations

from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[2] / ".github" / "zizmor.yml"


def test_every_exception_says_why() -> None:
    lines = CONFIG.read_text(encoding="utf-8").splitlines()
    rules = yaml.safe_load("\n".join(lines))["rules"]
    for audit, rule in rules.items():
        assert set(rule) <= {"ignore", "config"}, f"{audit}: {set(rule)}"
        assert rule.get("disable") is None, f"{audit} is switched off whole"
    for number, line in enumerate(lines):
        stripped = line.strip()
        is_exception = stripped.startswith("- ") or (
            stripped.startswith('"') and "-pin" in stripped
        )
        if not is_exception:
            continue
        above = [ln.strip() for ln in lines[:number] if ln.strip()]
        block = []
        for previous in reversed(above):
            if previous.startswith("#"):
                block.append(previous)
                continue
            if previous.startswith("- ") or previous.startswith('"'):
                continue  # the entries of one exception share its comment
            break
        assert block, f"line {number + 1} ({stripped}) says not why"
