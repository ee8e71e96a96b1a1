"""One error type with an exit code; the leaves' docstrings are their messages.

Exit codes (SPEC §4): 1 a check failed, 2 bad input or configuration, 3 an operation failed.
A leaf is raised with the values its docstring's ``{}`` fields name, in order.
"""

from __future__ import annotations

from typing import ClassVar


class OffsiteError(Exception):
    """{}"""

    exit_code: ClassVar[int] = 3

    def message(self) -> str:
        doc = type(self).__doc__ or "{}"
        template = doc.strip().splitlines()[0]
        try:
            return template.format(*self.args)
        except (IndexError, KeyError, ValueError):
            return " ".join(str(a) for a in self.args) or template


# --- exit 1: a check failed -------------------------------------------------------------


class CheckFailed(OffsiteError):
    """{}"""

    exit_code = 1


class ChecksumMismatch(CheckFailed):
    """checksum mismatch in set {} entry {!r}: stored bytes do not match the manifest"""


class SizeMismatch(CheckFailed):
    """size mismatch in set {} entry {!r}: manifest says {} bytes, storage has {}"""


class EntryMissing(CheckFailed):
    """set {} entry {!r}: file {} is missing from the destination"""


class UnsafeMember(CheckFailed):
    """entry {!r}: refusing the archive member {!r}: {}"""


class ArchiveUnreadable(CheckFailed):
    """entry {!r}: not a readable tar archive: {}"""


class NotAuthenticated(CheckFailed):
    """set {} does not prove it was made with your key: {}"""


class KeyDoesNotOpen(NotAuthenticated):
    """set {} does not prove it was made with your key: its key.gpg does not open with the passphrase ({})"""  # noqa: E501


class WalMissing(CheckFailed):
    """WAL file {} is not in the archive {}"""


class ArchiveRefused(CheckFailed):
    """the WAL archive in {} {}: refusing to recover from it"""


class WalConflict(CheckFailed):
    """WAL file {} is already archived in {} with other content: refusing to overwrite it"""


class NotEncrypted(CheckFailed):
    """set {} is not encrypted while a key is configured"""


class BaseBroken(CheckFailed):
    """set {} is a diff of set {}, which {}"""


# --- exit 2: bad input or configuration ---------------------------------------------


class BadInput(OffsiteError):
    """{}"""

    exit_code = 2


class UnknownScheme(BadInput):
    """unknown {} scheme {!r} in {!r} (known: {})"""


class UnknownKind(BadInput):
    """an entry of kind {!r} needs a newer offsite (this one reads: {}): upgrade offsite"""


class MalformedURL(BadInput):
    """malformed {} URL {!r}: {}"""


class MissingPassphrase(BadInput):
    """no encryption key: set {} (or name another variable with --passphrase-env, or give --passphrase-file), give --recipient, or pass --no-encrypt"""  # noqa: E501


class PassphraseNeeded(BadInput):
    """set {} entry {!r} is encrypted with a passphrase: put it in OFFSITE_PASSPHRASE or name its variable with --passphrase-env"""  # noqa: E501


class MissingExtra(BadInput):
    """{} destinations need the {} package: pip install 'offsite[{}]'"""


class SourceNotFound(BadInput):
    """source {!r} does not exist or cannot be read"""


class RebuildRefused(BadInput):
    """restore into github://{}: {}"""


class TargetNotEmpty(BadInput):
    """restore target {} is not empty; pass --force to restore over it"""


class SetNotFound(BadInput):
    """no backup set {} in {}"""


class DestinationMissing(BadInput):
    """destination {} does not exist or is not a folder"""


class DestinationIsFile(DestinationMissing):
    """destination {}: {} is a file, not a folder"""


class NoSets(BadInput):
    """no complete backup set in {}"""


class SetGone(BadInput):
    """no backup set {} in {}: {}"""


class EntryNotFound(BadInput):
    """set {} has no entry {!r} (entries: {})"""


class ManifestError(CheckFailed):
    """manifest {} is not valid: {}"""


class UnsupportedManifest(BadInput):
    """manifest {} has format {!r}, which needs a newer offsite (this offsite {} reads {}): upgrade offsite"""  # noqa: E501


# --- exit 3: an operation failed ----------------------------------------------------


class OperationFailed(OffsiteError):
    """{}"""


class SourceFailed(OperationFailed):
    """entry {!r}: {}"""


class EncryptionFailed(OperationFailed):
    """encryption failed: {}"""


class DecryptionFailed(OperationFailed):
    """could not decrypt set {} entry {!r}: {}"""


class WrongPassphrase(OperationFailed):
    """the passphrase {} here (wrong passphrase?)"""


class StorageError(OperationFailed):
    """{}: {}"""


class NotAnObject(StorageError):
    """{}: {} is not a regular file"""


class StorageDenied(StorageError):
    """{}: {}"""


class ObjectMissing(StorageError):
    """{}: no object {!r} there"""


class WalCorrupt(OperationFailed):
    """WAL file {} in {} is corrupt: {}"""


class RestoreFailed(OperationFailed):
    """restore of entry {!r} failed: {}"""


class RebuildFailed(OperationFailed):
    """restore into github://{}: {} (a second run resumes where this one stopped)"""
