"""Encrypting and decrypting entries as they stream: ``Encryptor`` is one run's resolved
encryption (a throwaway home, the recipients imported and checked, a fresh data key) and
its pipeline stage; ``decrypt`` the restore's stage, which checks that the stream is an
encrypted OpenPGP message before gpg reads it.

Encryption always runs in a throwaway GNUPGHOME: recipients' public keys are imported
into it (from an armored file, or exported from the user's keyring), and a symmetric
passphrase is never cached by an agent the user keeps. Data is already compressed, so
gpg's own compression is off.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import BinaryIO

from offsite.crypto.gpg import CIPHER, ENTRY_S2K, binary, check_passphrase, stream, throwaway_home
from offsite.crypto.keys import EncryptionConfig, import_recipients, wrap_key
from offsite.crypto.modes import NONE, SET_KEY, Encryption
from offsite.crypto.openpgp import encrypted_message
from offsite.errors import BadInput, DecryptionFailed, EncryptionFailed
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import Readable


class Encryptor:
    """Resolved encryption for one run: keys imported, checked, ready to stream."""

    def __init__(self, config: EncryptionConfig) -> None:
        self.config = config
        self._stack = contextlib.ExitStack()
        self.home: str | None = None
        self.fingerprints: tuple[str, ...] = ()
        self.data_key = ""  # this run's set data key, 64 hex characters

    def __enter__(self) -> Encryptor:
        if self.config.mode == "none":
            return self
        binary()
        try:
            self.home = self._stack.enter_context(throwaway_home())
            if self.config.mode == "passphrase":
                if not self.config.passphrase:
                    raise BadInput("no passphrase given")
                check_passphrase(self.config.passphrase)
            else:
                self.fingerprints = import_recipients(self.home, self.config.recipients)
            self.data_key = secrets.token_hex(32)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def encrypted(self) -> bool:
        return self.config.mode != "none"

    @property
    def manifest_encryption(self) -> Encryption:
        if self.config.mode == "none":
            return NONE
        return Encryption(mode=SET_KEY, cipher=CIPHER, recipients=self.fingerprints)

    def wrapped_key(self) -> bytes:
        """``key.gpg``: the data key encrypted with the passphrase or to the recipients."""
        return wrap_key(self.data_key, self.config, self.home, self.fingerprints)

    def stage(self, pipeline: Pipeline, src: Readable) -> Readable:
        if self.config.mode == "none":
            return src
        args = ["--symmetric", "--cipher-algo", CIPHER, "--compress-algo", "none",
                *ENTRY_S2K, "--no-symkey-cache"]  # fmt: skip

        def run(source: Readable, dst: BinaryIO) -> None:
            problem = stream(args, self.home, self.data_key, source, pipeline.fd_of(source), dst)
            if problem:
                raise EncryptionFailed(problem)

        return pipeline.stage("gpg-encrypt", run, src)


def decrypt(
    pipeline: Pipeline,
    src: Readable,
    encryption: Encryption,
    passphrase: str | None,
    set_id: str,
    entry: str,
) -> Readable:
    """Decrypt an entry's stream: symmetric in a throwaway home, public-key with the
    user's keyring (GNUPGHOME), where ``passphrase`` unlocks a protected secret key."""
    if encryption.mode == "none":
        return src
    binary()
    if passphrase is not None:
        check_passphrase(passphrase)

    symmetric = encryption.mode in ("passphrase", SET_KEY)  # SET_KEY: passphrase is the data key

    def run(source: Readable, dst: BinaryIO) -> None:
        try:
            checked = encrypted_message(source)
        except ValueError as exc:
            raise DecryptionFailed(set_id, entry, exc) from None
        with contextlib.ExitStack() as stack:
            home = stack.enter_context(throwaway_home()) if symmetric else None
            args = ["--decrypt", *(["--no-symkey-cache"] if symmetric else [])]
            problem = stream(args, home, passphrase, checked, None, dst, "DECRYPTION_OKAY")
            if problem:
                raise DecryptionFailed(set_id, entry, problem)

    return pipeline.stage("gpg-decrypt", run, src)
