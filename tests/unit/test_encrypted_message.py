"""An entry's bytes reach gpg only once they look like an encrypted OpenPGP message:
gpg --decrypt would print a plain literal packet as if it had decrypted it."""

from __future__ import annotations

import functools
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from offsite.crypto.openpgp import encrypted_message


def _gpg(home: Path, *args: str, data: bytes = b"planted rows\n" * 100) -> bytes:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase", "p", "-o", "-", *args], input=data, capture_output=True, check=True,
    ).stdout  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "gnupg"
    folder.mkdir(mode=0o700)
    yield folder
    subprocess.run(["gpgconf", "--homedir", str(folder), "--kill", "gpg-agent"], check=False,
                   capture_output=True)  # fmt: skip


def test_an_encrypted_message_passes_whole(home: Path) -> None:
    for args in (
        ["--symmetric", "--s2k-count", "65011712"],
        ["--symmetric", "--s2k-count", "65536"],
    ):
        data = _gpg(home, *args)
        out = encrypted_message(io.BytesIO(data))
        assert b"".join(iter(functools.partial(out.read, 7), b"")) == data


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--store", "--compress-algo", "none"], "packet type 11"),
     (["--store", "--compress-algo", "zlib"], "packet type 8"),
     (["--symmetric", "--rfc2440", "--s2k-count", "65536"], "packet type 9")],
)  # fmt: skip
def test_a_plain_compressed_or_unprotected_message_is_refused(
    home: Path, args: list[str], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        encrypted_message(io.BytesIO(_gpg(home, *args)))


@pytest.mark.parametrize("data", [b"", b"\x00\x01", b"plain text", b"\xc3"])
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an"):
        encrypted_message(io.BytesIO(data))
