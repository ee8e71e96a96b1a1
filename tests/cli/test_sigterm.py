"""SIGTERM (a cancelled Actions job) ends a run the way Ctrl-C does: through the cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _to_a_stage_thread(pid: int) -> None:
    """SIGTERM to one of the process's other threads (a pipeline stage), as the kernel may
    deliver a signal sent to the process: Python runs handlers in the main thread only."""
    import ctypes
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("tgkill's syscall number (234) is x86_64's")
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert tids, "offsite runs its stages on threads"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(234, pid, tids[-1], signal.SIGTERM) == 0  # tgkill (x86_64)


@pytest.mark.parametrize("to", ["process", "stage thread"])
def test_sigterm_leaves_no_partial_file_work_folder_or_agent(tmp_path: Path, to: str) -> None:
    dest, tmp = tmp_path / "dest", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "OFFSITE_PASSPHRASE": "a passphrase"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "offsite", "backup", "--to", str(dest),
         "--exec", "slow=head -c 3000000 /dev/urandom; sleep 60"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    # the entry's own partial file (key.gpg, the wrapped data key, is written before it)
    while not any(p.name.startswith(".slow.") and ".partial-" in p.name for p in dest.rglob("*")):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.1)
    if to == "process":
        proc.send_signal(signal.SIGTERM)
    else:  # the main thread sleeps in a read the command (sleep 60) will not end
        _to_a_stage_thread(proc.pid)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "offsite: interrupted" in err and "Traceback" not in err
    assert [p for p in dest.rglob("*") if p.is_file()] == []
    assert list(tmp.iterdir()) == []  # work folder and gpg home (with its agent) removed
