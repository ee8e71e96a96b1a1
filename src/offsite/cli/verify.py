"""offsite verify DEST"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import click

from offsite.cli.options import emit_json, json_option, option, storage_options
from offsite.cli.reading import Which, reading_options, which_options
from offsite.config import Config
from offsite.errors import BadInput, CheckFailed, NoSets
from offsite.github import gha
from offsite.sets.stored import StoredSet, choose, scan, wrong_passphrase
from offsite.sets.trust import TrustConfig, Verifier, older
from offsite.sets.trust import seal as seal_set
from offsite.storage import Storage, open_storage
from offsite.storage.settings import StorageSettings
from offsite.stream.progress import Progress
from offsite.table import counted, entries, markdown, render
from offsite.urls import redact
from offsite.verify import EntryCheck, Subset, exit_code, verify_sets


def _seal(
    storage: Storage,
    sets: list[StoredSet],
    others: list[StoredSet],
    checks: list[EntryCheck],
    trust: TrustConfig,
    proves: Callable[[StoredSet], bool],
) -> list[EntryCheck]:
    """Seal each older set whose every entry was read and decrypted; a refusal is a
    failed check of that set."""
    failed: list[EntryCheck] = []
    for stored in sets:
        mine = [c for c in checks if c.set_id == stored.id]
        if not older(stored) or not mine or not all(c.ok and c.decrypted for c in mine):
            continue
        assert trust.passphrase is not None
        try:
            seal_set(storage, stored, others, trust.passphrase, proves)
        except CheckFailed as exc:
            failed.append(EntryCheck.of_set(stored.id, exc.message(), "(seal)"))
            continue
        gha.warn(f"sealed set {stored.id}: it carries a data key and auth now")
    return failed


def _proves(verifier: Verifier, stored: StoredSet) -> bool:
    """Whether the set proves itself, no flag lowered."""
    try:
        return verifier.check(stored, True)
    except CheckFailed:
        return False


@click.command("verify", short_help="Check that sets are whole: sizes, or every byte.")
@reading_options
@which_options("Verify", every=True)
@option("--read-data", is_flag=True, help="Read, hash, decrypt and decompress every byte.")
@option(
    "--read-data-subset", metavar="N/T", help="Read the data of the N-th of T shares of entries."
)
@option(
    "--wal",
    is_flag=True,
    help="Check the WAL archive instead: every kept base backup reaches the newest archived "
    "WAL file (with --read-data: every file it needs decrypts and matches).",
)
@option(
    "--seal",
    is_flag=True,
    help="With --read-data: give older sets (no auth) whose every entry decrypted with the "
    "passphrase a data key and auth, so they prove their id from then on.",
)
@storage_options
@json_option
def command(
    dest: str,
    config: Config | None,
    which: Which,
    read_data: bool,
    read_data_subset: str | None,
    seal: bool,
    wal: bool,
    trust: TrustConfig,
    as_json: bool,
    storage: StorageSettings,
) -> int:
    """Check that backup sets in DEST are whole.

    Without --read-data: every stored file exists with the manifest's size. With it: every
    byte is read, its SHA-256 compared with the manifest, decrypted and decompressed.
    Exit 1 when a check fails, naming the set and entry; with --all, a set whose manifest
    offsite refuses, or that does not prove it was made with your key, is a failed check.
    """
    set_id, every = which.set_id, which.every
    if read_data and read_data_subset:
        raise BadInput("choose one of --read-data and --read-data-subset")
    subset = Subset.parse(read_data_subset) if read_data_subset else None
    if seal and not (read_data and trust.passphrase):
        raise BadInput("--seal needs --read-data and the passphrase")
    opened = open_storage(dest, storage)
    if wal:
        return _verify_wal(opened, read_data, trust, as_json)
    with Verifier(opened, trust) as verifier:
        found = scan(opened) if every else None
        sets = found.sets if found else choose(opened, set_id, every, verifier.check)
        if found and not sets and not found.invalid:
            raise NoSets(opened.url)
        if unopened := verifier.unopened(found.current() if found else sets):
            raise wrong_passphrase(unopened)
        checks = verify_sets(
            opened, sets, read_data, subset, verifier, Progress(enabled=not as_json)
        )
        if seal:  # a copy is looked for among every set, not only the ones verified
            every_set = found.sets if found else scan(opened).sets
            checks += _seal(opened, sets, every_set, checks, trust,
                            lambda s: _proves(verifier, s))  # fmt: skip
    if found:  # a manifest offsite refuses is a failed check of its set, named
        checks += [EntryCheck.of_set(i.id, i.reason) for i in found.invalid]
    code = exit_code(checks)
    bad = sum(not c.ok for c in checks)
    table = [(c.set_id, c.entry, "data" if c.read_data else "size",
              "ok" if c.ok else f"FAILED: {c.problem or ''}") for c in checks]  # fmt: skip
    title = f"### offsite verify `{redact(opened.url)}`: {len(checks) - bad} of {len(checks)} ok"
    gha.append_summary(title + "\n\n" + markdown(("set", "entry", "checked", "result"), table))
    if as_json:
        emit_json({"ok": code == 0, "checks": [asdict(c) for c in checks]})
        return code

    def what(c: EntryCheck) -> str:
        if not c.read_data:
            return "size"
        return "data, decrypted" if c.decrypted else "sha256 only (no key to decrypt)"

    rows = [(c.set_id, c.entry, what(c), "ok" if c.ok else "FAILED") for c in checks]
    click.echo(render(("set", "entry", "checked", "result"), rows))
    for c in checks:
        if not c.ok:
            click.echo(f"offsite: {gha.printable(c.problem or '')}", err=True)
    click.echo(f"{len(checks) - bad} of {entries(len(checks))} ok in "
               f"{counted(len(sets), 'set')}")  # fmt: skip
    return code


def _verify_wal(opened: Storage, read_data: bool, trust: TrustConfig, as_json: bool) -> int:
    """verify --wal: each archive the kept base backups use, named problem by problem."""
    from offsite.wal.keycache import default_cache
    from offsite.wal.verify import check_archives

    with Verifier(opened, trust) as verifier:
        sets = []
        for stored in scan(opened).sets:
            try:
                verifier.check(stored, False)
            except CheckFailed as exc:
                gha.warn(f"not counted: set {stored.id}: {exc.message()}")
                continue
            sets.append(stored)
    checks = check_archives(opened, sets, read_data, trust.passphrase, default_cache())
    if not checks:
        raise BadInput(f"no set in {opened.url} holds a base backup (offsite backup --physical)")
    code = 0 if all(c.ok for c in checks) else CheckFailed.exit_code
    if as_json:
        emit_json({"ok": code == 0, "wal": [asdict(c) for c in checks]})
        return code
    rows = [
        (c.system_id, str(c.files), c.newest or "-",
         c.newest_stored.isoformat(timespec="seconds") if c.newest_stored else "-",
         str(len(c.bases)), "ok" if c.ok else "FAILED")
        for c in checks
    ]  # fmt: skip
    click.echo(render(("system id", "files", "newest", "stored", "base backups", "result"), rows))
    for c in checks:
        for problem in c.problems:
            click.echo(f"offsite: {gha.printable(problem)}", err=True)
    return code
