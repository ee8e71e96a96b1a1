"""The ``offsite`` program: a ``wal push``/``wal fetch --async`` call the spool can answer
is answered before click and the rest of offsite load (PostgreSQL runs one per WAL file);
every other call is the command line interface's."""

from __future__ import annotations

import sys


def main() -> None:
    from offsite.wal.spool import answer

    code = answer(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from offsite.cli import main as cli

    cli()
