"""Verifying sets: every stored file present with its size, and with ``--read-data``
every byte read, hashed against the manifest, decrypted and decompressed."""

from __future__ import annotations

from dataclasses import dataclass

from offsite.errors import (
    BadInput,
    BaseBroken,
    CheckFailed,
    EntryMissing,
    OffsiteError,
    SizeMismatch,
)
from offsite.restore import read_entry
from offsite.sets.manifest import MANIFEST_NAME
from offsite.sets.stored import StoredSet, chain_problem, scan
from offsite.sets.trust import TrustConfig, Verifier
from offsite.storage import Storage
from offsite.stream.progress import Progress
from offsite.stream.readers import CHUNK, Readable


@dataclass(frozen=True)
class Subset:
    """``--read-data-subset N/T``: the N-th of T interleaved shares of all entries."""

    n: int
    total: int

    @classmethod
    def parse(cls, text: str) -> Subset:
        try:
            n, total = (int(x) for x in text.split("/"))
        except ValueError:
            raise BadInput(f"--read-data-subset takes N/T, e.g. 1/5, not {text!r}") from None
        if not (total >= 1 and 1 <= n <= total):
            raise BadInput(f"--read-data-subset {text}: need 1 <= N <= T")
        return cls(n, total)

    def includes(self, index: int) -> bool:
        return index % self.total == self.n - 1


@dataclass(frozen=True)
class EntryCheck:
    set_id: str
    entry: str
    file: str
    read_data: bool
    decrypted: bool = False
    problem: str | None = None
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    @classmethod
    def of_set(cls, set_id: str, problem: str, what: str = "(manifest)") -> EntryCheck:
        """A failed check of a whole set (its manifest refused, not authenticated): exit 1."""
        return cls(set_id, what, MANIFEST_NAME, False, False, problem, CheckFailed.exit_code)


def _discard(stream: Readable) -> None:
    while stream.read(CHUNK):
        pass


def verify_sets(
    storage: Storage,
    sets: list[StoredSet],
    read_data: bool,
    subset: Subset | None = None,
    verifier: Verifier | None = None,
    progress: Progress | None = None,
) -> list[EntryCheck]:
    """Check each set; with a verifier, a set that may not be used (not authenticated, not
    encrypted) is one failed check, and entries are decrypted with the keys it hands out."""
    progress = progress or Progress(enabled=False)
    verifier = verifier or Verifier(storage, TrustConfig())
    checks: list[EntryCheck] = []
    index = 0
    everything = sets_of(storage, sets)
    for stored in sets:
        refused = verifier.refusal(stored, True)  # verify names what it checks: older sets pass
        if refused is not None:
            checks.append(EntryCheck.of_set(stored.id, refused.message()))
            continue
        broken = chain_problem(stored, everything, verifier.check)
        if broken is not None:  # a diff whose base is gone or another (SPEC §10)
            assert stored.manifest.base is not None
            why = BaseBroken(stored.id, stored.manifest.base.id, broken)
            checks.append(EntryCheck.of_set(stored.id, why.message(), "(base)"))
        for entry in (o for e in stored.manifest.entries for o in e.objects()):
            reading = read_data or (subset is not None and subset.includes(index))
            index += 1
            decode = reading and verifier.can_decrypt(entry)
            try:
                if reading:
                    key = verifier.entry_key(stored, entry) if decode else None
                    with progress.task(f"verify {stored.id}/{entry.name}") as meter:
                        read_entry(storage, stored, entry, key, _discard, meter.add_read, decode)
                else:
                    info = storage.stat(stored.key(entry.file))
                    if info is None:
                        raise EntryMissing(stored.id, entry.name, entry.file)
                    if info.size != entry.size:
                        raise SizeMismatch(stored.id, entry.name, entry.size, info.size)
                checks.append(EntryCheck(stored.id, entry.name, entry.file, reading, decode))
            except BadInput:
                raise
            except OffsiteError as exc:
                checks.append(
                    EntryCheck(
                        stored.id,
                        entry.name,
                        entry.file,
                        reading,
                        decode,
                        exc.message(),
                        exc.exit_code,
                    )
                )
    return checks


def sets_of(storage: Storage, checked: list[StoredSet]) -> list[StoredSet]:
    """Where the bases of ``checked`` are looked for: every set of the destination, read
    once, when one of them is a diff."""
    if not any(s.manifest.base for s in checked):
        return checked
    return scan(storage).sets


def exit_code(checks: list[EntryCheck]) -> int:
    """1 when a check failed; 3 when only operations (e.g. decryption) failed."""
    codes = {c.exit_code for c in checks if not c.ok}
    if not codes:
        return 0
    return CheckFailed.exit_code if CheckFailed.exit_code in codes else max(codes)
