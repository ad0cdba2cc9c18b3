"""Bad input gets one clear line on stderr, no traceback, and a distinct exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singerid.audio import song_blocks
from singerid.config import FeatureConfig
from singerid.errors import AudioError


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "singerid", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def bad_files(tmp_path: Path, tone) -> dict[str, tuple[Path, str]]:
    """name -> (path, the message the error must contain)."""
    good_mp3 = tone("good.mp3", seconds=6.0, fmt="MP3")
    data = good_mp3.read_bytes()
    files: dict[str, tuple[Path, str]] = {}

    def add(name: str, content: bytes, expected: str) -> None:
        path = tmp_path / name
        path.write_bytes(content)
        files[name] = (path, expected)

    add("empty.mp3", b"", "empty file (0 bytes)")
    add("header_only.mp3", data[:300], "not a readable audio file")
    add("half.mp3", data[: len(data) // 2], "truncated file")
    add("random.mp3", np.random.default_rng(0).bytes(20_000), "not a readable audio file")
    add("notes.txt", b"these are not the songs you are looking for\n" * 50, "not a readable audio file")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000 * 3, np.float32), 16000)
    files["silent.wav"] = (silent, "silent (peak -inf dBFS")
    short = tone("short.wav", seconds=0.4)
    files["short.wav"] = (short, "0.40 s is shorter than one block (1.02 s)")
    files["missing.wav"] = (tmp_path / "missing.wav", "no such file")
    files["a_directory"] = (tmp_path, "is a directory, expected an audio file")
    return files


def test_library_raises_audio_error_with_path_and_reason(bad_files):
    for name, (path, expected) in bad_files.items():
        with pytest.raises(AudioError) as info:
            song_blocks(path, FeatureConfig())
        message = str(info.value)
        assert message.startswith(str(path)), name
        assert expected in message, (name, message)
        assert "\n" not in message


def test_cli_reports_every_bad_file_on_one_line_and_exits_1(bad_files, tone):
    good = tone("ok.wav", seconds=2.5)
    paths = [str(p) for p, _ in bad_files.values()]
    result = run_cli("check-audio", str(good), *paths)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"ok    {good}" in result.stdout
    lines = result.stderr.strip().splitlines()
    for path, expected in bad_files.values():
        matching = [line for line in lines if line.startswith(f"error {path}:")]
        assert len(matching) == 1 and expected in matching[0], (path, lines)
    assert lines[-1] == f"Error: {len(bad_files)} of {len(bad_files) + 1} file(s) unusable"


def test_cli_usage_errors_exit_2():
    no_args = run_cli("check-audio")
    assert no_args.returncode == 2
    assert "Missing argument 'FILES...'" in no_args.stderr
    unknown = run_cli("no-such-command")
    assert unknown.returncode == 2
    assert "No such command 'no-such-command'" in unknown.stderr
    bad_option = run_cli("check-audio", "--frobnicate", "x.wav")
    assert bad_option.returncode == 2
    assert "No such option '--frobnicate'" in bad_option.stderr


def test_debug_flag_shows_traceback(tmp_path):
    result = run_cli("--debug", "check-audio", str(tmp_path / "missing.wav"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_help_lists_commands_and_every_command_has_help_with_example():
    from click.testing import CliRunner

    from singerid.cli import cli

    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    commands = cli.list_commands(None)  # type: ignore[arg-type]
    assert "check-audio" in commands
    for name in commands:
        assert name in top.output
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, name
        assert "Example" in sub.output, f"`singerid {name} --help` has no Example"
