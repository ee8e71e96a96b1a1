"""A set's data key (SPEC §2) and what a manifest records of how entries are encrypted.

A set gets a random 256-bit data key: ``key.gpg`` in the set folder is that key, 64 hex
characters, encrypted with the passphrase (AES256, gpg's own S2K) or to the recipients;
every entry is encrypted symmetrically with the data key as its passphrase and the
smallest S2K count gpg keeps (65536), so the passphrase is stretched once per set, not once
per entry. By hand: ``gpg --decrypt key.gpg > set.key`` and then
``gpg --batch --passphrase-file set.key --decrypt ENTRY``.

Here: the data key wrapped (``wrap_key``) and unwrapped, recipients' public keys imported
into a throwaway home, small messages sealed with a data key (a WAL file), and whether a
key for a set is at hand. The entries' streams are ``streaming.py``'s.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from offsite.crypto.gpg import (
    CIPHER,
    ENTRY_S2K,
    KEY_S2K,
    check_passphrase,
    client,
    reason,
    small,
    throwaway_home,
    why,
)
from offsite.crypto.modes import SET_KEY, Encryption
from offsite.crypto.openpgp import encrypted_message
from offsite.errors import BadInput, DecryptionFailed, EncryptionFailed

DEFAULT_PASSPHRASE_ENV = "OFFSITE_PASSPHRASE"
KEY_FILE = "key.gpg"
_DATA_KEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class EncryptionConfig:
    """What the user asked for; ``passphrase`` is the secret itself, never printed."""

    mode: str  # "passphrase" | "recipients" | "none"
    passphrase: str | None = field(default=None, repr=False)
    recipients: tuple[str, ...] = ()


def wrap_key(
    data_key: str, config: EncryptionConfig, home: str | None, fingerprints: tuple[str, ...]
) -> bytes:
    """``key.gpg``: ``data_key`` encrypted with the passphrase or to the recipients
    (imported into ``home``)."""
    gpg = client(home)
    key = data_key.encode()
    if config.mode == "passphrase":
        result = gpg.encrypt(
            key, None, symmetric=CIPHER, passphrase=config.passphrase, armor=False,
            extra_args=["--no-symkey-cache", "--compress-algo", "none", *KEY_S2K],
        )  # fmt: skip
    else:
        result = gpg.encrypt(
            key, list(fingerprints), always_trust=True, armor=False,
            extra_args=["--compress-algo", "none"],
        )  # fmt: skip
    if not result.ok:
        raise EncryptionFailed(reason(result))
    return bytes(result.data)


def import_recipients(home: str | None, recipients: tuple[str, ...]) -> tuple[str, ...]:
    """Import the recipients' public keys (armored files, or names exported from the
    user's keyring) into ``home``; their fingerprints, each checked to take encryption."""
    gpg = client(home)
    fingerprints: list[str] = []
    for recipient in recipients:
        if os.path.isfile(recipient):
            try:
                data = Path(recipient).read_bytes()
            except OSError as exc:
                raise BadInput(f"cannot read key file {recipient}: {exc.strerror}") from None
            what = f"file {recipient}"
        else:
            data = client(None).export_keys(recipient, armor=True).encode()
            home = os.environ.get("GNUPGHOME", "~/.gnupg")
            what = f"{recipient!r} in the keyring {home}"
        imported = gpg.import_keys(data) if data.strip() else None
        found = [fp for fp in (imported.fingerprints if imported else []) if fp]
        if not found:
            raise BadInput(f"no OpenPGP public key found for recipient {what}")
        fingerprints.extend(fp for fp in found if fp not in fingerprints)
    # Fail on an expired, revoked or signing-only key now, not after the dump.
    probe = gpg.encrypt(b"offsite", fingerprints, always_trust=True, armor=False)
    if not probe.ok:
        raise BadInput(f"cannot encrypt to {', '.join(fingerprints)}: {reason(probe)}")
    return tuple(fingerprints)


def seal(data: bytes, key: str) -> bytes:
    """``data`` encrypted with a data key as an entry is (AES256, no stretching): the
    whole of a small file (a WAL file), not a stream."""
    args = ["--symmetric", "--cipher-algo", CIPHER, "--compress-algo", "none", *ENTRY_S2K]
    out, said, code = small(args, key, data)
    if code != 0:
        raise EncryptionFailed(why(said) or "gpg failed")
    return out


def open_sealed(data: bytes, key: str) -> bytes:
    """What ``seal`` encrypted; ValueError when ``data`` is not an encrypted message (a
    plain packet gpg would print as if decrypted) or does not decrypt whole."""
    import io

    encrypted_message(io.BytesIO(data))
    out, said, code = small(["--decrypt"], key, data)
    if code != 0 or not re.search(r"^\[GNUPG:\] DECRYPTION_OKAY\b", said, re.M):
        raise ValueError(f"it does not decrypt: {why(said) or 'gpg failed'}")
    return out


def unwrap_key(data: bytes, recipients: tuple[str, ...], passphrase: str | None) -> str:
    """The data key inside a set's ``key.gpg``: with the passphrase (in a throwaway home),
    or, for a set made for recipients, with a secret key of the user's keyring (where the
    passphrase, if any, unlocks it). Raises DecryptionFailed, naming no secret."""
    if passphrase is not None:
        check_passphrase(passphrase)
    with contextlib.ExitStack() as stack:
        home = None if recipients else stack.enter_context(throwaway_home())
        # a data key is 64 characters: a planted key.gpg that inflates (compressed zeros)
        # is cut off by gpg itself, not collected in memory
        extra = ["--max-output", "4096", *([] if recipients else ["--no-symkey-cache"])]
        result = client(home).decrypt(data, passphrase=passphrase, extra_args=extra)
    key = bytes(result.data).decode("ascii", "replace").strip() if result.ok else ""
    if not result.ok:
        raise DecryptionFailed("-", KEY_FILE, reason(result))
    if not _DATA_KEY.match(key):
        raise DecryptionFailed("-", KEY_FILE, "it does not hold a data key")
    return key


def can_decrypt(encryption: Encryption, passphrase: str | None) -> bool:
    """Whether a key for ``encryption`` is at hand: the passphrase, or a secret key in
    the user's keyring (GNUPGHOME) for one of the recipients."""
    if encryption.mode == "none":
        return True
    if encryption.mode in ("passphrase", SET_KEY) and not encryption.recipients:
        return bool(passphrase)
    secret = client(None).list_keys(secret=True)
    held = {key["fingerprint"] for key in secret}
    held |= {sub[2] for key in secret for sub in key.get("subkeys", []) if len(sub) > 2}
    return any(fp in held for fp in encryption.recipients)
