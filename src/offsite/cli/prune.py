"""offsite prune DEST --keep-..."""

from __future__ import annotations

import os
import re
from typing import Callable

import click

from offsite.cli.options import F, emit_json, json_option, option, read_storage_options
from offsite.cli.reading import reading_options
from offsite.config import Config
from offsite.durations import parse_duration
from offsite.errors import BadInput, OperationFailed
from offsite.github import gha
from offsite.prune import run_prune
from offsite.sets.retention import Policy
from offsite.sets.stored import scan, wrong_passphrase
from offsite.sets.trust import TrustConfig, Verifier
from offsite.storage import open_storage
from offsite.storage.settings import StorageSettings
from offsite.table import counted, markdown, render
from offsite.urls import redact


def _keep(period: str, what: str) -> Callable[[F], F]:
    return option(f"--keep-{period}", type=int, default=0, metavar="N", help=f"Keep {what}.")


def configured_policy(config: Config) -> Policy:
    """The policy a configuration file's ``retention:`` states (``keep-daily: 7``, …)."""
    retention = config.settings(os.environ).retention  # ${VAR} expanded here, where used
    counts: dict[str, int] = {}
    for key, value in retention.items():
        if key == "keep-within":
            continue
        if not re.fullmatch(r"[0-9]+", value.strip()):
            raise BadInput(f"{config.path}: retention.{key}: a whole number, not {value!r}")
        counts[key[len("keep-") :]] = int(value)
    within = retention.get("keep-within")
    return Policy(**counts, within=parse_duration(within) if within else None)


@click.command("prune", short_help="Remove the sets no retention rule keeps.")
@reading_options
@_keep("last", "the N newest sets")
@_keep("hourly", "the newest set of each of the last N hours that have one")
@_keep("daily", "the newest set of each of the last N days that have one")
@_keep("weekly", "the newest set of each of the last N ISO weeks that have one")
@_keep("monthly", "the newest set of each of the last N months that have one")
@_keep("yearly", "the newest set of each of the last N years that have one")
@option("--keep-within", metavar="DURATION", help="Keep every set within DURATION of the newest.")
@option("--dry-run", is_flag=True, help="Show what would be kept and removed; change nothing.")
@read_storage_options
@json_option
def command(
    dest: str,
    config: Config | None,
    keep_last: int,
    keep_hourly: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    keep_yearly: int,
    keep_within: str | None,
    dry_run: bool,
    trust: TrustConfig,
    as_json: bool,
    storage: StorageSettings,
) -> int:
    """Remove backup sets from DEST that no --keep rule keeps (restic's forget rules).

    Rules are ORed; --keep-within counts back from the newest set. Incomplete sets (no
    manifest) older than a day are removed too. A policy that keeps nothing is refused.
    A diff counts like a full set and keeps its base (said as "base of ID"); a diff whose
    base is gone or another is removed and named.
    With --config and no --keep option, the file's `retention:` is the policy.
    """
    policy = Policy(
        last=keep_last,
        hourly=keep_hourly,
        daily=keep_daily,
        weekly=keep_weekly,
        monthly=keep_monthly,
        yearly=keep_yearly,
        within=parse_duration(keep_within) if keep_within else None,
    )
    if policy.empty and config is not None and config.retention:
        policy = configured_policy(config)
    opened = open_storage(dest, storage)
    with Verifier(opened, trust) as verifier:  # with a key, only sets that prove it count
        found = scan(opened)
        if trust.passphrase and (unopened := verifier.unopened(found.current())):
            raise wrong_passphrase(unopened)  # not "0 kept, removed 0": nothing was judged
        result = run_prune(opened, policy, dry_run, check=verifier.check, found=found)
    verb = "would remove" if dry_run else "removed"
    table = [(d.set_id, ", ".join(d.reasons) if d.keep else verb) for d in result.plan.decisions]
    title = (f"### offsite prune `{redact(dest)}`{' (dry run)' if dry_run else ''}: "
             f"{len(result.plan.keep)} kept, {verb} {len(result.plan.remove)}")  # fmt: skip
    gha.append_summary(title + "\n\n" + markdown(("set", "decision"), table))
    if as_json:
        emit_json(
            {
                "dry_run": dry_run,
                "sets": [
                    {"id": d.set_id, "keep": d.keep, "reasons": list(d.reasons)}
                    for d in result.plan.decisions
                ],
                "incomplete_removed": result.incomplete,
                "failures": result.failures,
                "interrupted_uploads_aborted": result.uploads,
                "untouched": result.untouched,
                "wal_removed": result.wal,
                "broken_diffs": result.broken,
            }
        )
    else:
        rows = [
            (d.set_id, ", ".join(d.reasons) if d.keep else "remove") for d in result.plan.decisions
        ]
        rows += [
            (p.rstrip("/"), "remove (incomplete, older than a day)") for p in result.incomplete
        ]
        click.echo(render(("set", "kept because" if rows else ""), rows))
        click.echo(
            f"{len(result.plan.keep)} kept, {verb} {len(result.plan.remove)} "
            f"and {len(result.incomplete)} incomplete"
            + (
                f", {'would abort' if dry_run else 'aborted'} "
                f"{counted(len(result.uploads), 'interrupted upload')}"
                if result.uploads
                else ""
            )
        )
    if result.wal:
        verb = "would remove" if dry_run else "removed"
        click.echo(f"{verb} {counted(len(result.wal), 'WAL file')} no kept base backup needs")
    for why in result.untouched:
        gha.warn(f"not counted nor removed: set {why}")
    for why in result.broken:  # a diff is no restore point without its base (SPEC §10)
        gha.warn(f"{'would remove' if dry_run else 'removed'} {why}")
    for failure in result.failures:
        click.echo(f"offsite: could not remove {failure}", err=True)
    if result.failures:
        raise OperationFailed(f"{counted(len(result.failures), 'set')} could not be removed")
    return 0
