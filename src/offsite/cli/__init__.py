"""The ``offsite`` command: a click group, one module per verb, one error handler.

May import: any unit below it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback

import click

from offsite import __version__
from offsite.cli.options import State, emit_json, envvar_for
from offsite.errors import BadInput, OffsiteError
from offsite.github import gha

EXIT_INTERRUPTED = 130


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    State.verbose = bool(value)
    return value


_COMMANDS = (
    "backup", "list", "restore", "verify", "prune", "drill", "copy", "mirror", "monitor",
    "plan", "requirements", "wal", "rekey",
)  # fmt: skip


class _Commands(click.Group):
    """Each command's module is imported when that command runs (or help lists them):
    ``wal push`` runs once per WAL segment, and importing every command cost ~0.1 s."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        # not ``list(...)``: importing offsite.cli.list makes ``list`` this package's module
        return [*_COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        import importlib

        module = importlib.import_module(f"offsite.cli.{cmd_name}")
        command: click.Command = module.command
        return command


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="offsite")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_set_verbose,
    envvar=envvar_for("--verbose"),
    show_envvar=True,
    help="Show the traceback of an error.",
)
def cli() -> None:
    """Backup and disaster recovery for teams that live on GitHub.

    Exit codes: 0 success, 1 a check failed, 2 bad input, 3 an operation failed.
    """


def all_commands() -> dict[str, click.Command]:
    """Every command by its full name (``wal push``), the groups' own commands included:
    what the tests walk to check every option."""
    ctx = click.Context(cli)
    found: dict[str, click.Command] = {}
    for name in _COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            for sub, inner in command.commands.items():
                found[f"{name} {sub}"] = inner
        else:
            found[name] = command
    return found


def report(message: str, code: int) -> int:
    """One line on stderr, an annotation in Actions, a record with --json."""
    message = gha.printable(message)
    gha.problem(message)
    if State.json:
        emit_json({"error": message, "exit_code": code})
    return code


_HANDLED = threading.Event()  # the main thread has run the SIGTERM handler


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a cancelled Actions job, ``kill``) ends a run as Ctrl-C does: through the
    same cleanup (uploads aborted, partial files, work folders and gpg agents removed)."""
    _HANDLED.set()
    raise KeyboardInterrupt


def _nudged(signum: int, frame: object) -> None:
    """SIGUSR2 from ``_Nudger``: nothing to do but wake the main thread."""


class _Nudger:
    """Python runs signal handlers in the main thread only, when it next runs bytecode. A
    signal the kernel hands to another thread (a pipeline stage's) leaves the main thread
    asleep in a read that may never end (a command that sleeps): SIGTERM would wait on it.
    Signals also go to a wakeup pipe; this thread reads it and sends SIGUSR2 to the main
    thread itself, whose read then returns and runs the pending handler."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._main = threading.main_thread().ident
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._previous_usr2 = signal.signal(signal.SIGUSR2, _nudged)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="offsite-signals", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while data := os.read(self._read, 64):
            if signal.SIGINT in data:
                self._nudge()
            elif signal.SIGTERM in data:
                # a nudge that lands just before the main thread enters its read is lost
                # (the handler's flag is set, the read then blocks): nudge until it ran
                while not _HANDLED.is_set() and not self._closed.is_set():
                    self._nudge()
                    self._closed.wait(0.2)

    def _nudge(self) -> None:
        assert self._main is not None
        signal.pthread_kill(self._main, signal.SIGUSR2)

    def close(self) -> None:
        self._closed.set()
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGUSR2, self._previous_usr2)
        os.close(self._write)  # the watcher reads the end and stops
        self._thread.join()
        os.close(self._read)


def run(argv: list[str] | None = None) -> int:
    main_thread = threading.current_thread() is threading.main_thread()
    if not main_thread:
        return _run(argv)
    _HANDLED.clear()
    previous = signal.signal(signal.SIGTERM, _terminated)
    nudger = _Nudger()
    try:
        return _run(argv)
    finally:
        nudger.close()
        signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> int:
    State.verbose = False
    # a copy (not ``list()``: this package's ``list`` is the list command's module)
    State.argv = [*(sys.argv[1:] if argv is None else argv)]
    # known before parsing, so that a usage error too gives the record and the outputs
    by_env = os.environ.get(envvar_for("--json"), "").lower() in ("1", "true", "yes", "on")
    State.json = "--json" in State.argv or by_env
    State.healthy = None
    code = _command(argv)
    if State.json or State.healthy is not None:  # the step outputs ``report`` (emit_json)
        healthy = code == 0 if State.healthy is None else State.healthy  # and this one
        gha.set_output("healthy", "true" if healthy else "false")
    return code


def _command(argv: list[str] | None) -> int:
    try:
        result = cli.main(args=argv, prog_name="offsite", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # ``offsite`` alone: the help
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message(), err=True)
        return BadInput.exit_code
    except click.UsageError as exc:  # one line, as every other error (exit 2)
        where = exc.ctx.command_path if exc.ctx else "offsite"
        return report(f"{exc.format_message()} (see {where} --help)", BadInput.exit_code)
    except click.ClickException as exc:
        return report(exc.format_message(), BadInput.exit_code)
    except (click.Abort, KeyboardInterrupt):
        print("offsite: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OffsiteError as exc:
        if State.verbose:
            traceback.print_exc()
        return report(exc.message(), exc.exit_code)
    except Exception as exc:
        if State.verbose:
            traceback.print_exc()
        hint = "" if State.verbose else " (run with -v for the traceback)"
        return report(f"unexpected {type(exc).__name__}: {exc}{hint}", 3)


def main() -> None:
    sys.exit(run())
