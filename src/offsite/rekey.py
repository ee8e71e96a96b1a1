"""Key rotation (SPEC §2): a set's ``key.gpg`` re-wrapped to a new passphrase, the entries
untouched; with it, the set's drill records (their copy of ``key.gpg`` and their auth) and,
with ``--wal``, each WAL archive's ``key.gpg``.

Only what proves itself with the current key is re-wrapped: a planted set is reported and
left alone. Each ``key.gpg`` is replaced in two steps: the new one is created beside it
(``key.gpg.rekey``, create-if-absent: two rotations at once cannot both proceed) and
opened with the new passphrase, then written over ``key.gpg`` and the spare removed. Until
then the old ``key.gpg`` stays whole, so a run cut short leaves every set readable with
the old passphrase (run it again: a spare it finds that opens with the new one is used).
The data key itself never changes, so a base backup's record of its archive's key id
still holds and no entry is rewritten.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace

from offsite.crypto.gpg import throwaway_home
from offsite.crypto.keys import KEY_FILE, EncryptionConfig, unwrap_key, wrap_key
from offsite.errors import BadInput, CheckFailed, DecryptionFailed, OffsiteError
from offsite.github import gha
from offsite.sets import drill_records
from offsite.sets.stored import StoredSet, choose
from offsite.sets.trust import Verifier, auth_holds, read_small
from offsite.storage.base import Storage, put_bytes
from offsite.wal.archive import PREFIX, Archive

SPARE = ".rekey"  # key.gpg.rekey: the new wrap, until it replaces key.gpg


@dataclass
class RekeyResult:
    sets: list[str] = field(default_factory=list)  # set ids re-wrapped
    records: list[str] = field(default_factory=list)  # drill record keys re-sealed
    archives: list[str] = field(default_factory=list)  # wal/<system id> re-wrapped
    refused: list[str] = field(default_factory=list)  # what was left alone, and why


def _swap(storage: Storage, key: str, data_key: str, new: str) -> None:
    """``key`` (a ``key.gpg``) replaced by ``data_key`` wrapped with ``new``: the spare
    created beside it first and checked, then written over it."""
    spare = key + SPARE
    wrapped = read_small(storage, spare)
    if wrapped is None or not _opens(wrapped, new, data_key):
        if wrapped is not None:  # a spare that is not ours (planted, or another rotation)
            raise BadInput(f"{spare} is there and does not open with the new passphrase to "
                           "this key: another rekey running? remove it to go on")  # fmt: skip
        with throwaway_home() as home:  # no agent of the user's caches the new passphrase
            wrapped = wrap_key(data_key, EncryptionConfig("passphrase", passphrase=new), home, ())
        if not storage.create(spare, wrapped):
            raise BadInput(f"{spare} appeared while rekey ran: another rekey is running")
        if not _opens(wrapped, new, data_key):
            raise DecryptionFailed("-", KEY_FILE, "the new key.gpg does not open: nothing changed")
    put_bytes(storage, key, wrapped)
    storage.delete(spare)


def _opens(wrapped: bytes, passphrase: str, data_key: str) -> bool:
    try:
        return unwrap_key(wrapped, (), passphrase) == data_key
    except OffsiteError:
        return False


def rekey_sets(
    storage: Storage, verifier: Verifier, new: str, set_id: str | None, every: bool
) -> RekeyResult:
    """Re-wrap the chosen sets' ``key.gpg`` (and re-seal their drill records) to ``new``."""
    result = RekeyResult()
    listed = [o.key for o in storage.list(drill_records.PREFIX)]
    for stored in choose(storage, set_id, every, None):
        why = _rekeyable(verifier, stored)
        done_before = _opened_with(storage, stored, new) if why else None
        if done_before:
            result.sets.append(stored.id)  # re-wrapped by an earlier run cut short
            data_key = done_before
        elif why:
            result.refused.append(f"set {stored.id}: {why}")
            continue
        else:
            data_key = verifier.data_key(stored)
            _swap(storage, stored.key(KEY_FILE), data_key, new)
            result.sets.append(stored.id)
        # its drill records at once: a later set's failure must not leave them unsealed
        result.records += _reseal_records(storage, listed, stored.id, data_key)
    return result


def _opened_with(storage: Storage, stored: StoredSet, passphrase: str) -> str | None:
    """The set's data key, when its key.gpg opens with ``passphrase`` to the key its auth
    holds with; else None."""
    wrapped = read_small(storage, stored.key(KEY_FILE))
    if wrapped is None or stored.manifest.auth is None:
        return None
    try:
        key = unwrap_key(wrapped, (), passphrase)
    except OffsiteError:
        return None
    return key if auth_holds(stored.manifest, key) else None


def _rekeyable(verifier: Verifier, stored: StoredSet) -> str | None:
    """Why the set's key is not re-wrapped here; None when it is."""
    entries = stored.manifest.entries
    if not entries or any(e.encryption.mode != "set-key" for e in entries):
        return "its entries are not encrypted with a set data key (nothing to re-wrap)"
    if any(e.encryption.recipients for e in entries):
        return "made for recipients: rekey re-wraps a passphrase set's key"
    try:
        if not verifier.check(stored, True):
            return "only an --allow-… flag lets it in: rekey re-wraps what proves itself"
    except CheckFailed as exc:
        return exc.message()
    return None


def _reseal_records(storage: Storage, listed: list[str], set_id: str, data_key: str) -> list[str]:
    """Each drill record of the set sealed with its key: its copy of ``key.gpg`` replaced by
    the new wrap and its auth sealed again (the data key is the same). A record the key did
    not seal is not vouched for."""
    done = []
    wrapped = read_small(storage, f"{set_id}/{KEY_FILE}")
    for key, record_set, _ in drill_records.names(listed):
        if record_set != set_id or wrapped is None:
            continue
        try:
            with storage.open(key) as fh:
                record = drill_records.parse(fh.read(drill_records.MAX_RECORD + 1), key)
        except (OffsiteError, ValueError):
            continue
        fresh = replace(record, key_gpg=base64.b64encode(wrapped).decode()).sealed(data_key)
        if not record.holds(data_key) or fresh == record:
            continue  # never sealed with this set's key, or sealed already
        put_bytes(storage, key, fresh.to_json())
        done.append(key)
    return done


def rekey_archives(storage: Storage, old: str | None, new: str) -> list[str]:
    """Every WAL archive's ``key.gpg`` at this destination re-wrapped to ``new``."""
    done = []
    systems = sorted({o.key.split("/")[1] for o in storage.list(f"{PREFIX}/")
                      if o.key.count("/") == 2 and o.key.endswith("/" + KEY_FILE)})  # fmt: skip
    for system_id in systems:
        archive = Archive(storage, system_id, None)
        try:
            data_key = archive.data_key(old)
        except OffsiteError as exc:  # junk there, or another passphrase's: the others go on
            if _opens_archive(archive, new):
                done.append(f"{PREFIX}/{system_id}")  # re-wrapped by an earlier run
            else:
                gha.warn(f"left alone: the WAL archive {PREFIX}/{system_id}: {exc.message()}")
            continue
        if data_key is None:
            continue
        _swap(storage, f"{archive.folder}/{KEY_FILE}", data_key, new)
        done.append(f"{PREFIX}/{system_id}")
    return done


def _opens_archive(archive: Archive, passphrase: str) -> bool:
    try:
        return archive.data_key(passphrase) is not None
    except OffsiteError:
        return False
