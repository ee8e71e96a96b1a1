"""Whether a set read from a destination may be used (SPEC §7).

With a key configured (a passphrase, or ``--trust-key``), a set must prove it was made with
it: its manifest's HMAC, keyed from the data key that ``key.gpg`` opens to with the
passphrase, or, for a set made for recipients, a good ``manifest.json.sig`` by a trusted
key. A set that does not, or an unencrypted one, is refused (exit 1) unless
``--allow-unauthenticated`` / ``--allow-unencrypted``. Older sets (format 1, no ``auth``)
are accepted with a warning: their entries still prove themselves by decrypting. Without
any key, offsite warns once that what it reads is unauthenticated.

An opt-in flag lowers one guard only (SPEC §7): a set that only a flag lets in is taken
when the user names it, or when no set at the destination proves itself, never as the
latest over one that does (``check`` says which it is); prune neither counts nor removes
it. An unencrypted set signed with ``--sign-key`` proves itself with ``--trust-key``.

An older set (format 1, no ``auth``) cannot prove its id, so a copy of an old set under a
newer id would pass for the newest: with a key configured, such a set is taken only when
the user names it (``--id``, and ``verify``), every entry encrypted with the passphrase
itself, and never chosen as the latest nor counted by prune.

The ``Verifier`` also hands out each entry's decryption key (the set's data key, once
unwrapped), so ``key.gpg`` is opened once per set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from offsite.crypto.auth import (
    ALG,
    SIGNATURE,
    import_trusted,
    mac,
    mac_holds,
    signer,
)
from offsite.crypto.gpg import WRONG_PASSPHRASE
from offsite.crypto.keys import KEY_FILE, unwrap_key
from offsite.crypto.modes import SET_KEY
from offsite.errors import (
    CheckFailed,
    DecryptionFailed,
    KeyDoesNotOpen,
    NotAnObject,
    NotAuthenticated,
    NotEncrypted,
    ObjectMissing,
    PassphraseNeeded,
)
from offsite.github import gha
from offsite.sets.manifest import FORMAT, MANIFEST_NAME, Auth, Entry, Manifest
from offsite.sets.stored import StoredSet
from offsite.storage.base import Storage

MANIFEST_INFO = b"offsite-manifest-auth"  # the HKDF info of a manifest's HMAC key (SPEC §2)
SMALL = 64 << 10  # key.gpg and a signature are a few hundred bytes


@dataclass(frozen=True)
class TrustConfig:
    passphrase: str | None = field(default=None, repr=False)
    trust_keys: tuple[str, ...] = ()  # fingerprints in the keyring, or key files
    allow_unauthenticated: bool = False
    allow_unencrypted: bool = False
    passphrase_file: str | None = None  # where the passphrase came from, if a file

    @property
    def keyed(self) -> bool:
        return bool(self.passphrase) or bool(self.trust_keys)


def read_small(storage: Storage, key: str) -> bytes | None:
    """A small object (key.gpg, a signature) whole; None when it is missing, larger, or
    no object (a folder or a FIFO planted under its name): the set that names it is
    refused, never the whole destination unreadable. A store that fails to answer still
    fails the command: a set is never passed over for a transient error."""
    try:
        with storage.open(key) as fh:
            data = fh.read(SMALL + 1)
    except (ObjectMissing, NotAnObject):
        return None
    return data if len(data) <= SMALL else None


class Verifier:
    """Checks sets of one destination against a TrustConfig; use it as a context manager
    (the trusted keys live in a throwaway GnuPG home)."""

    def __init__(self, storage: Storage, config: TrustConfig) -> None:
        self.storage = storage
        self.config = config
        self._stack = contextlib.ExitStack()
        self._home: str | None = None
        self._trusted: tuple[str, ...] = ()
        self._keys: dict[str, str] = {}  # set prefix -> data key
        # (why refused, or None; whether only a lowered guard lets it in)
        self._verdicts: dict[tuple[str, str, bool], tuple[CheckFailed | None, bool]] = {}
        self._warned = False
        self._unopened: dict[str, str] = {}  # set prefix -> why its key.gpg did not open
        self._unwrap_failed: dict[str, DecryptionFailed] = {}

    def __enter__(self) -> Verifier:
        if self.config.trust_keys:
            from offsite.crypto.gpg import throwaway_home

            self._home = self._stack.enter_context(throwaway_home())
            self._trusted = import_trusted(self.config.trust_keys, self._home)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # -- keys ----------------------------------------------------------------------------
    def data_key(self, stored: StoredSet) -> str:
        """The set's data key from its ``key.gpg``; DecryptionFailed when it does not open."""
        if stored.prefix in self._unwrap_failed:  # one S2K per set, however often asked
            raise self._unwrap_failed[stored.prefix]
        if stored.prefix not in self._keys:
            recipients = next((e.encryption.recipients for e in stored.manifest.entries), ())
            if not recipients and not self.config.passphrase:
                raise PassphraseNeeded(stored.id, KEY_FILE)
            wrapped = read_small(self.storage, stored.key(KEY_FILE))
            if wrapped is None:
                raise DecryptionFailed(stored.id, KEY_FILE, "the set has no readable key.gpg")
            try:
                key = unwrap_key(wrapped, recipients, self.config.passphrase)
            except DecryptionFailed as exc:
                failed = DecryptionFailed(stored.id, KEY_FILE, exc.args[2])
                self._unwrap_failed[stored.prefix] = failed
                raise failed from None
            # key.gpg is not signed: a set proven by its signature (made for recipients,
            # whose key anyone can wrap) has it bound by the manifest's auth, checked here,
            # before any entry is decrypted with it
            manifest = stored.manifest
            if manifest.auth is not None and not auth_holds(manifest, key):
                why = "its key.gpg opens to another key than its manifest's auth was made with"
                if not self.config.allow_unauthenticated:
                    raise NotAuthenticated(stored.id, why)
                gha.warn(f"set {stored.id}: {why} (--allow-unauthenticated)")
            self._keys[stored.prefix] = key
        return self._keys[stored.prefix]

    def entry_key(self, stored: StoredSet, entry: Entry) -> str | None:
        """What decrypts ``entry``: the set's data key, or (older sets) the passphrase;
        None for an unencrypted entry."""
        if entry.encryption.mode == "none":
            return None
        if entry.encryption.mode == SET_KEY:
            return self.data_key(stored)
        return self.config.passphrase

    def can_decrypt(self, entry: Entry) -> bool:
        """Whether a key for ``entry`` is at hand (not whether it is the right one)."""
        from offsite.crypto.keys import can_decrypt

        return can_decrypt(entry.encryption, self.config.passphrase)

    # -- the check -----------------------------------------------------------------------
    def refusal(self, stored: StoredSet, named: bool = False) -> CheckFailed | None:
        """Why the set may not be used (NotAuthenticated, NotEncrypted), or None; ``named``:
        the user chose this set (--id, verify), it is not being picked for them."""
        return self._judged(stored, named)[0]

    def _judged(self, stored: StoredSet, named: bool) -> tuple[CheckFailed | None, bool]:
        at = (stored.id, stored.prefix, named)
        if at not in self._verdicts:
            self._verdicts[at] = self._verdict(stored, named)
        return self._verdicts[at]

    def check(self, stored: StoredSet, named: bool = False) -> bool:
        """``refusal`` as an exception (exit 1): the ``Check`` that set selection takes.
        True when the set proves itself, False when only an opt-in flag lets it in."""
        refused, lowered = self._judged(stored, named)
        if refused is not None:
            raise refused
        return not lowered

    def usable(self, sets: list[StoredSet]) -> list[StoredSet]:
        """The sets that prove themselves; when none does, those a flag lets in."""
        admitted = [s for s in sets if self.refusal(s) is None]
        proven = [s for s in admitted if not self._judged(s, False)[1]]
        return proven or admitted

    @staticmethod
    def _lower(message: str) -> tuple[None, bool]:
        """The verdict on a set an opt-in flag lets in: said, and marked so."""
        gha.warn(message)
        return None, True

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            gha.warn(message)

    def _verdict(self, stored: StoredSet, named: bool) -> tuple[CheckFailed | None, bool]:
        """Why the set is refused, or None; and whether only a lowered guard lets it in."""
        manifest = stored.manifest
        if not self.config.keyed:
            self._warn_once(
                f"no key configured (a passphrase or --trust-key): what offsite reads from "
                f"{self.storage.url} is unauthenticated"
            )
            return None, False
        if not manifest.entries or any(e.encryption.mode == "none" for e in manifest.entries):
            if self.config.trust_keys and self._problem(stored) is None:
                return None, False  # signed by a trusted key: proves itself, encrypted or not
            if self.config.allow_unencrypted:
                return self._lower(f"set {stored.id} is not encrypted (--allow-unencrypted)")
            return NotEncrypted(stored.id), False
        problem: str | None
        if manifest.auth is None:
            before_auth = older(stored)
            if before_auth and named and self.config.passphrase:
                gha.warn(f"set {stored.id} was made before sets carried auth: its entries still "
                         "prove themselves by decrypting")  # fmt: skip
                return None, False
            problem = (
                "it was made before sets carried auth: name it with --id, or seal it with "
                "verify --read-data --seal"
                if before_auth
                else "it carries no auth"
            )
        else:
            problem = self._problem(stored)
        if problem is None:
            return None, False
        if self.config.allow_unauthenticated:
            return self._lower(
                f"set {stored.id} is not authenticated ({problem}): --allow-unauthenticated"
            )
        if stored.prefix in self._unopened:
            return KeyDoesNotOpen(stored.id, self._unopened[stored.prefix]), False
        return NotAuthenticated(stored.id, problem), False

    def unopened(self, sets: list[StoredSet]) -> int:
        """How many of ``sets`` have a key.gpg the passphrase does not open, when it opens
        not one of them (a wrong passphrase, most likely, rather than sets planted by
        someone else; unencrypted sets aside); else 0."""
        refusals = [self.refusal(s, True) for s in sets]
        if all(isinstance(r, (KeyDoesNotOpen, NotEncrypted)) for r in refusals):
            return sum(isinstance(r, KeyDoesNotOpen) for r in refusals)
        return 0

    def _problem(self, stored: StoredSet) -> str | None:
        """Why the set does not prove it was made with the configured key; None if it does."""
        if self.config.trust_keys:
            signature = read_small(self.storage, stored.key(SIGNATURE))
            if signature is None or not stored.raw:
                return "it has no manifest.json.sig"
            assert self._home is not None
            who = signer(stored.raw, signature, self._home)  # the bytes that were parsed
            if who is None or who not in self._trusted:
                return "manifest.json.sig is not a good signature by a --trust-key"
            return None
        if any(e.encryption.recipients for e in stored.manifest.entries):
            return "a set made for recipients proves itself only by a signature (--trust-key)"
        try:
            key = self.data_key(stored)
        except DecryptionFailed as exc:
            if exc.args[2] == WRONG_PASSPHRASE:  # gpg's own word; a key.gpg that is not
                self._unopened[stored.prefix] = exc.args[2]  # there or not OpenPGP: exit 1
            return f"its key.gpg does not open with the passphrase ({exc.args[2]})"
        except NotAuthenticated:
            return "its manifest does not match its auth"
        if not auth_holds(stored.manifest, key):
            return "its manifest does not match its auth"
        return None


def with_auth(manifest: Manifest, data_key: str) -> Manifest:
    """``manifest`` with its ``auth``: the HMAC of its canonical form, keyed from the set's
    data key (SPEC §2)."""
    return replace(
        manifest, auth=Auth(ALG, mac(manifest.canonical(), data_key, info=MANIFEST_INFO))
    )


def auth_holds(manifest: Manifest, data_key: str) -> bool:
    auth = manifest.auth
    if auth is None or auth.alg != ALG:
        return False
    return mac_holds(manifest.canonical(), data_key, auth.mac, info=MANIFEST_INFO)


def older(stored: StoredSet) -> bool:
    """A set from before the data key: format 1, no auth, entries under the passphrase."""
    manifest = stored.manifest
    return (
        manifest.format == FORMAT
        and manifest.auth is None
        and bool(manifest.entries)
        and all(e.encryption.mode == "passphrase" for e in manifest.entries)
    )


def seal(
    storage: Storage,
    stored: StoredSet,
    others: list[StoredSet],
    passphrase: str,
    proves: Callable[[StoredSet], bool],
) -> None:
    """Give an older set, every entry of which has just decrypted with the passphrase, a
    data key and an ``auth`` (``verify --read-data --seal``, SPEC §7): from then on it
    proves its id like a new set. A set whose stored bytes another set also holds is a
    copy of that one (encryption never makes two equal entries) and is not sealed."""
    from offsite.crypto.keys import EncryptionConfig
    from offsite.crypto.streaming import Encryptor
    from offsite.storage.base import put_bytes

    candidates = sorted((o for o in others if o.manifest.auth is not None and o.id < stored.id),
                        key=lambda o: o.id, reverse=True)  # fmt: skip
    newer = next((o.id for o in candidates if proves(o)), None)  # a planted auth proves nothing
    if newer is not None or stored.future(datetime.now(timezone.utc)):
        # an older-format set is older than every set made since sets carried auth: one
        # dated after such a set (or ahead of now) is an old set moved forward, to pass
        # for the newest once sealed
        why = f"it is dated after set {newer}, which carries auth" if newer else "it is dated ahead"
        raise NotAuthenticated(stored.id, f"{why}: an older set moved forward? not sealed")
    digests = {e.sha256 for e in stored.manifest.entries}
    twin = next((o.id for o in others if o.id != stored.id and digests & {
        e.sha256 for e in o.manifest.entries}), None)  # fmt: skip
    if twin is not None:
        raise NotAuthenticated(stored.id, f"it holds the same stored bytes as set {twin}")
    with Encryptor(EncryptionConfig("passphrase", passphrase=passphrase)) as encryptor:
        wrapped = encryptor.wrapped_key()
        sealed = with_auth(stored.manifest, encryptor.data_key)
    put_bytes(storage, stored.key(KEY_FILE), wrapped)
    put_bytes(storage, stored.key(MANIFEST_NAME), sealed.to_json().encode())
