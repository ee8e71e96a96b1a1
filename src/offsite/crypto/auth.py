"""Proving who made a set (SPEC §2, §7): an HMAC keyed from the set's data key, and, for sets
made for recipients (where anyone can wrap a data key to public keys, so an HMAC proves
nothing), a detached OpenPGP signature ``manifest.json.sig``.

The HMAC key is HKDF-SHA256 (RFC 5869, no salt) of the 32 bytes of the data key with an
info naming what it proves (``offsite-manifest-auth`` for a manifest); the message is what
the set format says (``sets/trust.py``: the canonical manifest).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from pathlib import Path

from offsite.crypto.gpg import client, reason
from offsite.errors import BadInput, EncryptionFailed

ALG = "HMAC-SHA256"
SIGNATURE = "manifest.json.sig"


def hkdf_sha256(key: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 with an empty salt (a string of zeros, the hash's length)."""
    prk = hmac.new(b"\0" * 32, key, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def mac(message: bytes, data_key: str, *, info: bytes) -> str:
    """HMAC-SHA256 of ``message``, hex, keyed from ``data_key`` for ``info``."""
    key = hkdf_sha256(bytes.fromhex(data_key), info)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mac_holds(message: bytes, data_key: str, expected: str, *, info: bytes) -> bool:
    return hmac.compare_digest(mac(message, data_key, info=info), expected)


def sign(data: bytes, key: str, passphrase: str | None = None) -> bytes:
    """A detached binary signature of ``data`` by ``key`` from the user's keyring."""
    result = client(None).sign(data, keyid=key, detach=True, binary=True, passphrase=passphrase)
    if not result.data:
        raise EncryptionFailed(f"cannot sign with {key}: {reason(result)}")
    return bytes(result.data)


def signer(data: bytes, signature: bytes, home: str) -> str | None:
    """The primary fingerprint of the key in ``home`` that made a good ``signature`` of
    ``data``; None when the signature is bad or its key is not there."""
    with tempfile.TemporaryDirectory(prefix="offsite-sig-") as folder:
        sig = Path(folder, SIGNATURE)
        sig.write_bytes(signature)
        result = client(home).verify_data(str(sig), data)
    return str(result.pubkey_fingerprint) if result.valid and result.pubkey_fingerprint else None


def import_trusted(keys: tuple[str, ...], home: str) -> tuple[str, ...]:
    """Import ``--trust-key`` keys (files, or names in the user's keyring) into ``home``;
    their primary fingerprints."""
    gpg = client(home)
    found: list[str] = []
    for key in keys:
        if os.path.isfile(key):
            data = Path(key).read_bytes()
        else:
            data = client(None).export_keys(key, armor=True).encode()
        imported = gpg.import_keys(data) if data.strip() else None
        fingerprints = [fp for fp in (imported.fingerprints if imported else []) if fp]
        if not fingerprints:
            raise BadInput(f"--trust-key {key}: no OpenPGP public key found")
        found.extend(fp for fp in fingerprints if fp not in found)
    return tuple(found)
