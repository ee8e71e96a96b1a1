"""The ``offsite`` program: a ``wal push``/``wal fetch --async`` call the spool can answer
is answered before click and the rest of offsite load (PostgreSQL runs one per WAL file);
every other call is the command line interface's.

Exit 1 from ``wal fetch`` tells recovery "not archived: the end" (SPEC §8), so offsite
failing to start (a broken install) must never be 1, as an uncaught error would be."""

from __future__ import annotations

import sys

CANNOT_START = 3  # as any unexpected failure of a command
INTERRUPTED = 130  # as the command line says it (cli.EXIT_INTERRUPTED)


def main() -> None:
    try:
        from offsite.wal.spool import answer

        code = answer(sys.argv[1:])
    except KeyboardInterrupt:  # while a push waits for the process ahead
        print("offsite: interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except Exception:  # the quick answer is an optimisation: the command answers
        code = None
    if code is not None:
        sys.exit(code)
    try:
        from offsite.cli import main as cli
    except Exception as exc:
        print(f"offsite: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(CANNOT_START)
    cli()
