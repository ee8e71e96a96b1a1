"""What a manifest records of how an entry is encrypted (SPEC §2): the ``Encryption``
record and its modes. Nothing here runs gpg, so the set format reads it without loading
python-gnupg."""

from __future__ import annotations

from dataclasses import dataclass

SET_KEY = "set-key"  # entries encrypted with the set's data key


@dataclass(frozen=True)
class Encryption:
    """How an entry is encrypted, as its manifest records it."""

    mode: str  # "passphrase" | "recipients" | "none" | "set-key"
    cipher: str | None = None
    recipients: tuple[str, ...] = ()


NONE = Encryption(mode="none")
