"""singerid.progress: modes, the lines a non-terminal run prints, and how the CLI picks the mode."""

from __future__ import annotations

import io
import logging

import pytest

from singerid.cli import hoist_global_flags
from singerid.cli.common import progress_mode
from singerid.errors import ParameterError
from singerid.progress import Progress, format_seconds, plural, resolve_mode, track


@pytest.fixture
def lines():
    """The messages logged on ``singerid.progress`` during the test."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("singerid.progress")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("given, mode", [(True, "bar"), (False, "off"), (None, "off"),
                                         ("bar", "bar"), ("lines", "lines"), ("off", "off")])
def test_old_bools_and_mode_names_resolve(given, mode):
    assert resolve_mode(given) == mode


def test_an_unknown_mode_is_refused_with_the_choices():
    with pytest.raises(ParameterError, match=r"^unknown progress mode 'loud': use one of bar, lines, off"):
        resolve_mode("loud")  # type: ignore[arg-type]


def test_lines_mode_says_what_was_done_once_at_the_end(lines):
    with Progress("embed-corpus", total=3, unit="song", progress="lines") as bar:
        for _ in range(3):
            bar.update()
        bar.close("3,480 blocks")
    assert len(lines) == 1
    assert lines[0].startswith("embed-corpus: 3/3 songs, 3,480 blocks in ") and lines[0].endswith(" s")


def test_lines_mode_reports_a_long_stage_as_it_goes(lines):
    with Progress("cache features", total=4, unit="song", progress="lines", every_s=0.0) as bar:
        bar.update()
    assert lines[0].startswith("cache features: 1/4 songs so far (") and "left)" in lines[0]
    assert lines[-1].startswith("cache features: 1/4 songs in ")


def test_a_stage_without_a_total_prints_its_notes_and_a_closing_line(lines):
    with Progress("build-index", progress="lines") as stages:
        stages.note("read 9 vectors (d=32) of 3 singers")
    assert lines[0] == "build-index: read 9 vectors (d=32) of 3 singers"
    assert lines[1].startswith("build-index: done in ")


def test_a_failed_stage_adds_no_closing_line(lines):
    with pytest.raises(RuntimeError), Progress("train epoch 1/3", total=5, unit="batch", progress="lines") as bar:
        bar.update()
        raise RuntimeError("boom")
    assert lines == []


def test_off_prints_nothing_anywhere(lines, capsys):
    for _ in track(range(5), "synth-corpus", unit="song", progress="off"):
        pass
    with Progress("build-index", progress=False) as stages:
        stages.note("ignored")
    assert lines == [] and capsys.readouterr() == ("", "")


def test_bar_mode_draws_a_labelled_bar_on_stderr_and_logs_nothing(lines, capsys):
    assert list(track([1, 2, 3], "train epoch 3/30", unit="batch", progress=True)) == [1, 2, 3]
    err = capsys.readouterr().err
    assert "train epoch 3/30" in err and "3/3" in err
    assert lines == []


@pytest.mark.parametrize("unit, n, word", [("song", 1, "song"), ("song", 2, "songs"), ("batch", 3, "batches"),
                                           ("blocks", 2, "blocks")])
def test_plural(unit, n, word):
    assert plural(unit, n) == word


@pytest.mark.parametrize("seconds, text", [(0.04, "0.0 s"), (12.34, "12.3 s"), (245, "4m05s"), (3720, "1h02m")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_cli_mode_bar_on_a_terminal_lines_elsewhere_off_when_quiet(monkeypatch):
    monkeypatch.delenv("SINGERID_NO_PROGRESS", raising=False)
    assert progress_mode(quiet=False, stream=_Terminal()) == "bar"
    assert progress_mode(quiet=False, stream=io.StringIO()) == "lines"
    assert progress_mode(quiet=True, stream=_Terminal()) == "off"
    monkeypatch.setenv("SINGERID_NO_PROGRESS", "1")
    assert progress_mode(quiet=False, stream=_Terminal()) == "off"


@pytest.mark.parametrize("args, hoisted", [
    (["query", "x.mp3", "--home", "H", "-q"], ["-q", "query", "x.mp3", "--home", "H"]),
    (["scan", "d", "-vv", "--debug"], ["-vv", "--debug", "scan", "d"]),
    (["-q", "scan", "d"], ["-q", "scan", "d"]),
    (["scan", "d", "--", "-q"], ["scan", "d", "--", "-q"]),  # after --, an argument
    (["scan", "-version"], ["scan", "-version"]),
])
def test_global_flags_move_before_the_command(args, hoisted):
    assert hoist_global_flags(args) == hoisted
