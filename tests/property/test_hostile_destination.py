"""A destination writer against the WAL archive and the drill records (issue 30): planted,
swapped, truncated, renamed and deleted objects, generated. Whatever they do, a fetch
hands over only the bytes that were pushed under that name, a push still stores the next
file (and it then fetches back), and the monitor counts no drill the key did not seal.
In process, on a folder destination: 1,000 cases a run (the security page records the counts)."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offsite.crypto.gpg import CIPHER, ENTRY_S2K, small
from offsite.crypto.keys import EncryptionConfig
from offsite.errors import OffsiteError
from offsite.monitor.stored import observe_storage
from offsite.sets import drill_records
from offsite.sets.trust import TrustConfig
from offsite.storage.local import LocalStorage
from offsite.storage.settings import StorageSettings
from offsite.wal.archive import Archive, object_name
from offsite.wal.keycache import KeyCache
from offsite.wal.packed import pack
from tests.property.test_untrusted_input import PROPERTY

PASSPHRASE = "the archive's passphrase"
SYSTEM, OTHER = "7300000000000000001", "7300000000000000002"
PUSHED = ["000000010000000000000001", "000000010000000000000002", "00000002.history"]
NEVER = "000000010000000000000003"  # pushed in the other cluster only
NEXT = "000000010000000000000004"  # what the server archives next, during the case
NAMES = [*PUSHED, NEVER]
CONFIG = EncryptionConfig("passphrase", passphrase=PASSPHRASE)


def _plain(name: str, system_id: str) -> bytes:
    """What was archived under ``name``: small (the archive checks frames and keys, not
    headers: wal push does that before, tests/cli/test_wal.py)."""
    if name.endswith(".history"):
        return f"1\t0/3000000\tno recovery target specified\n{system_id}\n".encode()
    return f"{system_id} {name} ".encode() * 200


@dataclass(frozen=True)
class Made:
    root: Path  # a destination: this cluster's archive, and another cluster's
    cache: Path  # both archives' keys, unwrapped once (0600 files)
    key: str  # this cluster's archive key, which its database host pins


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    root = tmp_path_factory.mktemp("hostile") / "dest"
    cache = root.parent / "keys"
    storage = LocalStorage(str(root))
    keys = {}
    for system_id in (SYSTEM, OTHER):  # the other: the user's own other cluster
        archive = Archive(storage, system_id, cache)
        key = keys[system_id] = archive.key_for_push(CONFIG) or ""
        for name in NAMES if system_id == OTHER else PUSHED:
            archive.push(name, pack(_plain(name, system_id), name, system_id), key)
    return Made(root, cache, keys[SYSTEM])


@contextlib.contextmanager
def copy_of(made: Made) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="offsite-hostile-"))
    try:
        shutil.copytree(made.root, work / "dest")
        yield work / "dest"
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- what the writer does ------------------------------------------------------------------
def _key(folder: Path, name: str, beside: int) -> Path:
    return Path(object_name(str(folder), name, True, beside))


PAYLOADS = st.one_of(
    st.binary(max_size=64),  # junk
    # a real object: this archive's first file (under another name), or the other
    # cluster's file of that name (encrypted with its key, framed for its cluster)
    st.sampled_from(["own", "other"]),
)
OPS = st.one_of(
    st.tuples(st.just("plant"), st.sampled_from([*NAMES, NEXT]), st.integers(0, 2), PAYLOADS),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just(0), st.just(b"")),
    st.tuples(st.just("truncate"), st.sampled_from(PUSHED), st.integers(0, 400), st.just(b"")),
    st.tuples(st.just("rename"), st.sampled_from(PUSHED), st.integers(0, 3), st.just(b"")),
    st.tuples(st.just("swap-key"), st.just(""), st.just(0), st.just(b"")),
    st.tuples(st.just("delete-key"), st.just(""), st.just(0), st.just(b"")),
)


def _attack(dest: Path, ops: list[tuple[str, str, int, Any]]) -> None:
    mine, other = dest / "wal" / SYSTEM, dest / "wal" / OTHER
    for op, name, number, payload in ops:
        if op == "plant":
            if isinstance(payload, bytes):
                data = payload
            elif payload == "own":
                data = (
                    _key(mine, PUSHED[0], 0).read_bytes()
                    if _key(mine, PUSHED[0], 0).exists()
                    else b""
                )
            else:
                data = _key(other, name if name in NAMES else NEVER, 0).read_bytes()
            _key(mine, name, number).write_bytes(data)
        elif op == "delete":
            _key(mine, name, 0).unlink(missing_ok=True)
        elif op == "truncate":
            path = _key(mine, name, 0)
            if path.exists():
                path.write_bytes(path.read_bytes()[:number])
        elif op == "rename":
            path, target = _key(mine, name, 0), _key(mine, NAMES[number], 0)
            if path.exists():
                path.replace(target)
        elif op == "swap-key":
            shutil.copy(other / "key.gpg", mine / "key.gpg")
        elif op == "delete-key":
            (mine / "key.gpg").unlink(missing_ok=True)


@PROPERTY(350)
@given(ops=st.lists(OPS, min_size=1, max_size=4))
def test_a_fetch_hands_over_only_what_was_pushed_and_pushing_goes_on(
    made: Made, ops: list[tuple[str, str, int, Any]]
) -> None:
    with copy_of(made) as dest:
        storage = LocalStorage(str(dest))
        archive = Archive(storage, SYSTEM, made.cache)
        KeyCache(made.cache).pin(archive.where, SYSTEM, made.key)  # the database host's pin
        _attack(dest, ops)
        for name in NAMES:
            try:
                got = archive.fetch(name, PASSPHRASE)
            except OffsiteError:
                continue  # not there, or does not authenticate: never replayed
            assert name in PUSHED and got == _plain(name, SYSTEM), (name, ops)
        # availability: the server's next file is archived all the same, and comes back
        pusher = Archive(storage, SYSTEM, made.cache)
        key = pusher.key_for_push(CONFIG)
        plain = _plain(NEXT, SYSTEM)
        pusher.push(NEXT, pack(plain, NEXT, SYSTEM), key)
        # it comes back once key.gpg is whole (a replaced one is copied back from another
        # destination; the host archived with the key it pinned all along)
        shutil.copy(made.root / "wal" / SYSTEM / "key.gpg", dest / "wal" / SYSTEM / "key.gpg")
        assert Archive(storage, SYSTEM, made.cache).fetch(NEXT, PASSPHRASE) == plain, ops


# -- drill records -------------------------------------------------------------------------
SET, OTHER_SET = "20261201T000000Z", "20261202T000000Z"


@dataclass(frozen=True)
class Drills:
    root: Path
    genuine: drill_records.DrillRecord
    wrapped: str  # the set's key.gpg, base64
    theirs: str  # a key.gpg the attacker made with their own passphrase, base64
    their_key: str


def _wrap(data_key: str, passphrase: str) -> str:
    """A key.gpg of ``data_key`` (stretched little: the test's cases are many)."""
    out, _, code = small(["--symmetric", "--cipher-algo", CIPHER, *ENTRY_S2K], passphrase,
                         data_key.encode())  # fmt: skip
    assert code == 0
    return base64.b64encode(out).decode()


@pytest.fixture(scope="module")
def drills(tmp_path_factory: pytest.TempPathFactory) -> Drills:
    root = tmp_path_factory.mktemp("drills") / "dest"
    data_key, their_key = "a1" * 32, "b2" * 32
    wrapped, theirs = _wrap(data_key, PASSPHRASE), _wrap(their_key, "the attacker's own")
    when = (datetime.now(timezone.utc) - timedelta(days=2)).strftime(drill_records.STAMP)
    genuine = drill_records.DrillRecord(SET, when, True, 42.0, "folder", [], wrapped)
    genuine = genuine.sealed(data_key)
    (root / "drills" / SET).mkdir(parents=True)
    (root / genuine.key).write_bytes(genuine.to_json())
    return Drills(root, genuine, wrapped, theirs, their_key)


STAMPS = st.integers(0, 5 * 24 * 3600).map(
    lambda s: (datetime.now(timezone.utc) - timedelta(seconds=s)).strftime(drill_records.STAMP)
)
FORGED = st.tuples(
    st.sampled_from(["forge", "copy", "truncate", "flip", "edit"]),
    st.sampled_from([SET, OTHER_SET]),
    STAMPS,
    st.booleans(),
    st.floats(0, 1e6, allow_nan=False),
    st.sampled_from(["real", "theirs", "junk", "none"]),
    st.sampled_from(["none", "copied", "random", "their-key"]),
    st.integers(0, 2000),
)


def _forge(where: Path, d: Drills, case: tuple[Any, ...]) -> None:
    what, set_id, when, ok, rto, key_gpg, auth, cut = case
    genuine_bytes = (where / d.genuine.key).read_bytes()
    target = where / "drills" / set_id / f"{when}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    if what == "copy":
        target.write_bytes(genuine_bytes)
    elif not genuine_bytes:
        return  # truncated to nothing already
    elif what == "truncate":
        (where / d.genuine.key).write_bytes(genuine_bytes[: cut % len(genuine_bytes)])
    elif what == "flip":
        flipped = bytearray(genuine_bytes)
        flipped[cut % len(flipped)] ^= 0x01
        (where / d.genuine.key).write_bytes(bytes(flipped))
    elif what == "edit":  # the real record, a better RTO, its auth kept
        try:
            doc = json.loads(genuine_bytes)
        except ValueError:
            return  # already broken by an earlier case
        doc.update(rto_seconds=1.0, ok=True)
        (where / d.genuine.key).write_text(json.dumps(doc))
    else:
        wrapped = {"real": d.wrapped, "theirs": d.theirs, "junk": "AAAA", "none": ""}[key_gpg]
        record = drill_records.DrillRecord(set_id, when, ok, rto, "folder", [], wrapped)
        if auth == "copied":
            record = replace(record, auth=d.genuine.auth)
        elif auth == "random":
            record = replace(record, auth={"alg": "HMAC-SHA256", "mac": "0" * 64})
        elif auth == "their-key":
            record = record.sealed(d.their_key)
        target.write_bytes(record.to_json())


@PROPERTY(650)
@given(cases=st.lists(FORGED, min_size=1, max_size=3))
def test_the_monitor_counts_no_drill_the_key_did_not_seal(
    drills: Drills, cases: list[tuple[Any, ...]]
) -> None:
    work = Path(tempfile.mkdtemp(prefix="offsite-drills-"))
    try:
        where = work / "dest"
        shutil.copytree(drills.root, where)
        for case in cases:
            _forge(where, drills, case)
        seen = observe_storage(str(where), StorageSettings(), TrustConfig(passphrase=PASSPHRASE))
        for drill in seen.drills:
            g = drills.genuine
            assert drill.verified, cases
            assert (drill.set_id, drill.when, drill.rto_seconds, drill.ok) == (
                g.set_id, g.moment, g.rto_seconds, g.ok), cases  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
