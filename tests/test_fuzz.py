"""Fuzz the audio front end: whatever the bytes, rate, channels, samples or file name, singerid
answers with a one-line error of that file (or a result), never an internal error, never a hang.

Each case is run through ``singerid check-audio`` in this process (probe, decode, log-mel and
blocks: the path every query and embed-corpus song takes). The default run tries a small
profile (``FUZZ_CASES``); ``-m slow`` tries 1,000 cases. scripts/bench_reliability.py reuses
``make_case`` / ``run_case`` for its figures.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ_CASES = 60  # default profile: well under a minute on 2 cores
SLOW_CASES = 1_000
CASE_TIMEOUT_S = 30  # a case slower than this is a hang
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"), "mp3": ("MP3", None)}
ODD_NAMES = [b"plain", b"caf\xe9", b"new\nline", b"\x1b[31mred\x1b[0m", b"tab\there", "日本語".encode(), b"x" * 240,
             b"-dash", b"sp ace", b"\xff\xfe"]


@dataclass(frozen=True)
class Outcome:
    code: int
    stderr: str
    seconds: float

    @property
    def internal(self) -> bool:
        return self.code == 3 or "Internal error" in self.stderr or "Traceback" in self.stderr


class Hang(Exception):
    pass


def base_audio(fmt: str, *, seconds: float = 2.0, rate: int = 16_000, channels: int = 2) -> bytes:
    """A real file of ``fmt`` written by soundfile (noise at -20 dBFS)."""
    x = (np.random.default_rng(0).standard_normal((int(seconds * rate), channels)) * 0.1).astype(np.float32)
    buf = io.BytesIO()
    major, subtype = FORMATS[fmt]
    sf.write(buf, x, rate, format=major, subtype=subtype)
    return buf.getvalue()


_BASES: dict[str, bytes] = {}


def base(fmt: str) -> bytes:
    if fmt not in _BASES:
        _BASES[fmt] = base_audio(fmt)
    return _BASES[fmt]


def wav_with(rate: int, channels: int, samples: np.ndarray, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def zero_channel_wav(frames: int) -> bytes:
    """A WAV header that claims 0 channels (soundfile refuses to write one)."""
    data = bytes(frames * 2)
    fmt = struct.pack("<HHIIHH", 1, 0, 16_000, 0, 0, 16)
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + \
        b"data" + struct.pack("<I", len(data)) + data


@st.composite
def cases(draw) -> tuple[bytes, str, bytes]:
    """(file name bytes, extension, content)."""
    kind = draw(st.sampled_from(["random", "truncated", "bitflip", "odd_wav", "samples", "silence", "zero_channels"]))
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    if kind == "random":
        content = draw(st.binary(min_size=0, max_size=4096))
    elif kind == "truncated":
        data = base(fmt)
        content = data[: draw(st.integers(0, len(data)))]
    elif kind == "bitflip":
        data = bytearray(base(fmt))
        for _ in range(draw(st.integers(1, 16))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        content = bytes(data)
    elif kind == "odd_wav":
        fmt = "wav"
        rate = draw(st.sampled_from([1, 2, 100, 4_000, 7_999, 8_000, 11_025, 44_100, 96_000, 192_000, 384_000,
                                     draw(st.integers(1, 384_000))]))
        channels = draw(st.integers(1, 8))
        frames = draw(st.integers(1, max(1, min(96_000, 400_000 // channels))))
        x = (np.random.default_rng(rate).standard_normal((frames, channels)) * 0.1).astype(np.float32)
        content = wav_with(rate, channels, x, "PCM_16")
    elif kind == "samples":
        fmt = "wav"
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 3e38, 1e-30, 2.0, 1e3, 1e4]))
        x = (np.random.default_rng(1).standard_normal(32_000) * 0.1).astype(np.float32)
        where = draw(st.sampled_from(["all", "one", "half"]))
        if where == "all":
            x[:] = value
        elif where == "one":
            x[draw(st.integers(0, x.size - 1))] = value
        else:
            x[: x.size // 2] = value
        content = wav_with(16_000, 1, x, draw(st.sampled_from(["FLOAT", "DOUBLE"])))
    elif kind == "silence":
        fmt = "flac"
        rate = draw(st.sampled_from([8_000, 16_000, 384_000]))
        channels = draw(st.sampled_from([1, 2, 8]))
        seconds = draw(st.sampled_from([0.5, 5.0, 30.0])) if rate < 384_000 else 1.0
        buf = io.BytesIO()
        sf.write(buf, np.zeros((int(seconds * rate), channels), np.float32), rate, format="FLAC")
        content = buf.getvalue()
    else:
        fmt = "wav"
        content = zero_channel_wav(draw(st.integers(0, 2000)))
    name = draw(st.sampled_from(ODD_NAMES))
    ext = draw(st.sampled_from([fmt, fmt, fmt.upper(), "m4a", "txt"]))
    return name, ext, content


def make_case(folder: Path, name: bytes, ext: str, content: bytes) -> str:
    """Write one case; returns its path as Python holds it (surrogate-escaped bytes included)."""
    path = os.fsencode(str(folder)) + b"/" + name + b"." + ext.encode()
    with open(path, "wb") as f:
        f.write(content)
    return os.fsdecode(path)


def run_case(path: str, *, timeout_s: float = CASE_TIMEOUT_S) -> Outcome:
    """``singerid check-audio PATH`` in this process, with a per-case alarm."""
    import time

    from singerid.cli import main

    def on_alarm(signum, frame):  # noqa: ANN001
        raise Hang(path)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    err = io.StringIO()
    started = time.perf_counter()
    code = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main(["-q", "check-audio", path])
    except SystemExit as exc:
        code = int(exc.code or 0)
    except Hang:
        code = -1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return Outcome(code, err.getvalue(), time.perf_counter() - started)


def check(outcome: Outcome) -> None:
    assert outcome.code != -1, "hang"
    assert not outcome.internal, outcome.stderr
    assert outcome.code in (0, 1), outcome
    for line in outcome.stderr.splitlines():  # one line per file, nothing raw for the terminal
        assert "\x1b" not in line and "\udce9" not in line


def _fuzz(tmp_path_factory, case) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    check(run_case(make_case(folder, *case)))


@settings(max_examples=FUZZ_CASES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_fuzzed_audio_never_gives_an_internal_error_or_a_hang(tmp_path_factory, case):
    _fuzz(tmp_path_factory, case)


@pytest.mark.slow
@settings(max_examples=SLOW_CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])
@given(case=cases())
def test_fuzzed_audio_slow_profile(tmp_path_factory, case):
    _fuzz(tmp_path_factory, case)


def test_limits_fail_fast_and_decode_memory_does_not_grow_with_rate_x_channels(tmp_path):
    import resource
    import time

    one_hz = tmp_path / "one_hz.wav"
    sf.write(one_hz, (np.random.default_rng(0).standard_normal(96_000) * 0.1).astype(np.float32), 1)
    started = time.perf_counter()
    outcome = run_case(str(one_hz))
    assert outcome.code == 1 and "sample rate 1 Hz is outside 8000..384000 Hz" in outcome.stderr
    assert time.perf_counter() - started < 5
    wide = tmp_path / "wide.flac"
    sf.write(wide, np.zeros((384_000 * 4, 8), np.float32), 384_000)  # silent: compresses to a few KB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = run_case(str(wide))
    assert outcome.code == 1 and "silent" in outcome.stderr
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 300, grown_mib  # was 1.6 GB with 60-s reads


def test_names_too_long_loops_and_unreadable_entries_in_folders(tmp_path):
    from singerid.audio.discover import expand_audio_inputs
    from singerid.datasets.base import walk_audio

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "self").symlink_to(tmp_path / "a" / "self")  # a link to itself
    (tmp_path / "a" / "x.wav").write_bytes(base("wav"))
    found = [p.name for _, p in walk_audio(tmp_path / "a", max_depth=64)]
    assert found == ["x.wav"]
    assert [p.name for p in expand_audio_inputs([tmp_path / "a"])] == ["x.wav"]
    long_name = tmp_path / ("n" * 300 + ".wav")
    outcome = run_case(str(long_name))
    assert outcome.code == 1 and "cannot read (File name too long)" in outcome.stderr


NOBODY = 65534


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to become another user")
def test_unreadable_files_and_an_unwritable_home_as_another_user(tmp_path):
    """As nobody (no write access to the venv or $HOME): an unreadable file is one line, the
    readable one is checked (numba's cache goes to a temp folder), exit 1, no internal error."""
    tmp_path.chmod(0o755)
    good = tmp_path / "good.wav"
    good.write_bytes(base_audio("wav", seconds=3.0))
    secret = tmp_path / "secret.wav"
    secret.write_bytes(base("wav"))
    secret.chmod(0o000)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "in.wav").write_bytes(base("wav"))
    locked.chmod(0o000)
    code = ("import os, sys; os.setgid(%d); os.setuid(%d); os.environ['HOME'] = '/nonexistent'; "
            "os.environ.pop('NUMBA_CACHE_DIR', None); from singerid.cli import main; main(sys.argv[1:])"
            % (NOBODY, NOBODY))
    probe = subprocess.run([sys.executable, "-c", "import os; os.setuid(%d); import singerid" % NOBODY],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot import singerid here: {probe.stderr.strip()[-200:]}")
    done = subprocess.run([sys.executable, "-c", code, "check-audio", str(good), str(secret), str(locked / "in.wav")],
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert done.returncode == 1, done.stderr
    assert "Internal error" not in done.stderr and "Traceback" not in done.stderr
    assert f"{secret}: cannot read (Permission denied)" in done.stderr
    assert f"ok    {good}" in done.stdout
