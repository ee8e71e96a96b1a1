"""``wal push --async`` and ``wal fetch --async`` (SPEC §8: pushing and fetching ahead):
one background process does the work, each call confirms its own file or moves a file
already there, and exit codes mean what they mean without ``--async``. The data directory
is tests/cli/test_wal.py's stand-in; tests/db/test_pitr.py archives and recovers a real
server this way."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from offsite.cli.wal import fetch as fetch_command
from offsite.cli.wal import push as push_command
from offsite.stream.digest import file_sha256
from offsite.wal import spool as quick
from tests.cli.test_wal import datadir
from tests.walfiles import segment

SYSTEM_ID = "7312345678901234567"
NAMES = [f"0000000100000000000000{n:02X}" for n in range(1, 6)]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passphrase: str) -> Path:
    """A data directory with five segments (of 1 MiB, the smallest size a cluster can
    have) PostgreSQL has marked ready to archive."""
    folder = datadir(tmp_path, int(SYSTEM_ID))
    (folder / "pg_wal" / "archive_status").mkdir()
    for i, name in enumerate(NAMES):
        body = os.urandom(2048) + f"wal {i} ".encode() * 200_000
        (folder / "pg_wal" / name).write_bytes(segment(name, SYSTEM_ID, body))
        (folder / "pg_wal" / "archive_status" / f"{name}.ready").touch()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return folder


def _push_args(dest: Path, name: str) -> list[str]:
    return ["wal", "push", f"pg_wal/{name}", "--to", str(dest), "--async"]


def _fetch_args(dest: Path, name: str) -> list[str]:
    return ["wal", "fetch", name, "pg_wal/RECOVERYXLOG", "--from", str(dest), "--async"]


def _until(what: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "the process ahead did not get there"
        time.sleep(0.05)


def _spool(verb: str, args: list[str]) -> quick.Spool:
    found = quick.locate(verb, args[2:])
    assert found is not None
    return found[0]


def test_the_quick_answer_reads_the_options_as_click_does() -> None:
    """A value option read as a flag would take the next argument for the path."""
    options = {
        (opt, param.is_flag)  # type: ignore[attr-defined]
        for command in (push_command, fetch_command)
        for param in command.params
        if param.param_type_name == "option"
        for opt in param.opts
    }
    assert {name for name, flag in options if flag} == quick.FLAGS
    assert {name for name, flag in options if not flag} == quick.VALUES
    assert quick.parse(["pg_wal/X", "--to", "--async"]) is None  # click's error, not ours
    assert quick.parse(["pg_wal/X", "--unknown", "v"]) is None
    assert quick.parse(["--to=/d", "--async", "--", "-x"]) == (["-x"], {"--to": ["/d"],
                                                                      "--async": [""]})  # fmt: skip


def test_pushing_ahead_stores_every_ready_file_everywhere_and_confirms_only_that(
    cli, tmp_path: Path, cluster: Path
) -> None:
    dest, second = tmp_path / "dest", tmp_path / "second"
    args = lambda name: [*_push_args(dest, name), "--to", str(second)]  # noqa: E731
    r = cli(*args(NAMES[0]))
    assert r.code == 0, r.err
    archives = [dest / "wal" / SYSTEM_ID, second / "wal" / SYSTEM_ID]
    assert all((a / f"{NAMES[0]}.zst.gpg").exists() for a in archives)  # exit 0: durable
    # the process ahead pushes what PostgreSQL has ready, before it is asked, everywhere
    _until(lambda: all((a / f"{n}.zst.gpg").exists() for a in archives for n in NAMES))
    spool = _spool("push", args(NAMES[1]))
    assert oct(Path(spool.folder).stat().st_mode & 0o777) == "0o700"
    _until(lambda: spool.record(NAMES[1]) is not None)
    assert quick.answer(args(NAMES[1])) == 0  # answered without click
    # the same name with other content is not confirmed by the record of the first
    (cluster / "pg_wal" / NAMES[2]).write_bytes(segment(NAMES[2], SYSTEM_ID, b"other"))
    assert quick.answer(args(NAMES[2])) is None
    started = time.monotonic()
    r = cli(*args(NAMES[2]))
    assert r.code == 1 and "refusing to overwrite" in r.err
    assert time.monotonic() - started < 10  # pushed (and refused) at once, not waited for
    # another configuration (one destination fewer) has a spool of its own
    other = _spool("push", _push_args(dest, NAMES[1]))
    assert other.folder != spool.folder and other.record(NAMES[1]) is None


def test_a_spool_others_can_write_is_not_trusted(cli, tmp_path: Path, cluster: Path) -> None:
    """Its records say "durable": one planted by another user would lose WAL."""
    dest = tmp_path / "dest"
    args = _push_args(dest, NAMES[0])
    spool = _spool("push", args)
    Path(spool.folder).mkdir(parents=True, mode=0o700)
    sha256, size = file_sha256(str(cluster / "pg_wal" / NAMES[0]))
    spool.write_record(NAMES[0], sha256, size)  # as if it were stored
    os.chmod(spool.folder, 0o770)
    assert quick.answer(args) is None
    r = cli(*args)
    assert r.code == 0, r.err
    assert (dest / "wal" / SYSTEM_ID / f"{NAMES[0]}.zst.gpg").exists()


def test_the_first_call_is_answered_before_click_loads(tmp_path: Path, cluster: Path) -> None:
    """The first call of a backlog starts the process ahead and waits for it without
    loading the command line interface (~0.2 s of imports on PostgreSQL's critical path);
    a call the process ahead cannot serve (its options are wrong) does not wait for it
    to start, but goes on to the command, which says why."""
    dest = tmp_path / "dest"
    code = (
        "import sys; from offsite.wal.spool import answer; "
        "print(answer(sys.argv[1:]), 'click' in sys.modules)"
    )
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout.split()
    assert run(*_push_args(dest, NAMES[0])) == ["0", "False"]
    assert (dest / "wal" / SYSTEM_ID / f"{NAMES[0]}.zst.gpg").exists()  # exit 0: durable
    started = time.monotonic()
    wrong = [*_push_args(tmp_path / "other", NAMES[1]), "--s3-sse", "not-a-mode"]
    assert run(*wrong) == ["None", "False"]
    assert time.monotonic() - started < quick.STARTING  # the process ahead ended at once


def test_a_call_interrupted_while_it_waits_says_so_in_one_line(
    tmp_path: Path, cluster: Path
) -> None:
    """Ctrl-C while a call waits for the process ahead (before click loads): one line and
    exit 130, as anywhere else in offsite, not a traceback."""
    import fcntl
    import signal

    args = _push_args(tmp_path / "dest", NAMES[0])
    spool = _spool("push", args)
    Path(spool.folder).mkdir(parents=True, mode=0o700)
    with open(spool.path(quick.LOCK), "w") as held:  # a process ahead that never answers
        fcntl.flock(held, fcntl.LOCK_EX)
        call = subprocess.Popen([sys.executable, "-m", "offsite", *args], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        time.sleep(1.5)
        assert call.poll() is None  # waiting
        call.send_signal(signal.SIGINT)
        _out, err = call.communicate(timeout=10)
    assert call.returncode == 130 and err.strip() == "offsite: interrupted", err


def test_a_failing_destination_fails_the_call_as_without_async(
    cli, tmp_path: Path, cluster: Path
) -> None:
    dest = tmp_path / "dest"
    dest.write_text("a file where the destination folder should be")
    r = cli(*_push_args(dest, NAMES[0]))
    plain = cli("wal", "push", f"pg_wal/{NAMES[0]}", "--to", str(dest))
    assert r.code == plain.code != 0
    assert r.err.splitlines()[-1] == plain.err.splitlines()[-1]


def test_fetching_ahead_hands_over_checked_segments_and_tells_missing_from_corrupt(
    cli, tmp_path: Path, cluster: Path
) -> None:
    dest = tmp_path / "dest"
    for name in NAMES[:4]:
        assert cli("wal", "push", f"pg_wal/{name}", "--to", str(dest)).code == 0
    stored = dest / "wal" / SYSTEM_ID / f"{NAMES[3]}.zst.gpg"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    target = cluster / "pg_wal" / "RECOVERYXLOG"

    r = cli(*_fetch_args(dest, NAMES[0]))
    assert r.code == 0, r.err
    assert target.read_bytes() == (cluster / "pg_wal" / NAMES[0]).read_bytes()
    spool = _spool("fetch", _fetch_args(dest, NAMES[1]))
    # fetched ahead, side by side: the later one may land first
    _until(lambda: all(os.path.exists(spool.path(n)) for n in NAMES[1:3]))
    for name in NAMES[1:3]:
        assert quick.answer(_fetch_args(dest, name)) == 0  # moved into place
        assert target.read_bytes() == (cluster / "pg_wal" / name).read_bytes()
    # the corrupt one is never handed over: the call fetches it and stops recovery
    _until(lambda: os.path.exists(spool.path(NAMES[3] + quick.FAILED)))  # it was tried
    assert not os.path.exists(spool.path(NAMES[3]))
    assert quick.answer(_fetch_args(dest, NAMES[3])) is None
    target.unlink()
    r = cli(*_fetch_args(dest, NAMES[3]))
    assert r.code == 3 and "corrupt" in r.err
    assert not target.exists()
    r = cli(*_fetch_args(dest, NAMES[4]))
    assert r.code == 1 and "not in the archive" in r.err
    r = cli(*_fetch_args(dest, NAMES[4]), "--not-there-exit", "99")  # as restore writes it
    assert r.code == 99 and "not in the archive" in r.err


def test_a_new_cluster_at_the_same_path_never_gets_the_old_ones_spool(
    tmp_path: Path, cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore, wiped, and another cluster restored at the same path with the same
    restore_command: the first one's segments must never reach the second."""
    args = _fetch_args(tmp_path / "dest", NAMES[0])[2:]
    first = quick.locate("fetch", args)
    control = cluster / "global" / "pg_control"
    control.write_bytes((123).to_bytes(8, "little") + bytes(100))
    second = quick.locate("fetch", args)
    assert first and second and first[0].folder != second[0].folder
    # and the secret's value never goes into a spool's name
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "another")
    assert quick.locate("fetch", args)[0].folder == second[0].folder  # type: ignore[index]


def test_the_last_segment_of_a_promoted_timeline_is_pushed_ahead_too(
    cli, tmp_path: Path, cluster: Path
) -> None:
    partial = f"{NAMES[4]}.partial"
    (cluster / "pg_wal" / NAMES[4]).rename(cluster / "pg_wal" / partial)
    (cluster / "pg_wal" / "archive_status" / f"{NAMES[4]}.ready").rename(
        cluster / "pg_wal" / "archive_status" / f"{partial}.ready"
    )
    dest = tmp_path / "dest"
    started = time.monotonic()
    for name in [*NAMES[:4], partial]:
        r = cli(*_push_args(dest, name))
        assert r.code == 0, r.err
    assert time.monotonic() - started < 30  # no call waited for the process ahead in vain
    assert (dest / "wal" / SYSTEM_ID / f"{partial}.zst.gpg").exists()
