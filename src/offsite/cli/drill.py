"""offsite drill DEST --into SCRATCH_TARGET"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

import click

from offsite.cli.options import emit_json, json_option, option, read_storage_options
from offsite.cli.reading import Which, reading_options, restore_options, which_options
from offsite.config import Config
from offsite.drill import DrillReport, record, run_drill
from offsite.errors import OffsiteError
from offsite.github import gha
from offsite.restore import RestoreRequest
from offsite.sets.trust import TrustConfig
from offsite.sources import RestoreOptions
from offsite.storage.settings import StorageSettings
from offsite.stream.progress import Progress
from offsite.table import human_duration, human_size, render


@click.command("drill", short_help="Restore into a scratch target, check it, time it (RTO).")
@reading_options
@which_options("Drill")
@option("--into", required=True, metavar="SCRATCH_TARGET", help="A scratch target to restore into.")
@option("--no-record", is_flag=True,
        help="Do not store the drill's result in DEST/drills/ (the monitor reads it).")  # fmt: skip
@option("--sign-key", metavar="KEY",
        help="Sign the drill's record with this key of your keyring (<record>.json.sig): "
        "what proves a drill of a set made for recipients (monitor --trust-key).")  # fmt: skip
@option("--pushgateway", metavar="URL",
        help="Push the drill's metrics (RTO, time, result) to a Pushgateway.")  # fmt: skip
@restore_options
@read_storage_options
@json_option
def command(
    dest: str,
    config: Config | None,
    which: Which,
    into: str,
    entry: str | None,
    no_record: bool,
    sign_key: str | None,
    pushgateway: str | None,
    options: RestoreOptions,
    trust: TrustConfig,
    as_json: bool,
    storage: StorageSettings,
) -> int:
    """Restore a set into SCRATCH_TARGET, check it, and report the time it took (the RTO).

    Checks rows per table against the manifest (PostgreSQL, MySQL, SQLite), the engine's
    integrity check (pg_amcheck where amcheck installs, CHECK TABLE, PRAGMA
    integrity_check, redis-check-rdb), and files and bytes for folders. Exit 1 on any
    mismatch.
    """
    options = replace(options, archive=dest, passphrase_file=trust.passphrase_file)
    request = RestoreRequest(
        source=dest,
        into=into,
        set_id=which.set_id,
        entry=entry,
        options=options,
        trust=trust,
        storage=storage,
    )
    report = run_drill(request, Progress(enabled=not as_json))
    code = 0 if report.ok else 1
    recorded = None
    if not no_record:
        try:
            recorded = record(report, into, dest, storage, sign_key=sign_key,
                              passphrase=trust.passphrase)  # fmt: skip
        except OffsiteError as exc:  # the drill itself stands: its record is the monitor's
            gha.warn(f"the drill's record was not stored: {exc.message()}")
    if pushgateway:
        from offsite.monitor.metrics import push_run

        problem = push_run(pushgateway, "offsite_drill", (dest,), {
            "offsite_drill_rto_seconds": report.seconds,
            "offsite_drill_timestamp_seconds": time.time(),
            "offsite_drill_success": float(report.ok),
        })  # fmt: skip
        if problem:
            gha.warn(problem)
    gha.append_summary(_markdown(report))
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "set_id": report.set_id,
                "restore_seconds": round(report.seconds, 3),
                "record": recorded,
                "entries": [asdict(e) | {"ok": e.ok} for e in report.entries],
            }
        )
        return code
    rows = [
        (e.entry, e.kind, human_size(e.size), human_duration(e.restore_seconds),
         str(e.tables), "ok" if e.ok else "MISMATCH")
        for e in report.entries
    ]  # fmt: skip
    click.echo(f"drill of set {report.set_id}")
    click.echo(
        render(("entry", "kind", "size", "restore", "tables", "result"), rows, right=(2, 3, 4))
    )
    for e in report.entries:
        click.echo(f"  {e.entry}: checked {', '.join(e.checks) or 'nothing'}")
        for line in e.mismatches:
            click.echo(f"offsite: drill mismatch in {e.entry}: {line}", err=True)
    verdict = "passed" if report.ok else "FAILED"
    click.echo(f"drill {verdict}; measured restore time (RTO): {human_duration(report.seconds)}")
    if recorded:
        click.echo(f"recorded as {recorded}")
    return code


def _markdown(report: DrillReport) -> str:
    lines = [
        f"### Restore drill of set `{report.set_id}`: {'passed' if report.ok else 'FAILED'}",
        "",
        f"Measured restore time (RTO): **{human_duration(report.seconds)}**",
        "",
        "| entry | kind | size | restore | tables | result |",
        "|---|---|---:|---:|---:|---|",
    ]
    for e in report.entries:
        result = "ok" if e.ok else "mismatch: " + "; ".join(e.mismatches)
        lines.append(
            f"| {e.entry} | {e.kind} | {human_size(e.size)} | "
            f"{human_duration(e.restore_seconds)} | {e.tables} | {result} |"
        )
    return "\n".join(lines)
