"""Timing a command with its peak memory: what every benchmark here measures."""

from __future__ import annotations

import compileall
import contextlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

MB = 1 << 20
SRC = Path(__file__).resolve().parent.parent / "src" / "offsite"


def compile_offsite() -> None:
    """offsite's modules compiled, as an installed package has them: the checkout is
    installed editable, and where PYTHONDONTWRITEBYTECODE is set (this machine sets it)
    every run would compile the sources again, about 0.1 s of each command measured."""
    compileall.compile_dir(SRC, quiet=1)


compile_offsite()


def _tree_rss_kb(pid: int) -> int:
    """Sum of RSS over ``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(roots: list[int], seen: dict[int, tuple[str, int]]) -> None:
    """Record, for every process under ``roots``, its name and CPU ticks so far (user and
    system); a process that has exited keeps its last reading."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    head, tail = fh.read().rsplit(")", 1)
            except (OSError, ValueError):
                continue
            fields = tail.split()
            stats[int(entry)] = [head.split("(", 1)[1], *fields]
            children.setdefault(int(fields[1]), []).append(int(entry))
    todo = list(roots)
    while todo:
        pid = todo.pop()
        found = stats.get(pid)
        if found is not None:
            seen[pid] = (found[0], int(found[12]) + int(found[13]))
        todo.extend(children.get(pid, []))


def cpu_by_name(
    seen: dict[int, tuple[str, int]], before: dict[int, tuple[str, int]]
) -> dict[str, float]:
    """CPU seconds per process name, over what ``seen`` holds beyond ``before``."""
    out: dict[str, float] = {}
    for pid, (name, ticks) in seen.items():
        used = ticks - before.get(pid, (name, 0))[1]
        if used > 0:
            out[name] = out.get(name, 0.0) + used / TICK
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def measure(
    argv: list[str], env: dict[str, str], also: list[int] | None = None
) -> dict[str, float]:
    """Wall time and peak memory of ``argv``; with ``also`` (other processes' ids, such
    as a database server's), the CPU seconds of every process of both trees by name, in
    ``cpu`` (sampled every 20 ms: a process that lives less than that may be missed)."""
    before: dict[int, tuple[str, int]] = {}
    if also:
        _cpu_ticks(also, before)
    seen = dict(before)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    peak_tree = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not done.wait(0.02):
            peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
            if also is not None:
                _cpu_ticks([proc.pid, *also], seen)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed with {status}")
    result: dict = {
        "wall": wall,
        "peak_process_mb": usage.ru_maxrss / 1024,
        "peak_tree_mb": peak_tree / 1024,
    }
    if also is not None:
        _cpu_ticks(also, seen)
        result["cpu"] = cpu_by_name(seen, before)
    return result


def rounds_table(
    rows: dict[str, list[dict[str, float]]], size: int, peak: str = "peak_process_mb"
) -> dict[str, float]:
    """Print each command's wall time per round, its best, the MiB/s of ``size`` bytes in
    that best, and its peak memory (``peak``: a key of ``measure``); return the bests."""
    rounds = max(len(runs) for runs in rows.values())
    print(f"{'':10} " + " ".join(f"{'round ' + str(n + 1):>9}" for n in range(rounds))
          + f" {'best s':>8} {'MiB/s':>7} {'peak MiB':>9}")  # fmt: skip
    best = {}
    for name, runs in rows.items():
        best[name] = min(r["wall"] for r in runs)
        walls = " ".join(f"{r['wall']:9.2f}" for r in runs)
        top = max(r[peak] for r in runs)
        print(f"{name:10} {walls} {best[name]:8.2f} {size / MB / best[name]:7.1f} {top:9.1f}")
    return best


class Link:
    """A TCP link of ``mib_s`` MiB/s upstream in front of ``port`` on this machine: what a
    runner's network to a store elsewhere looks like, so that a benchmark can show what
    overlapping the upload with the dump is worth. All connections share the one rate
    (uploads in parallel parts do not get more); replies are not slowed."""

    def __init__(self, port: int, mib_s: float) -> None:
        self._upstream = port
        self._rate = mib_s * MB
        self._lock = threading.Lock()
        self._free_at = time.monotonic()  # when the link has sent what it was given
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            for src, dst, paced in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, paced), daemon=True).start()

    def _pace(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._free_at = max(now, self._free_at) + n / self._rate
            wait = self._free_at - now
        time.sleep(wait)

    def _pump(self, src: socket.socket, dst: socket.socket, paced: bool) -> None:
        try:
            while data := src.recv(256 * 1024):
                if paced:
                    self._pace(len(data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.close()
