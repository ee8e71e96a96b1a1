"""Running ``gpg``: the one place that finds the binary, makes throwaway homes, builds its
command line, reads why it failed, and runs it over a stream or a small message.

Passphrases and data keys reach gpg on a pipe of their own (``--passphrase-fd``), never in
argv. The entries' bytes go through ``stream``: gpg between OS pipes (the upstream stage's
pipe as its stdin, the next stage's as its stdout), so a gigabyte never crosses Python
twice as it does through python-gnupg's reader and writer threads (bench/RESULTS.md).
python-gnupg (``client``) handles keys, ``key.gpg`` and other small messages.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any, BinaryIO

import gnupg

from offsite.errors import BadInput
from offsite.stream.readers import CHUNK, Readable

CIPHER = "AES256"
ENTRY_S2K = ["--s2k-count", "65536"]  # the data key is random: no stretching needed
# The passphrase is stretched with OpenPGP's largest count, the one gpg-agent calibrates to
# on any current machine: named here, so no agent starts (and calibrates for ~0.9 s) in
# the throwaway home just to find it.
KEY_S2K = ["--s2k-count", "65011712"]


def binary() -> str:
    binary = shutil.which("gpg")
    if binary is None:
        raise BadInput("gpg not found: install GnuPG (apt-get install gnupg)")
    return binary


# gpg's stderr as python-gnupg reads it (in a thread, line by line): UTF-8 whose invalid
# bytes are replaced, not raised. A planted packet's file name is printed there as it is;
# one 0xff byte killed the reader thread, and every status line after it was lost.
LENIENT_UTF8 = "offsite_lenient_utf8"


def _lenient(name: str) -> codecs.CodecInfo | None:
    if name != LENIENT_UTF8:
        return None
    utf8 = codecs.lookup("utf-8")

    class Reader(utf8.streamreader):  # type: ignore[name-defined,misc]
        def __init__(self, stream: Any, errors: str = "replace") -> None:
            super().__init__(stream, errors)

    return codecs.CodecInfo(
        utf8.encode, utf8.decode, streamreader=Reader, streamwriter=utf8.streamwriter,
        incrementalencoder=utf8.incrementalencoder, incrementaldecoder=utf8.incrementaldecoder,
        name=LENIENT_UTF8,
    )  # fmt: skip


codecs.register(_lenient)


def client(home: str | None) -> Any:
    gpg = gnupg.GPG(gpgbinary=binary(), gnupghome=home)
    gpg.buffer_size = CHUNK
    gpg.encoding = LENIENT_UTF8  # strict UTF-8 everywhere but gpg's stderr
    return gpg


def check_passphrase(passphrase: str) -> None:
    if "\n" in passphrase or "\r" in passphrase:
        raise BadInput("the passphrase contains a line break; gpg cannot take it")


@contextlib.contextmanager
def throwaway_home() -> Any:
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


def reason(result: Any) -> str:
    """The most telling line of what gpg said, without status noise."""
    said = str(getattr(result, "stderr", "") or "")
    return why(said) or str(getattr(result, "status", None) or "gpg failed")


WRONG_PASSPHRASE = "wrong passphrase"


def why(stderr: str) -> str:
    """Why gpg failed, from what it wrote (status lines included); empty if it said nothing."""
    # gpg's own status line and message, anchored: a name inside a planted key.gpg
    # (--set-filename) is in what gpg prints too
    if re.search(r"^\[GNUPG:\] BAD_PASSPHRASE\b|^gpg: decryption failed: Bad session key$",
                 stderr, re.M):  # fmt: skip
        return WRONG_PASSPHRASE
    if "NO_SECKEY" in stderr:
        return "no secret key for this backup in the keyring (GNUPGHOME)"
    if "DECRYPTION_FAILED" in stderr and "MISSING_PASSPHRASE" in stderr:
        return "a passphrase is needed"
    lines = [ln for ln in stderr.splitlines()
             if ln.startswith("gpg: ") and not ln.startswith("gpg: keybox ")]  # fmt: skip
    return lines[-1][5:] if lines else ""


def command(home: str | None, secret_fd: int, args: list[str]) -> list[str]:
    """gpg unattended, status lines on stderr, the passphrase (if any) from ``secret_fd``,
    its output on stdout."""
    argv = [binary(), "--batch", "--no-tty", "--status-fd", "2"]
    if home:
        argv += ["--homedir", home]
    if secret_fd >= 0:
        argv += ["--pinentry-mode", "loopback", "--passphrase-fd", str(secret_fd)]
    return [*argv, *args, "--output", "-"]


def stream(
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
    argv = command(home, secret_r, args)
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
        return why(stderr) or "gpg failed"
    if required and not re.search(rf"^\[GNUPG:\] {required}\b", stderr, re.M):
        return f"gpg did not report {required}"
    return None


def small(args: list[str], key: str, data: bytes) -> tuple[bytes, str, int]:
    """gpg over a small message held in memory, the data key on a pipe of its own, in a
    throwaway home: one process (python-gnupg would start two more, to learn gpg's
    version). Its output, its status lines and its exit status."""
    with throwaway_home() as home:
        secret_r, secret_w = os.pipe()
        try:
            os.write(secret_w, key.encode() + b"\n")
        finally:
            os.close(secret_w)
        try:
            done = subprocess.run(
                command(home, secret_r, ["--no-symkey-cache", *args]),
                input=data, capture_output=True, pass_fds=(secret_r,), check=False,
            )  # fmt: skip
        finally:
            os.close(secret_r)
    return done.stdout, done.stderr.decode("utf-8", "replace"), done.returncode
