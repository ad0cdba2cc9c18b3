"""Decode audio files to mono float32 at one sample rate, in bounded memory, with validation.

No torch here. Every failure is an ``AudioError`` whose message starts with the path and
says what is wrong, e.g. ``"song.mp3: 0.40 s is shorter than one block (1.02 s)"``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from singerid.errors import AudioError

log = logging.getLogger(__name__)

SILENCE_PEAK = 1e-4  # ours: a file whose peak stays below -80 dBFS is "silent"
_TRUNCATION_TOLERANCE = 0.98  # decoded / declared frames below this = truncated file
# MP3 frame counts come from the Xing/VBRI header or are estimated from the bitrate, so allow
# more slack before calling a file truncated (a real VBR file must never be refused).
_MP3_TRUNCATION_TOLERANCE = 0.9
_RESAMPLE_QUALITY = "HQ"  # librosa.load's default resampler is soxr_hq


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What the file header says (before decoding)."""

    path: Path
    sample_rate: int  # Hz, of the file
    channels: int
    frames: int  # declared samples per channel (estimated from the bitrate for MP3)
    format: str  # libsndfile major format, e.g. "MP3", "WAV", "FLAC"

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True, slots=True)
class Waveform:
    """Audio already in memory (an upload, a microphone, another library's output).

    samples: float (n,) mono or (n, channels), any finite range (clipped nowhere);
    sample_rate: Hz; name: what error messages call it.
    """

    samples: np.ndarray
    sample_rate: int
    name: str = "<waveform>"

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, (int, np.integer)) or not 1 <= int(self.sample_rate) <= 1_000_000:
            raise AudioError(f"{self.name}: sample rate must be an integer in [1, 1000000] Hz, got {self.sample_rate!r}")
        x = np.asarray(self.samples)
        if x.ndim not in (1, 2) or x.size == 0 or not np.issubdtype(x.dtype, np.number):
            raise AudioError(f"{self.name}: samples must be a non-empty numeric array (n,) or (n, channels), "
                             f"got shape {x.shape} of {x.dtype}")

    def __str__(self) -> str:
        return self.name


def iter_waveform(wave: Waveform, *, sample_rate: int, chunk_seconds: float = 60.0) -> Iterator[np.ndarray]:
    """``iter_audio`` for audio in memory: mono float32 chunks at ``sample_rate`` Hz, same checks."""
    x = np.asarray(wave.samples)
    mono = x.mean(axis=1, dtype=np.float64) if x.ndim == 2 else x
    mono = np.asarray(mono, dtype=np.float32)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{wave.name}: contains NaN or infinite samples")
    peak = float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        raise AudioError(f"{wave.name}: silent (peak {_dbfs(peak)} dBFS, below {_dbfs(SILENCE_PEAK)} dBFS)")
    rate = int(wave.sample_rate)
    chunk = max(1, int(chunk_seconds * rate))
    resampler = None if rate == sample_rate else soxr.ResampleStream(rate, sample_rate, 1, dtype="float32",
                                                                     quality=_RESAMPLE_QUALITY)
    for lo in range(0, mono.size, chunk):
        piece = mono[lo:lo + chunk]
        if resampler is not None:
            piece = resampler.resample_chunk(piece, last=lo + chunk >= mono.size)
        if piece.size:
            yield np.ascontiguousarray(piece, dtype=np.float32)


def check_path(path: str | Path) -> Path:
    """Return ``path`` as a Path if it is a non-empty regular file, else raise AudioError."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, expected an audio file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: empty file (0 bytes)")
    return p


def probe_audio(path: str | Path) -> AudioInfo:
    """Read the header of an audio file. Raises AudioError if it is not readable audio."""
    p = check_path(path)
    try:
        with _quiet_c_stderr():
            info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{p}: not a readable audio file ({_reason(exc)})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{p}: contains no audio frames (corrupt or truncated file)")
    return AudioInfo(path=p, sample_rate=int(info.samplerate), channels=int(info.channels),
                     frames=int(info.frames), format=str(info.format))


def iter_audio(path: str | Path, *, sample_rate: int, chunk_seconds: float = 60.0) -> Iterator[np.ndarray]:
    """Decode ``path`` chunk by chunk: mono float32 (n,) arrays at ``sample_rate`` Hz.

    Memory stays bounded by ``chunk_seconds`` whatever the file's length. Raises AudioError
    for unreadable, corrupt, truncated, non-finite or silent audio (silence is only known at
    the end, so the error comes after the last chunk).
    """
    info = probe_audio(path)
    p = info.path
    chunk_frames = max(1, int(chunk_seconds * info.sample_rate))
    resampler = None
    if info.sample_rate != sample_rate:
        resampler = soxr.ResampleStream(info.sample_rate, sample_rate, 1, dtype="float32",
                                        quality=_RESAMPLE_QUALITY)
    decoded = 0
    peak = 0.0
    try:
        with _quiet_c_stderr():
            f = sf.SoundFile(str(p))
        with f:
            while True:
                with _quiet_c_stderr():
                    raw = f.read(chunk_frames, dtype="float32", always_2d=True)
                last = raw.shape[0] < chunk_frames
                decoded += raw.shape[0]
                mono = raw.mean(axis=1, dtype=np.float32) if raw.shape[1] > 1 else raw[:, 0]
                if not np.all(np.isfinite(mono)):
                    raise AudioError(f"{p}: contains NaN or infinite samples")
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if mono.size:
                    peak = max(peak, float(np.max(np.abs(mono))))
                    yield np.ascontiguousarray(mono, dtype=np.float32)
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{p}: corrupt audio data ({_reason(exc)})") from exc
    if decoded == 0:
        raise AudioError(f"{p}: contains no audio frames (corrupt or truncated file)")
    tolerance = _MP3_TRUNCATION_TOLERANCE if info.format == "MP3" else _TRUNCATION_TOLERANCE
    if decoded < tolerance * info.frames:
        raise AudioError(f"{p}: truncated file (decoded {decoded} of {info.frames} declared samples)")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{p}: silent (peak {_dbfs(peak)} dBFS, below {_dbfs(SILENCE_PEAK)} dBFS)")


def load_audio(path: str | Path, *, sample_rate: int = 16_000, min_seconds: float = 0.0) -> np.ndarray:
    """Decode a whole file: mono float32 (n,) in [-1, 1] at ``sample_rate`` Hz.

    Raises AudioError as ``iter_audio`` does, and if it lasts less than ``min_seconds``.
    """
    signal = np.concatenate(list(iter_audio(path, sample_rate=sample_rate, chunk_seconds=600.0)))
    seconds = signal.size / sample_rate
    if seconds < min_seconds:
        raise AudioError(f"{Path(path)}: {seconds:.2f} s is shorter than one block ({min_seconds:.2f} s)")
    return signal


class _QuietStderr:
    """Silence what the C decoders (mpg123) print on fd 2 for damaged files; we raise instead.

    fd 2 belongs to the whole process, so threads that decode at once (the web service) share
    one redirection: the first to enter saves and redirects fd 2, the last to leave restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                try:
                    self._saved = os.dup(2)
                    with open(os.devnull, "wb") as devnull:
                        os.dup2(devnull.fileno(), 2)
                except OSError:  # no usable fd 2: nothing to silence
                    self._saved = None
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._saved is not None:
                    os.dup2(self._saved, 2)
                    os.close(self._saved)
                    self._saved = None


_quiet_c_stderr = _QuietStderr()  # one per process, as fd 2 is


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "File does not exist or is not a regular file" in text or "Format not recognised" in text:
        return "unknown format or corrupt header"  # libsndfile's wording misleads here
    return text.split(": ", 1)[-1].strip() if text.startswith("Error opening") else text


def _dbfs(peak: float) -> str:
    return "-inf" if peak <= 0 else f"{20 * np.log10(peak):.0f}"
