"""OpenPGP encryption and decryption through python-gnupg and the system ``gpg``.

A set gets a random 256-bit data key (SPEC §2): ``key.gpg`` in the set folder is that key,
64 hex characters, encrypted with the passphrase (AES256, gpg's own S2K) or to the
recipients; every entry is encrypted symmetrically with the data key as its passphrase
and the smallest S2K count gpg keeps (65536), so the passphrase is stretched once per set,
not once per entry. By hand: ``gpg --decrypt key.gpg > set.key`` and then
``gpg --batch --passphrase-file set.key --decrypt ENTRY``.

Encryption always runs in a throwaway GNUPGHOME: recipients' public keys are imported
into it (from an armored file, or exported from the user's keyring), and a symmetric
passphrase is never cached by an agent the user keeps. Data is already compressed,
so gpg's own compression is off. Passphrases reach gpg on a pipe, never in argv.

python-gnupg handles keys, ``key.gpg`` and other small messages. The entries' bytes go
through ``_gpg_stream``: gpg between OS pipes (the upstream stage's pipe as its stdin, the
next stage's as its stdout), so a gigabyte never crosses Python twice as it does through
python-gnupg's reader and writer threads (bench/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import gnupg

from offsite.errors import BadInput, DecryptionFailed, EncryptionFailed
from offsite.openpgp import encrypted_message
from offsite.sets.manifest import Encryption
from offsite.stream.pipeline import Pipeline
from offsite.stream.readers import CHUNK, Readable

CIPHER = "AES256"
DEFAULT_PASSPHRASE_ENV = "OFFSITE_PASSPHRASE"
NONE = Encryption(mode="none")
SET_KEY = "set-key"  # entries encrypted with the set's data key
KEY_FILE = "key.gpg"
ENTRY_S2K = ["--s2k-count", "65536"]  # the data key is random: no stretching needed
# The passphrase is stretched with OpenPGP's largest count, the one gpg-agent calibrates to
# on any current machine: named here, so no agent starts (and calibrates for ~0.9 s) in
# the throwaway home just to find it.
KEY_S2K = ["--s2k-count", "65011712"]
_DATA_KEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class EncryptionConfig:
    """What the user asked for; ``passphrase`` is the secret itself, never printed."""

    mode: str  # "passphrase" | "recipients" | "none"
    passphrase: str | None = field(default=None, repr=False)
    recipients: tuple[str, ...] = ()


def _gpg_binary() -> str:
    binary = shutil.which("gpg")
    if binary is None:
        raise BadInput("gpg not found: install GnuPG (apt-get install gnupg)")
    return binary


def _gpg(home: str | None) -> Any:
    gpg = gnupg.GPG(gpgbinary=_gpg_binary(), gnupghome=home)
    gpg.buffer_size = CHUNK
    gpg.encoding = "utf-8"
    return gpg


def _check_passphrase(passphrase: str) -> None:
    if "\n" in passphrase or "\r" in passphrase:
        raise BadInput("the passphrase contains a line break; gpg cannot take it")


@contextlib.contextmanager
def _throwaway_home() -> Any:
    home = tempfile.mkdtemp(prefix="offsite-gpg-")
    try:
        yield home
    finally:
        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            subprocess.run(
                [gpgconf, "--homedir", home, "--kill", "gpg-agent"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def _gpg_reason(result: Any) -> str:
    """The most telling line of what gpg said, without status noise."""
    said = str(getattr(result, "stderr", "") or "")
    return _said(said) or str(getattr(result, "status", None) or "gpg failed")


def _said(stderr: str) -> str:
    """Why gpg failed, from what it wrote (status lines included); empty if it said nothing."""
    if "BAD_PASSPHRASE" in stderr or "Bad session key" in stderr:
        return "wrong passphrase"
    if "NO_SECKEY" in stderr:
        return "no secret key for this backup in the keyring (GNUPGHOME)"
    if "DECRYPTION_FAILED" in stderr and "MISSING_PASSPHRASE" in stderr:
        return "a passphrase is needed"
    lines = [ln for ln in stderr.splitlines() if ln.startswith("gpg: ")]
    return lines[-1][5:] if lines else ""


def _gpg_argv(home: str | None, secret_fd: int, args: list[str]) -> list[str]:
    """gpg unattended, status lines on stderr, the passphrase (if any) from ``secret_fd``,
    its output on stdout."""
    argv = [_gpg_binary(), "--batch", "--no-tty", "--status-fd", "2"]
    if home:
        argv += ["--homedir", home]
    if secret_fd >= 0:
        argv += ["--pinentry-mode", "loopback", "--passphrase-fd", str(secret_fd)]
    return [*argv, *args, "--output", "-"]


def _gpg_stream(
    args: list[str],
    home: str | None,
    passphrase: str | None,
    source: Readable,
    source_fd: int | None,
    dst: BinaryIO,
    required: str | None = None,
) -> str | None:
    """Run ``gpg ARGS`` over a stream, straight between OS pipes: its stdin is ``source_fd``
    (an upstream stage's pipe) or, for any other reader, fed from a thread; its stdout is
    ``dst``'s own descriptor. No byte passes through Python when both ends are pipes, which
    python-gnupg's reader and writer threads would copy twice. The passphrase goes on a
    pipe of its own (``--passphrase-fd``). None when gpg succeeded (and, with
    ``required``, said that status line), else why not."""
    import threading

    secret_r = secret_w = -1
    if passphrase is not None:
        secret_r, secret_w = os.pipe()
    argv = _gpg_argv(home, secret_r, args)
    dst.flush()
    stdin: Any = source_fd if source_fd is not None else subprocess.PIPE
    try:
        proc = subprocess.Popen(
            argv, stdin=stdin, stdout=dst.fileno(), stderr=subprocess.PIPE,
            pass_fds=(secret_r,) if secret_r >= 0 else (),
        )  # fmt: skip
    except BaseException:
        if secret_w >= 0:
            os.close(secret_w)
        raise
    finally:
        if secret_r >= 0:
            os.close(secret_r)
    if secret_w >= 0:
        assert passphrase is not None
        with contextlib.suppress(BrokenPipeError), os.fdopen(secret_w, "w") as fh:
            fh.write(passphrase + "\n")
    failure: list[BaseException] = []

    def feed() -> None:
        assert proc.stdin is not None
        try:
            while chunk := source.read(CHUNK):
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # gpg stopped: its exit status says why
        except BaseException as exc:
            failure.append(exc)
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True) if proc.stdin is not None else None
    if feeder is not None:
        feeder.start()
    assert proc.stderr is not None
    said = b""  # gpg's status lines: all read (it must never block on them), the last kept
    while chunk := proc.stderr.read(1 << 16):
        said = (said + chunk)[-(1 << 16) :]
    stderr = said.decode("utf-8", "replace")
    with contextlib.suppress(OSError):
        proc.stderr.close()
    code = proc.wait()
    if feeder is not None:
        feeder.join()
    if failure:
        raise failure[0]
    if code != 0:
        return _said(stderr) or "gpg failed"
    if required and not re.search(rf"^\[GNUPG:\] {required}\b", stderr, re.M):
        return f"gpg did not report {required}"
    return None


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
        _gpg_binary()
        try:
            self.home = self._stack.enter_context(_throwaway_home())
            if self.config.mode == "passphrase":
                if not self.config.passphrase:
                    raise BadInput("no passphrase given")
                _check_passphrase(self.config.passphrase)
            else:
                self.fingerprints = self._import_recipients()
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
        gpg = _gpg(self.home)
        key = self.data_key.encode()
        if self.config.mode == "passphrase":
            result = gpg.encrypt(
                key, None, symmetric=CIPHER, passphrase=self.config.passphrase, armor=False,
                extra_args=["--no-symkey-cache", "--compress-algo", "none", *KEY_S2K],
            )  # fmt: skip
        else:
            result = gpg.encrypt(
                key, list(self.fingerprints), always_trust=True, armor=False,
                extra_args=["--compress-algo", "none"],
            )  # fmt: skip
        if not result.ok:
            raise EncryptionFailed(_gpg_reason(result))
        return bytes(result.data)

    def _import_recipients(self) -> tuple[str, ...]:
        gpg = _gpg(self.home)
        fingerprints: list[str] = []
        for recipient in self.config.recipients:
            if os.path.isfile(recipient):
                try:
                    data = Path(recipient).read_bytes()
                except OSError as exc:
                    raise BadInput(f"cannot read key file {recipient}: {exc.strerror}") from None
                what = f"file {recipient}"
            else:
                data = _gpg(None).export_keys(recipient, armor=True).encode()
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
            raise BadInput(f"cannot encrypt to {', '.join(fingerprints)}: {_gpg_reason(probe)}")
        return tuple(fingerprints)

    def stage(self, pipeline: Pipeline, src: Readable) -> Readable:
        if self.config.mode == "none":
            return src
        args = ["--symmetric", "--cipher-algo", CIPHER, "--compress-algo", "none",
                *ENTRY_S2K, "--no-symkey-cache"]  # fmt: skip

        def run(source: Readable, dst: BinaryIO) -> None:
            problem = _gpg_stream(
                args, self.home, self.data_key, source, pipeline.fd_of(source), dst
            )
            if problem:
                raise EncryptionFailed(problem)

        return pipeline.stage("gpg-encrypt", run, src)


def _gpg_bytes(args: list[str], key: str, data: bytes) -> tuple[bytes, str, int]:
    """gpg over a small message held in memory, the data key on a pipe of its own, in a
    throwaway home: one process (python-gnupg would start two more, to learn gpg's
    version). Its output, its status lines and its exit status."""
    with _throwaway_home() as home:
        secret_r, secret_w = os.pipe()
        try:
            os.write(secret_w, key.encode() + b"\n")
        finally:
            os.close(secret_w)
        try:
            done = subprocess.run(
                _gpg_argv(home, secret_r, ["--no-symkey-cache", *args]),
                input=data, capture_output=True, pass_fds=(secret_r,), check=False,
            )  # fmt: skip
        finally:
            os.close(secret_r)
    return done.stdout, done.stderr.decode("utf-8", "replace"), done.returncode


def seal(data: bytes, key: str) -> bytes:
    """``data`` encrypted with a data key as an entry is (AES256, no stretching): the
    whole of a small file (a WAL file), not a stream."""
    args = ["--symmetric", "--cipher-algo", CIPHER, "--compress-algo", "none", *ENTRY_S2K]
    out, said, code = _gpg_bytes(args, key, data)
    if code != 0:
        raise EncryptionFailed(_said(said) or "gpg failed")
    return out


def open_sealed(data: bytes, key: str) -> bytes:
    """What ``seal`` encrypted; ValueError when ``data`` is not an encrypted message (a
    plain packet gpg would print as if decrypted) or does not decrypt whole."""
    import io

    encrypted_message(io.BytesIO(data))
    out, said, code = _gpg_bytes(["--decrypt"], key, data)
    if code != 0 or not re.search(r"^\[GNUPG:\] DECRYPTION_OKAY\b", said, re.M):
        raise ValueError(f"it does not decrypt: {_said(said) or 'gpg failed'}")
    return out


def unwrap_key(data: bytes, recipients: tuple[str, ...], passphrase: str | None) -> str:
    """The data key inside a set's ``key.gpg``: with the passphrase (in a throwaway home),
    or, for a set made for recipients, with a secret key of the user's keyring (where the
    passphrase, if any, unlocks it). Raises DecryptionFailed, naming no secret."""
    if passphrase is not None:
        _check_passphrase(passphrase)
    with contextlib.ExitStack() as stack:
        home = None if recipients else stack.enter_context(_throwaway_home())
        # a data key is 64 characters: a planted key.gpg that inflates (compressed zeros)
        # is cut off by gpg itself, not collected in memory
        extra = ["--max-output", "4096", *([] if recipients else ["--no-symkey-cache"])]
        result = _gpg(home).decrypt(data, passphrase=passphrase, extra_args=extra)
    key = bytes(result.data).decode("ascii", "replace").strip() if result.ok else ""
    if not result.ok:
        raise DecryptionFailed("-", KEY_FILE, _gpg_reason(result))
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
    secret = _gpg(None).list_keys(secret=True)
    held = {key["fingerprint"] for key in secret}
    held |= {sub[2] for key in secret for sub in key.get("subkeys", []) if len(sub) > 2}
    return any(fp in held for fp in encryption.recipients)


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
    _gpg_binary()
    if passphrase is not None:
        _check_passphrase(passphrase)

    symmetric = encryption.mode in ("passphrase", SET_KEY)  # SET_KEY: passphrase is the data key

    def run(source: Readable, dst: BinaryIO) -> None:
        try:
            checked = encrypted_message(source)
        except ValueError as exc:
            raise DecryptionFailed(set_id, entry, exc) from None
        with contextlib.ExitStack() as stack:
            home = stack.enter_context(_throwaway_home()) if symmetric else None
            args = ["--decrypt", *(["--no-symkey-cache"] if symmetric else [])]
            problem = _gpg_stream(args, home, passphrase, checked, None, dst, "DECRYPTION_OKAY")
            if problem:
                raise DecryptionFailed(set_id, entry, problem)

    return pipeline.stage("gpg-decrypt", run, src)
