"""Options and helpers shared by the command modules (light imports only)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from singerid.errors import ParameterError
from singerid.progress import Mode

HOME_ENV = "SINGERID_HOME"
DEFAULT_HOME = "singerid-home"
DATASET_CHOICES = ("auto", "artist20", "singer32", "singer60", "folder")
QUIET_KEY = "singerid.quiet"  # click ctx.meta key set by the group's -q
SPLIT_RULES = ("album", "lists", "song")  # --split-rule: how songs are assigned to train / val / test
SUBSETS = ("train", "val", "test", "all")  # --split: which of them a command works on
SPLIT_RULE_HELP = ("How songs are split into train / val / test: album (the paper's protocol: artist20 4/1/1 "
                   "albums per singer; singer32/60 8:1:1 or their split files), lists (the dataset's own "
                   "list/split files), song (8:1:1 per singer; albums leak).")
DEPRECATED_SPLIT = "Deprecated: --split is now --split-rule (the old spelling goes in the next release)"


def home_option(func: Any) -> Any:
    """--home: the directory holding model, index, metadata database and manifest."""
    return click.option(
        "--home", type=click.Path(file_okay=False, path_type=Path), envvar=HOME_ENV,
        default=DEFAULT_HOME, show_default=True, show_envvar=True,
        help="Home directory of the model, index, database and manifest.",
    )(func)


def db_option(func: Any) -> Any:
    """--db: any SQLAlchemy URL for the metadata store (default: sqlite in the home)."""
    return click.option(
        "--db", "db_url", default=None, metavar="URL",
        help="SQLAlchemy URL of the metadata store [default: sqlite:///HOME/meta.sqlite].",
    )(func)


def dataset_option(func: Any) -> Any:
    return click.option(
        "--dataset", type=click.Choice(DATASET_CHOICES), default="auto", show_default=True,
        help="Layout of the data directory (auto detects it).",
    )(func)


def split_rule_option(func: Any) -> Any:
    """--split-rule album|lists|song (default: album)."""
    return click.option("--split-rule", type=click.Choice(SPLIT_RULES), default=None,
                        help=SPLIT_RULE_HELP + "  [default: album]")(func)


def deprecated_split_rule_option(func: Any) -> Any:
    """The old --split ALBUM|LISTS|SONG of scan and train, hidden; see :func:`resolve_split_rule`."""
    return click.option("--split", "old_split_rule", type=click.Choice(SPLIT_RULES), default=None,
                        hidden=True)(func)


def resolve_split_rule(split_rule: str | None, old_split_rule: str | None) -> str:
    """The split rule from --split-rule, or from the old spelling --split RULE (one deprecation line on
    stderr, unless -q).

    Raises ParameterError when both are given and disagree.
    """
    if old_split_rule is None:
        return split_rule or "album"
    if not is_quiet():
        click.echo(DEPRECATED_SPLIT, err=True)
    if split_rule is not None and split_rule != old_split_rule:
        raise ParameterError(f"--split {old_split_rule} and --split-rule {split_rule} disagree; "
                             "give --split-rule only")
    return old_split_rule


def json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(func)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def device_option(func: Any) -> Any:
    """--device cpu|cuda: where torch runs; check it with :func:`check_device_option` once torch is imported."""
    return click.option(
        "--device", default="cpu", show_default=True, metavar="cpu|cuda",
        help="Torch device: cpu, cuda or cuda:N.",
    )(func)


def threads_option(func: Any) -> Any:
    """--threads N: torch CPU threads (apply with :func:`set_threads`)."""
    return click.option(
        "--threads", type=click.IntRange(min=1), default=None,
        help="Torch CPU threads [default: all cores available].",
    )(func)


def workers_help(what: str = "") -> str:
    """The one meaning of --workers: processes."""
    return f"Worker processes{' ' + what if what else ''} (1 = in this process)."


def check_device_option(device: str) -> str:
    """Validate --device with the library's check (imports torch). Raises ParameterError."""
    from singerid.devices import check_device

    return check_device(device)


def set_threads(threads: int | None) -> int:
    """Give torch ``threads`` CPU threads (all cores available when None); returns the number set."""
    import torch

    n = threads or available_cores()
    torch.set_num_threads(n)
    return n


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def is_quiet() -> bool:
    """Whether -q was given (before or after the sub-command)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(QUIET_KEY))


def progress_mode(*, quiet: bool | None = None, stream: TextIO | None = None) -> Mode:
    """The progress mode of this run: "off" with -q (or SINGERID_NO_PROGRESS set), "bar" when stderr is
    a terminal, else "lines" (one line per stage or epoch, for logs, CI and pipes)."""
    if (is_quiet() if quiet is None else quiet) or os.environ.get("SINGERID_NO_PROGRESS"):
        return "off"
    return "bar" if (stream or sys.stderr).isatty() else "lines"


def show_progress() -> bool:
    """Deprecated: the old bool (a bar only on a terminal); use :func:`progress_mode`."""
    return progress_mode() == "bar"


def parse_bytes(text: str) -> int:
    """Parse a human size ("8G", "512M", "1000000") into bytes. Raises ParameterError."""
    units = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    raw = text.strip().upper().removesuffix("IB").removesuffix("B") if text else ""
    number, unit = raw, ""
    if raw and raw[-1] in units:
        number, unit = raw[:-1], raw[-1]
    try:
        value = float(number)
    except ValueError:
        raise ParameterError(f"cannot read size {text!r}: use e.g. 512M, 8G or a number of bytes") from None
    if value <= 0:
        raise ParameterError(f"size must be positive, got {text!r}")
    return int(value * units[unit])
