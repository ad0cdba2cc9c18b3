"""Options and helpers shared by the command modules (light imports only)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from singerid.errors import ParameterError

HOME_ENV = "SINGERID_HOME"
DEFAULT_HOME = "singerid-home"
DATASET_CHOICES = ("auto", "artist20", "singer32", "singer60", "folder")


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


def json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(func)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def show_progress() -> bool:
    """Progress bars only when stderr is a terminal (never in logs, CI or pipes)."""
    return sys.stderr.isatty() and not os.environ.get("SINGERID_NO_PROGRESS")


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
