"""The WAL archive in one destination: ``wal/<system identifier>/<file>.zst[.gpg]``.

A stored file is a zstd skippable frame that records the plain file's SHA-256 and size
(``zstd -d`` passes over it), then the file compressed, with zstd's own checksum. In an
encrypted archive that whole is an OpenPGP message (AES256) whose passphrase is the
archive's data key, ``key.gpg`` beside the files, wrapped like a set's (SPEC §2, §8). By
hand, with standard tools:

    gpg --decrypt wal/<id>/key.gpg > archive.key
    gpg --batch --passphrase-file archive.key -d <file>.zst.gpg | zstd -d > <file>

Stored bytes differ on every push (encryption), so a push whose name is taken compares
the recorded plain SHA-256: the same content is success (PostgreSQL retries a push it
did not see succeed). Nothing in the archive is overwritten: where an object that does not
authenticate holds the name (planted, or left by a failed push), the file is stored beside
it as ``<name>.<n>`` (the first free n) with a warning, and fetch takes, among them, the
one that authenticates (SPEC §8); other content that authenticates is a conflict (exit 1).
A history file that does not authenticate is passed over with a warning, as if absent:
one planted object must not deny every restore.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from offsite.crypto.auth import hkdf_sha256
from offsite.crypto.keys import KEY_FILE, EncryptionConfig, open_sealed, seal, unwrap_key, wrap_key
from offsite.crypto.openpgp import encrypted_message
from offsite.crypto.streaming import Encryptor
from offsite.errors import (
    BadInput,
    DecryptionFailed,
    ObjectMissing,
    OffsiteError,
    WalConflict,
    WalCorrupt,
    WalMissing,
)
from offsite.github import gha
from offsite.storage.base import Storage
from offsite.urls import redact
from offsite.wal.keycache import KeyCache, default_cache
from offsite.wal.names import is_wal_name
from offsite.wal.packed import MAX_FILE, unpack, unpack_record

PREFIX = "wal"


def folder_of(system_id: str) -> str:
    if not system_id.isdigit():
        raise BadInput(f"{system_id!r} is not a PostgreSQL system identifier")
    return f"{PREFIX}/{system_id}"


def object_name(folder: str, name: str, encrypted: bool, beside: int = 0) -> str:
    """Where WAL file ``name`` is stored: ``<name>.zst[.gpg]``, or, the ``beside``-th time
    its name was taken by something else, ``<name>.<beside>.zst[.gpg]``."""
    stem = f"{name}.{beside}" if beside else name
    return f"{folder}/{stem}.zst" + (".gpg" if encrypted else "")


_BESIDE = re.compile(r"^(?P<name>.+?)(?:\.(?P<n>[1-9][0-9]{0,17}))?\.zst(?P<gpg>\.gpg)?$")


def parse_object(key: str) -> tuple[str, int, bool] | None:
    """``(WAL name, n, encrypted)`` of a stored WAL object's key (its last part); None for
    a key that is no WAL object offsite writes (``key.gpg``, or something planted)."""
    found = _BESIDE.match(key.rsplit("/", 1)[-1])
    if not found or not is_wal_name(found.group("name")):
        return None
    return found.group("name"), int(found.group("n") or 0), bool(found.group("gpg"))


def read_object(storage: Storage, key: str, encrypted: bool = False) -> bytes:
    """A stored WAL file's bytes, at most what a packed 1 GiB segment could take; of an
    encrypted archive's, only once its first packets show an encrypted message (a planted
    object of a gigabyte is refused after its first bytes, not read into memory)."""
    with storage.open(key) as fh:
        source = encrypted_message(fh) if encrypted else fh
        limit = MAX_FILE + (64 << 20)
        data = bytearray()
        while len(data) <= limit and (more := source.read(min(8 << 20, limit + 1 - len(data)))):
            data += more
        if len(data) > limit:
            raise ValueError("it is larger than any WAL file")
    return bytes(data)


class Archive:
    """One destination's archive for one cluster (system identifier)."""

    def __init__(self, storage: Storage, system_id: str, cache: Path | None) -> None:
        self.storage = storage
        self.system_id = system_id
        self.folder = folder_of(system_id)
        self.where = redact(storage.url)
        self._keys = KeyCache(cache)
        self.pushed: int | None = None  # the push time of the file fetch last handed over
        self._key_gpg: bytes | None = None  # key.gpg once read: it is never replaced

    # -- the archive's data key ----------------------------------------------------------
    def key_hash(self) -> str | None:
        """The SHA-256 of the archive's ``key.gpg``; None for an archive without one."""
        wrapped = self._wrapped()
        return None if wrapped is None else hashlib.sha256(wrapped).hexdigest()

    def pinned(self) -> str | None:
        """The key this host pushes to this archive with (its key cache), if any."""
        return self._keys.pinned(self.where, self.system_id)

    def data_key(self, passphrase: str | None, recipients: tuple[str, ...] = ()) -> str | None:
        """The archive's data key, unwrapped (the passphrase, or a recipient's secret key
        in the keyring); None for an archive without ``key.gpg``. BadInput or WalCorrupt
        when it does not open here."""
        wrapped = self._wrapped()
        return None if wrapped is None else self._unwrap(wrapped, recipients, passphrase)

    def _wrapped(self) -> bytes | None:
        """``key.gpg``, read once per archive (verify --read-data fetches every file); an
        absent one is asked again, as a concurrent first push may create it."""
        if self._key_gpg is None:
            try:
                with self.storage.open(f"{self.folder}/{KEY_FILE}") as fh:
                    self._key_gpg = bytes(fh.read(1 << 16))
            except ObjectMissing:
                return None
        return self._key_gpg

    def key_for_push(self, encryption: EncryptionConfig) -> str | None:
        """The data key pushes encrypt with: the archive's own, or a new one stored
        (create-if-absent) by the first push. None for an archive without encryption.

        This host keeps the key it archives with (its key cache, pinned per archive): a
        ``key.gpg`` deleted is made again from it, and one replaced by what does not open
        (or opens to another key) never stops archiving, which goes on with the pinned key,
        saying so (restore ``key.gpg`` from another destination)."""
        pinned = self.pinned()
        wrapped = self._wrapped()
        if wrapped is None:
            if encryption.mode == "none":
                return None
            if not pinned and any(
                o.key.endswith(".gpg") for o in self.storage.list(f"{self.folder}/")
            ):
                raise WalCorrupt(KEY_FILE, self.where, "it is gone and encrypted files are there: "
                                 "copy it back from another destination (a new key would leave "
                                 "them unreadable)")  # fmt: skip
            with Encryptor(encryption) as encryptor:
                data_key = pinned or encryptor.data_key
                wrapped = wrap_key(data_key, encryption, encryptor.home, encryptor.fingerprints)
                if self.storage.create(f"{self.folder}/{KEY_FILE}", wrapped):
                    if pinned:
                        gha.warn(f"the WAL archive's {KEY_FILE} was gone from {self.where}: "
                                 "made again from the key this host archives with")  # fmt: skip
                    self._keys.remember(wrapped, data_key)
                    self._keys.pin(self.where, self.system_id, data_key)
                    return data_key
            wrapped = self._wrapped()  # another push created it first
            if wrapped is None:
                raise WalCorrupt(KEY_FILE, self.where, "it was created and is gone")
        if encryption.mode == "none":
            raise BadInput(
                f"the WAL archive in {self.where} is encrypted: push with its key, not --no-encrypt"
            )
        try:
            key = self._unwrap(wrapped, encryption.recipients, encryption.passphrase)
        except (WalCorrupt, BadInput) as exc:
            if not pinned:
                raise
            gha.warn(f"the WAL archive's {KEY_FILE} in {self.where} does not open "
                     f"({exc.message()}): archiving with the key this host holds")  # fmt: skip
            return pinned
        if pinned and key != pinned:
            gha.warn(f"the WAL archive's {KEY_FILE} in {self.where} opens to another "
                     "key than this host archives with (replaced?): using its own")  # fmt: skip
            return pinned
        self._keys.pin(self.where, self.system_id, key)
        return key

    def _unwrap(self, wrapped: bytes, recipients: tuple[str, ...], passphrase: str | None) -> str:
        cached = self._keys.cached(wrapped)
        if cached:
            return cached
        keyring = passphrase is None  # an archive wrapped to recipients: their secret key
        try:
            key = unwrap_key(wrapped, recipients or (("keyring",) if keyring else ()), passphrase)
        except DecryptionFailed as exc:
            if keyring:
                raise BadInput(
                    f"the WAL archive in {self.where} is encrypted: give its passphrase "
                    "(--passphrase-file or --passphrase-env), or have a recipient's secret "
                    "key in GNUPGHOME"
                ) from None
            raise WalCorrupt(KEY_FILE, self.where, exc.args[-1]) from None
        self._keys.remember(wrapped, key)
        return key

    # -- files ---------------------------------------------------------------------------
    def push(self, name: str, packed: bytes, key: str | None) -> bool:
        """Store a packed file under ``name`` (or beside it): True when stored now, False
        when the same content was stored before; WalConflict when other content that
        authenticates was. Objects that do not authenticate (or cannot be read) are passed
        over, however many: the file goes beside the last of them."""
        stored = seal(packed, key) if key else packed
        encrypted = key is not None
        if self.storage.create(object_name(self.folder, name, encrypted), stored):
            return True
        mine = unpack(packed, name, self.system_id)
        taken = [(0, object_name(self.folder, name, encrypted))]
        taken += [(n, k) for n, k in self._beside(name, encrypted)]
        for _, other in taken:
            same = self._same(other, key, mine, name)
            if same is True:
                return False
            if same is False:
                raise WalConflict(name, self.where)
        used, n, refused = {number for number, _ in taken}, 0, 0
        while refused < 100:  # the first free n; a name something holds that no listing
            n += 1  # shows (a folder) is passed over, however many
            while n in used:
                n += 1
            target = object_name(self.folder, name, encrypted, n)
            if self.storage.create(target, stored):
                gha.warn(f"WAL file {name}: its name in {self.where} holds an object that does "
                         f"not authenticate (planted?); stored beside it as "
                         f"{target.rsplit('/', 1)[-1]}")  # fmt: skip
                return True
            same = self._same(target, key, mine, name)
            if same is not None:  # another push of this name won the race
                if same:
                    return False
                raise WalConflict(name, self.where)
            if not self._held(target):
                refused += 1  # refused with nothing there: a store that says no
        raise WalCorrupt(name, self.where, "the store refuses every name beside it")

    def _held(self, target: str) -> bool:
        """Whether something is at ``target``, readable or not."""
        try:
            self.storage.open(target).close()
        except ObjectMissing:
            return False
        except OffsiteError:
            return True
        return True

    def _same(self, target: str, key: str | None, mine: bytes, name: str) -> bool | None:
        """Whether ``target`` holds ``mine`` (True), other content that authenticates
        (False), or nothing that authenticates, readable or not (None)."""
        try:  # the whole stored file, not its record only: a planted body is not "the same"
            theirs = unpack(self._plain_packed(target, key), name, self.system_id)
        except (ValueError, OffsiteError):
            return None
        return theirs == mine

    def fetch(
        self, name: str, passphrase: str | None, encrypted: bool = True, pinned: str | None = None
    ) -> bytes:
        """The plain file; WalMissing when the archive does not have it, WalCorrupt when
        what it has does not decrypt, decompress and match its record (its name and
        cluster included). An archive is taken as encrypted unless ``encrypted`` is false:
        deleting ``key.gpg`` and planting plain files must not get them replayed.
        ``pinned``: the SHA-256 ``key.gpg`` must have (a restore writes the one it saw)."""
        wrapped = self._wrapped()
        if wrapped is None and encrypted:
            for plain in (False, True):
                if self.storage.stat(object_name(self.folder, name, plain)) is not None:
                    raise WalCorrupt(name, self.where, f"the archive's {KEY_FILE} is gone")
            raise WalMissing(name, self.where)
        if wrapped is not None and not encrypted:
            raise WalCorrupt(name, self.where, f"an unencrypted archive holds a {KEY_FILE}")
        if wrapped is not None and pinned and hashlib.sha256(wrapped).hexdigest() != pinned:
            raise WalCorrupt(name, self.where, f"its {KEY_FILE} is not the one the restore saw")
        key = None if wrapped is None else self._unwrap(wrapped, (), passphrase)
        target = object_name(self.folder, name, key is not None)
        problem: str | None
        try:
            content, record = unpack_record(self._plain_packed(target, key), name, self.system_id)
            self.pushed = record.pushed
            return content
        except ObjectMissing:
            problem = None
        except ValueError as exc:
            problem = str(exc)
        except OffsiteError as exc:  # unreadable (an archive storage class, a folder)
            problem = exc.message()
        # the name is not there, or holds what does not authenticate: the files stored
        # beside it, in order, the first that authenticates
        for _, other in self._beside(name, key is not None):
            try:
                content, record = unpack_record(self._plain_packed(other, key), name,
                                                self.system_id)  # fmt: skip
            except (ValueError, OffsiteError):
                continue
            self.pushed = record.pushed
            if problem is not None:
                gha.warn(f"WAL file {name}: the object under its name in {self.where} does not "
                         f"authenticate ({problem}); took {other.rsplit('/', 1)[-1]}")  # fmt: skip
            return content
        if problem is None:
            raise WalMissing(name, self.where)
        if name.endswith(".history"):
            gha.warn(f"{name} in {self.where} does not authenticate ({problem}): passed over "
                     "as if it were not there (planted?)")  # fmt: skip
            raise WalMissing(name, self.where)
        raise WalCorrupt(name, self.where, problem)

    def _beside(self, name: str, encrypted: bool) -> list[tuple[int, str]]:
        """``(n, key)`` of what is stored beside ``name`` (``<name>.<n>.zst[.gpg]``), in
        the order of n."""
        found = []
        for obj in self.storage.list(f"{self.folder}/{name}."):
            parsed = parse_object(obj.key)
            if parsed and parsed[0] == name and parsed[1] and parsed[2] == encrypted:
                found.append((parsed[1], obj.key))
        return sorted(found)

    def _plain_packed(self, target: str, key: str | None) -> bytes:
        data = read_object(self.storage, target, key is not None)
        return open_sealed(data, key) if key else data


KEY_ID_INFO = b"offsite-wal-key-id"


def key_id(data_key: str) -> str:
    """An archive data key's id: HKDF-SHA256 of it (info ``offsite-wal-key-id``), 16 bytes,
    hex. The same however ``key.gpg`` is wrapped (a new passphrase keeps it); it names the
    key without revealing it."""
    return hkdf_sha256(bytes.fromhex(data_key), KEY_ID_INFO, 16).hex()


def archive_facts(
    storages: list[Storage], system_id: str, encryption: EncryptionConfig
) -> dict[str, object]:
    """What a base backup records of the WAL archive it needs, read from its destinations
    once it is taken (SPEC §8): ``wal_encrypted`` (an archive with a ``key.gpg`` or
    encrypted files; where the destinations disagree, encrypted: a deleted ``key.gpg`` must
    not make it plain), ``wal_key_ids``, the ids of the keys that open here, and
    ``wal_key_sha256``, the SHA-256 of each ``key.gpg`` that does not (an archive made for
    recipients, read where no secret key is), each ``{value: true}``. Authenticated with
    the set, they let a restore refuse an archive whose ``key.gpg`` was deleted (plain files
    planted instead) or swapped."""
    encrypted: list[bool] = []
    ids: set[str] = set()
    hashes: set[str] = set()
    for storage in storages:
        archive = Archive(storage, system_id, default_cache())
        pinned = archive.pinned()  # the key this host pushes with, where it pushes
        if pinned:  # what the archive's files are encrypted with, whatever key.gpg says now
            ids.add(key_id(pinned))
        wrapped = archive.key_hash()
        objects = storage.list(f"{archive.folder}/")
        first = next(objects, None)
        if first is None:
            continue
        if wrapped is None:
            sealed = first.key.endswith(".gpg") or any(o.key.endswith(".gpg") for o in objects)
            encrypted.append(sealed)
            continue
        encrypted.append(True)
        if pinned:
            continue  # the pinned key's id is the fact: key.gpg need not be opened
        try:
            key = archive.data_key(encryption.passphrase, encryption.recipients)
        except (BadInput, WalCorrupt):
            key = None  # its key does not open here: its key.gpg is what is recorded
        if key is not None:
            ids.add(key_id(key))
        else:
            hashes.add(wrapped)
    if not encrypted:
        return {}  # no archive yet
    if not any(encrypted):
        return {"wal_encrypted": False}
    facts: dict[str, object] = {"wal_encrypted": True}
    # an object's keys: a manifest's stats hold numbers, flags and such objects
    if ids:
        facts["wal_key_ids"] = dict.fromkeys(sorted(ids), True)
    if hashes:
        facts["wal_key_sha256"] = dict.fromkeys(sorted(hashes), True)
    return facts
