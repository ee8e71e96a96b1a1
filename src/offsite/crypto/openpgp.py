"""What an encrypted entry must look like before gpg reads a byte of it: OpenPGP packets
(RFC 4880 §4.2, headers in the old and the new format), session keys first, then
integrity-protected encrypted data. ``gpg --decrypt`` prints a plain or compressed literal
packet as if it had decrypted it, and a restore applies what it prints as it comes.
"""

from __future__ import annotations

from offsite.stream.readers import Readable

_ESK_TAGS = (1, 3)  # a session key encrypted to a public key, or with a passphrase
_ENCRYPTED_TAGS = (18, 20)  # integrity-protected encrypted data (SEIPD, AEAD)
_PEEK = 1 << 16


def _packet_header(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, body length or -1 when partial/indeterminate, header length) of the OpenPGP
    packet at ``pos``; None when ``data`` ends inside its header."""
    if pos >= len(data):
        return None
    first = data[pos]
    if not first & 0x80:
        raise ValueError("not an OpenPGP message")
    if first & 0x40:  # new format
        tag = first & 0x3F
        if pos + 1 >= len(data):
            return None
        octet = data[pos + 1]
        if octet < 192:
            return tag, octet, 2
        if octet < 224:
            if pos + 2 >= len(data):
                return None
            return tag, ((octet - 192) << 8) + data[pos + 2] + 192, 3
        if octet == 255:
            if pos + 6 > len(data):
                return None
            return tag, int.from_bytes(data[pos + 2 : pos + 6], "big"), 6
        return tag, -1, 2  # a partial body length
    tag, kind = (first >> 2) & 0x0F, first & 0x03
    if kind == 3:
        return tag, -1, 1
    size = (1, 2, 4)[kind]
    if pos + 1 + size > len(data):
        return None
    return tag, int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), 1 + size


def encrypted_message(source: Readable) -> Readable:
    """``source``, once its first packets show an encrypted OpenPGP message: one or more
    encrypted session keys, then integrity-protected encrypted data. gpg prints a plain
    literal packet (``gpg --store``) as if it had decrypted it, and a restore would apply
    those bytes as they come; a planted entry must fail before gpg sees a byte of it.
    Raises ValueError naming what it found instead."""
    head = b""
    pos, sessions = 0, 0
    while True:
        found = _packet_header(head, pos)
        if found is None:
            more = source.read(_PEEK)
            if not more or len(head) > _PEEK:
                raise ValueError("not an encrypted OpenPGP message (it ends, or starts oddly)")
            head += more
            continue
        tag, length, header = found
        if tag in _ESK_TAGS and length >= 0:
            pos += header + length
            sessions += 1
            continue
        if tag in _ENCRYPTED_TAGS and sessions:
            break
        raise ValueError(f"not an encrypted OpenPGP message (packet type {tag} first)")
    return _Prefixed(head, source)


class _Prefixed:
    """``head`` first, then the rest of ``inner``."""

    def __init__(self, head: bytes, inner: Readable) -> None:
        self._head, self._inner = head, inner

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        return self._inner.read(size)

    def close(self) -> None:
        self._inner.close()
