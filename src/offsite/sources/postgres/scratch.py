"""A throwaway PostgreSQL server on a restored data directory, for a drill: the same major
version as the backup, an unprivileged user (``postgres`` when offsite runs as root), a
free port, and a socket in a private folder with trust for local connections only. It
replays the archive to its target and promotes; the drill then reads it, stops it and
removes it."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from offsite.errors import BadInput, RestoreFailed
from offsite.sources.postgres.conn import Conn, client_major


def server_tool(name: str, major: int) -> str:
    """``pg_ctl`` or ``postgres`` of exactly ``major``: a data directory runs only there."""
    for path in (f"/usr/lib/postgresql/{major}/bin/{name}", shutil.which(name) or ""):
        if path and os.access(path, os.X_OK) and client_major(path) == major:
            return path
    raise BadInput(f"a drill of this base backup needs PostgreSQL {major}'s server: "
                   f"install postgresql-{major}")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ScratchServer:
    def __init__(self, datadir: Path, major: int, role: str) -> None:
        self.datadir, self.role = datadir, role
        self.pg_ctl = server_tool("pg_ctl", major)
        self.user = "postgres" if os.geteuid() == 0 else None
        self.port = _free_port()
        self.sockets = Path(tempfile.mkdtemp(prefix="offsite-drill-"))
        self.log = self.sockets / "log"

    def _as_user(self) -> list[str]:
        return ["runuser", "-u", self.user, "--"] if self.user else []

    def _own(self, path: Path) -> None:
        if self.user is None:
            return
        entry = pwd.getpwnam(self.user)
        for folder, dirs, files in os.walk(path):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.lchown(name, entry.pw_uid, entry.pw_gid)

    def start(self) -> str | None:
        """Start it and wait until it has recovered and promoted; None, or why not."""
        hba = self.sockets / "pg_hba.conf"
        hba.write_text("local all all trust\n")
        self._own(self.datadir)
        self._own(self.sockets)
        self.sockets.chmod(0o700)
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses='' "
                   f"-c archive_mode=off -c hba_file={hba}")  # fmt: skip
        done = subprocess.run(
            [*self._as_user(), self.pg_ctl, "-D", str(self.datadir), "-o", options,
             "-l", str(self.log), "-w", "-t", "86400", "start"],
            capture_output=True, text=True, check=False,
            # restore_command's files fetched ahead go with the server, not to a home
            env={**os.environ, "OFFSITE_SPOOL": str(self.sockets / "spool")},
        )  # fmt: skip
        if done.returncode != 0:
            return self.why()
        while True:
            try:
                state = self.conn().psql("SELECT pg_is_in_recovery();", _fail).strip()
            except RestoreFailed as exc:
                return exc.message()
            if state == "f":
                return None
            time.sleep(0.2)

    def why(self) -> str:
        """The server's own reason, from the last FATAL or PANIC line of its log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        lines = [ln.split(":", 3)[-1].strip() for ln in text.splitlines()
                 if "FATAL:" in ln or "PANIC:" in ln]  # fmt: skip
        return lines[-1] if lines else "the server did not start (see its log)"

    def conn(self, database: str = "postgres") -> Conn:
        where = quote(str(self.sockets), safe="")  # a socket folder: no spaces (mkdtemp's)
        return Conn.parse(f"postgresql://{quote(self.role, safe='')}@/{quote(database, safe='')}"
                          f"?host={where}&port={self.port}")  # fmt: skip

    def close(self) -> None:
        subprocess.run(
            [*self._as_user(), self.pg_ctl, "-D", str(self.datadir), "-m", "fast", "-w", "stop"],
            capture_output=True, check=False,
        )  # fmt: skip
        shutil.rmtree(self.sockets, ignore_errors=True)


def _fail(why: str) -> RestoreFailed:
    return RestoreFailed("drill", why)
