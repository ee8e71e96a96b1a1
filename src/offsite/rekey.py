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
from offsite.errors import BadInput, CheckFailed, DecryptionFailed, ObjectMissing, OffsiteError
from offsite.sets import drill_records
from offsite.sets.stored import StoredSet, choose
from offsite.sets.trust import Verifier
from offsite.storage.base import Storage, put_bytes
from offsite.wal.archive import PREFIX, Archive

SPARE = ".rekey"  # key.gpg.rekey: the new wrap, until it replaces key.gpg
SMALL = 1 << 16


@dataclass
class RekeyResult:
    sets: list[str] = field(default_factory=list)  # set ids re-wrapped
    records: list[str] = field(default_factory=list)  # drill record keys re-sealed
    archives: list[str] = field(default_factory=list)  # wal/<system id> re-wrapped
    refused: list[str] = field(default_factory=list)  # what was left alone, and why


def _read(storage: Storage, key: str) -> bytes | None:
    try:
        with storage.open(key) as fh:
            data = fh.read(SMALL + 1)
    except ObjectMissing:
        return None
    return bytes(data) if len(data) <= SMALL else None


def _swap(storage: Storage, key: str, data_key: str, new: str) -> None:
    """``key`` (a ``key.gpg``) replaced by ``data_key`` wrapped with ``new``: the spare
    created beside it first and checked, then written over it."""
    spare = key + SPARE
    wrapped = _read(storage, spare)
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
    chosen = choose(storage, set_id, every, None)
    keys: dict[str, str] = {}
    for stored in chosen:
        why = _rekeyable(verifier, stored)
        if why:
            result.refused.append(f"set {stored.id}: {why}")
            continue
        data_key = verifier.data_key(stored)
        keys[stored.id] = data_key
        _swap(storage, stored.key(KEY_FILE), data_key, new)
        result.sets.append(stored.id)
    if keys:
        result.records += _reseal_records(storage, keys, verifier.config.passphrase, new)
    return result


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


def _reseal_records(storage: Storage, keys: dict[str, str], old: str | None, new: str) -> list[str]:
    """Each drill record of a re-wrapped set that proves itself with the old key: its copy
    of ``key.gpg`` replaced by the new wrap and its auth sealed again (same data key)."""
    done = []
    listed = [o.key for o in storage.list(drill_records.PREFIX)]
    for key, set_id, _ in drill_records.names(listed):
        data_key = keys.get(set_id)
        raw = _read(storage, key) if data_key else None
        if raw is None or data_key is None or old is None:
            continue
        try:
            record = drill_records.parse(raw, key)
        except ValueError:
            continue
        if not record.holds(data_key):
            continue  # never sealed with this set's key: not ours to vouch for
        wrapped = _read(storage, f"{set_id}/{KEY_FILE}")
        if wrapped is None:
            continue
        fresh = replace(record, key_gpg=base64.b64encode(wrapped).decode()).sealed(data_key)
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
        data_key = archive.data_key(old)
        if data_key is None:
            continue
        _swap(storage, f"{archive.folder}/{KEY_FILE}", data_key, new)
        done.append(f"{PREFIX}/{system_id}")
    return done
