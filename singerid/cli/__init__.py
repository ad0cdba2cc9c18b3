"""The ``singerid`` command line: a thin shell over the library, and its single error boundary.

Commands live in small modules (``singerid.cli.<area>``) and are imported only when used,
so ``singerid --help`` stays instant. Library errors become ``Error: <one line>`` on stderr
with the error's exit code (2 for usage, 1 for data); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from singerid.cli.common import QUIET_KEY
from singerid.errors import SingeridError, printable

# command name -> "module:function"; the order here is the order of `singerid --help`.
COMMANDS: dict[str, str] = {
    "synth-corpus": "singerid.cli.corpus:synth_corpus",
    "scan": "singerid.cli.datasets:scan",
    "check-audio": "singerid.cli.audio:check_audio",
    "separate": "singerid.cli.separate:separate",
    "train": "singerid.cli.train:train",
    "embed-corpus": "singerid.cli.vectordb:embed_corpus",
    "build-index": "singerid.cli.vectordb:build_index",
    "query": "singerid.cli.query:query",
    "similar": "singerid.cli.query:similar",
    "enrol": "singerid.cli.manage:enrol",
    "remove": "singerid.cli.manage:remove",
    "info": "singerid.cli.manage:info",
    "evaluate": "singerid.cli.evaluate:evaluate",
    "serve": "singerid.cli.serve:serve",
}

EXIT_INTERNAL = 3  # an unexpected exception: a bug in singerid
GLOBAL_FLAGS = ("-q", "--quiet", "--debug", "--verbose")  # also -v, -vv: accepted before or after the sub-command


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(args))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command whose module is not built yet
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attr, None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="Info logs too (-vv: debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Only results and errors: no progress, no warnings.")
@click.option("--debug", is_flag=True, help="Show the full traceback of errors.")
@click.version_option(package_name="singerid")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """singerid: who sings this song? KNN-Net singer identification over a vector database.

    \b
    Typical session:
      singerid synth-corpus demo-corpus --singers 8
      singerid train demo-corpus --model attcrnn --home H
      singerid embed-corpus demo-corpus --home H --split train
      singerid build-index --home H
      singerid query song.mp3 --home H

    -v, -q and --debug may come before or after the command. Progress shows as a bar on a
    terminal and as one line per stage or epoch otherwise; -q turns it off.
    """
    ctx.meta[QUIET_KEY] = quiet
    configure_logging(verbose=verbose, quiet=quiet)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (click's test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(*, verbose: int, quiet: bool) -> None:
    """Default: progress lines and warnings; -q: errors only; -v: info logs; -vv: debug logs.

    singerid's own loggers get a handler (replaced on each call, so repeated runs in one
    process do not print twice); the ``singerid.progress`` logger prints bare lines.
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[min(verbose, 1)]
    if verbose >= 2:
        level = logging.DEBUG
    for name, fmt, lvl, propagate in (("singerid", "%(levelname)s %(name)s: %(message)s", level, True),
                                      ("singerid.progress", "%(message)s", logging.ERROR if quiet else logging.INFO,
                                       False)):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
            logger.removeHandler(old)
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(fmt))
        logger.addHandler(handler)
        logger.setLevel(lvl)
        logger.propagate = propagate


def hoist_global_flags(args: list[str]) -> list[str]:
    """Move -v/-vv/-q/--debug given after the sub-command to the front (never past a ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if _is_global_flag(a)]
    rest = [a for a in args[:end] if not _is_global_flag(a)]
    return flags + rest + args[end:]


def _is_global_flag(arg: str) -> bool:
    return arg in GLOBAL_FLAGS or (len(arg) >= 2 and arg[0] == "-" and set(arg[1:]) == {"v"})


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the group and turn errors into one line and an exit code.

    Exit codes: 0 done; 1 a data or artefact error (or a batch in which some files failed);
    2 a usage error; 3 a bug in singerid ("Internal error"); 130 interrupted. Errors of the
    environment that the library did not wrap (a file or folder that cannot be read, a damaged
    database, a JSON file that is garbage or nested too deeply) are still one line and exit 1.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    # torch and FAISS each keep an OpenMP thread pool; with the default (active) wait policy the
    # pool that just finished spins on the cores the other needs next. Passive waiting made the
    # embedding stage of a 4-minute query 1.5-2.3x faster (measured 0.63-0.69 s vs 1.0-1.6 s,
    # 2 threads). Must be set before torch or faiss load; a value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from singerid.audio.env import ensure_numba_cache

    ensure_numba_cache()  # a user who may not write the venv or $HOME still gets librosa's numba code
    try:
        code = cli.main(args=args, prog_name="singerid", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # bad arguments: click's own message, exit 2
        exc.message = printable(exc.format_message())
        exc.show()
        sys.exit(exc.exit_code)
    except SingeridError as exc:
        if debug:
            raise
        click.echo(f"Error: {_one_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a message
        if debug:
            raise
        environment = _environment_error(exc)
        if environment is not None:
            click.echo(f"Error: {environment}", err=True)
            sys.exit(1)
        click.echo(f"Internal error (please report): {type(exc).__name__}: {_one_line(exc)}; "
                   "rerun with --debug for the traceback", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)


def _environment_error(exc: BaseException) -> str | None:
    """One line for an error of the environment the library let through, or None for a bug."""
    import json

    if isinstance(exc, OSError):
        where = printable(exc.filename) + ": " if exc.filename is not None else ""
        return f"{where}{exc.strerror or _one_line(exc)}; check that it exists and that you may read and write it"
    if isinstance(exc, UnicodeError):
        return f"text that is not valid UTF-8 ({_one_line(exc)}); rename the file or fix its encoding"
    if isinstance(exc, json.JSONDecodeError):
        return f"a JSON file is not valid JSON ({_one_line(exc)}); restore it or rebuild it"
    if isinstance(exc, RecursionError):
        return "an input is nested too deeply to read (a damaged or hostile JSON file?); restore it or rebuild it"
    try:
        from sqlalchemy.exc import DatabaseError
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        return None
    if isinstance(exc, DatabaseError):
        return (f"the metadata database is damaged or unreadable ({_one_line(getattr(exc, 'orig', None) or exc)}); "
                "restore meta.sqlite from a backup or embed the corpus into a new home")
    return None


def _one_line(exc: BaseException) -> str:
    return printable(" ".join(str(exc).split())) or type(exc).__name__
