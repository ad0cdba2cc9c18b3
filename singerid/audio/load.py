"""Decode audio files to mono float32 at one sample rate, in bounded memory, with validation.

No torch here. Every failure is an ``AudioError`` whose message starts with the path (quoted
with ``printable`` when it holds control characters or undecodable bytes) and says what is
wrong, e.g. ``"song.mp3: 0.40 s is shorter than one block (1.02 s)"``. Files are opened by
Python (a file object handed to libsndfile), so names that are not valid UTF-8 work too.
Work per file is bounded: ``AudioLimits`` caps duration, sample rate and channels before any
decoding, and each read holds at most ``decode_budget_bytes`` of raw samples.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from singerid import constants as C
from singerid.audio.containers import declared_wav_frames
from singerid.errors import AudioError, ParameterError, printable

log = logging.getLogger(__name__)

SILENCE_PEAK = 1e-4  # ours: a file whose peak stays below -80 dBFS is "silent"
_TRUNCATION_TOLERANCE = 0.98  # decoded / declared frames below this = truncated file
# MP3 frame counts come from the Xing/VBRI header or are estimated from the bitrate, so allow
# more slack before calling a file truncated (a real VBR file must never be refused).
_MP3_TRUNCATION_TOLERANCE = 0.9
_RESAMPLE_QUALITY = "HQ"  # librosa.load's default resampler is soxr_hq
LIMITS_ENV = "SINGERID_AUDIO_LIMITS"  # e.g. "max_seconds=14400,max_channels=32"


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """The most work one input may cause; checked on the header, before decoding.

    Raise a limit for unusual material, e.g. ``AudioLimits(max_seconds=6 * 3600)``, or for every
    command through the environment: ``SINGERID_AUDIO_LIMITS="max_seconds=21600,max_channels=32"``.
    """

    max_seconds: float = C.MAX_AUDIO_SECONDS  # 2 h: longer than any album side or concert set
    min_sample_rate: int = C.MIN_SAMPLE_RATE_HZ  # 8 kHz: telephone band
    max_sample_rate: int = C.MAX_SAMPLE_RATE_HZ  # 384 kHz: DXD / studio
    max_channels: int = C.MAX_CHANNELS  # 16: 3rd-order ambisonics
    decode_budget_bytes: int = C.DECODE_BUDGET_BYTES  # raw float32 samples per read (32 MiB)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ParameterError(f"audio limit {f.name} must be a positive number, got {value!r}")
        if self.min_sample_rate > self.max_sample_rate:
            raise ParameterError(f"audio limits: min_sample_rate {self.min_sample_rate} is above "
                                 f"max_sample_rate {self.max_sample_rate}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AudioLimits:
        """The defaults, changed by ``SINGERID_AUDIO_LIMITS`` ("name=value,..."). ParameterError if malformed."""
        text = (os.environ if environ is None else environ).get(LIMITS_ENV, "").strip()
        if not text:
            return cls()
        names = {f.name: f.type for f in fields(cls)}
        changes: dict[str, float | int] = {}
        for item in text.split(","):
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in names:
                raise ParameterError(f"{LIMITS_ENV}: unknown limit {name!r} in {text!r}; "
                                     f"use {', '.join(names)}")
            try:
                changes[name] = float(value) if name == "max_seconds" else int(float(value))
            except ValueError:
                raise ParameterError(f"{LIMITS_ENV}: {name} must be a number, got {value.strip()!r}") from None
        return replace(cls(), **changes)


def default_limits() -> AudioLimits:
    """The limits in force: ``AudioLimits`` changed by the environment (read on every call)."""
    return AudioLimits.from_env()


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What the file header says (before decoding)."""

    path: Path
    sample_rate: int  # Hz, of the file
    channels: int
    frames: int  # declared samples per channel (estimated from the bitrate for MP3)
    format: str  # libsndfile major format, e.g. "MP3", "WAV", "FLAC"
    declared_frames: int | None = None  # what the container's own header claims, when it says (WAV)

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
            raise AudioError(f"{self.name}: sample rate must be an integer in [1, 1000000] Hz, "
                             f"got {self.sample_rate!r}")
        x = np.asarray(self.samples)
        if x.ndim not in (1, 2) or x.size == 0 or not np.issubdtype(x.dtype, np.number):
            raise AudioError(f"{self.name}: samples must be a non-empty numeric array (n,) or (n, channels), "
                             f"got shape {x.shape} of {x.dtype}")

    def __str__(self) -> str:
        return self.name


def iter_waveform(wave: Waveform, *, sample_rate: int, chunk_seconds: float = 60.0,
                  limits: AudioLimits | None = None) -> Iterator[np.ndarray]:
    """``iter_audio`` for audio in memory: mono float32 chunks at ``sample_rate`` Hz, same checks."""
    limits = limits or default_limits()
    x = np.asarray(wave.samples)
    channels = x.shape[1] if x.ndim == 2 else 1
    _check_limits(wave.name, int(wave.sample_rate), channels, x.shape[0], limits)
    mono = x.mean(axis=1, dtype=np.float64) if x.ndim == 2 else x
    mono = np.asarray(mono, dtype=np.float32)
    _check_samples(wave.name, mono)
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
    name = printable(p)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioError(f"{name}: no such file") from None
    except OSError as exc:  # too long a name, a symlink loop, a folder we may not enter...
        raise AudioError(f"{name}: cannot read ({exc.strerror or type(exc).__name__})") from None
    except ValueError as exc:  # an embedded NUL byte
        raise AudioError(f"{name}: not a valid file name ({exc})") from None
    if p.is_dir():
        raise AudioError(f"{name}: is a directory, expected an audio file")
    if not p.is_file():
        raise AudioError(f"{name}: not a regular file (a device, pipe or socket); give an audio file")
    if st.st_size == 0:
        raise AudioError(f"{name}: empty file (0 bytes)")
    if p.suffix.lower() in C.UNSUPPORTED_AUDIO_EXTENSIONS:
        raise AudioError(f"{name}: {p.suffix} (AAC/MP4) audio cannot be decoded by singerid; convert it to "
                         f"FLAC or WAV first (e.g. `ffmpeg -i IN{p.suffix} OUT.flac`)")
    return p


@contextlib.contextmanager
def _open_audio(p: Path) -> Iterator[sf.SoundFile]:
    """The file opened by Python and handed to libsndfile as a file object (any name works)."""
    name = printable(p)
    try:
        fobj: BinaryIO = open(p, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise AudioError(f"{name}: cannot open ({exc.strerror or type(exc).__name__})") from None
    with fobj:
        try:
            with _quiet_c_stderr():
                f = sf.SoundFile(fobj)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as exc:
            raise AudioError(f"{name}: not a readable audio file ({_reason(exc)})") from exc
        with f:
            yield f


def probe_audio(path: str | Path, *, limits: AudioLimits | None = None) -> AudioInfo:
    """Read the header of an audio file. Raises AudioError if it is not readable audio, or if
    its rate, channels or duration exceed ``limits`` (default: ``default_limits()``)."""
    p = check_path(path)
    with _open_audio(p) as f:
        rate, channels, frames, fmt = int(f.samplerate), int(f.channels), int(f.frames), str(f.format)
    declared = declared_wav_frames(p) if fmt == "WAV" else None
    if frames <= 0 or rate <= 0 or channels <= 0:
        raise AudioError(f"{printable(p)}: contains no audio frames (corrupt or truncated file)")
    _check_limits(printable(p), rate, channels, max(frames, declared or 0), limits or default_limits())
    return AudioInfo(path=p, sample_rate=rate, channels=channels, frames=frames, format=fmt,
                     declared_frames=declared)


def iter_audio(path: str | Path, *, sample_rate: int, chunk_seconds: float = 60.0,
               limits: AudioLimits | None = None) -> Iterator[np.ndarray]:
    """Decode ``path`` chunk by chunk: mono float32 (n,) arrays at ``sample_rate`` Hz.

    Each read holds at most ``limits.decode_budget_bytes`` of raw samples (and at most
    ``chunk_seconds`` of audio), whatever the file's rate, channels or length. Raises AudioError
    for unreadable, corrupt, truncated, non-finite, absurdly loud or silent audio, and for files
    past ``limits`` (silence is only known at the end, so that error comes after the last chunk).
    """
    limits = limits or default_limits()
    info = probe_audio(path, limits=limits)
    p, name = info.path, printable(info.path)
    by_budget = limits.decode_budget_bytes // (4 * info.channels)
    chunk_frames = max(1, min(int(chunk_seconds * info.sample_rate), by_budget))
    resampler = None
    if info.sample_rate != sample_rate:
        resampler = soxr.ResampleStream(info.sample_rate, sample_rate, 1, dtype="float32",
                                        quality=_RESAMPLE_QUALITY)
    decoded = 0
    peak = 0.0
    try:
        with _open_audio(p) as f:
            while True:
                with _quiet_c_stderr():
                    raw = f.read(chunk_frames, dtype="float32", always_2d=True)  # (frames, channels)
                last = raw.shape[0] < chunk_frames
                decoded += raw.shape[0]
                if decoded > info.frames * 1.1 + chunk_frames:  # a header that lied about its length
                    raise AudioError(f"{name}: decodes to more samples than its header declares "
                                     f"({info.frames}); the file is corrupt")
                mono = raw.mean(axis=1, dtype=np.float32) if raw.shape[1] > 1 else raw[:, 0]
                del raw
                _check_samples(name, mono)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if mono.size:
                    peak = max(peak, float(np.max(np.abs(mono))))
                    yield np.ascontiguousarray(mono, dtype=np.float32)
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise AudioError(f"{name}: corrupt audio data ({_reason(exc)})") from exc
    if decoded == 0:
        raise AudioError(f"{name}: contains no audio frames (corrupt or truncated file)")
    tolerance = _MP3_TRUNCATION_TOLERANCE if info.format == "MP3" else _TRUNCATION_TOLERANCE
    declared = max(info.frames, info.declared_frames or 0)
    if decoded < tolerance * declared:
        raise AudioError(f"{name}: truncated file (decoded {decoded} of {declared} declared samples)")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: silent (peak {_dbfs(peak)} dBFS, below {_dbfs(SILENCE_PEAK)} dBFS)")


def load_audio(path: str | Path, *, sample_rate: int = 16_000, min_seconds: float = 0.0,
               limits: AudioLimits | None = None) -> np.ndarray:
    """Decode a whole file: mono float32 (n,) in [-1, 1] at ``sample_rate`` Hz.

    Raises AudioError as ``iter_audio`` does, and if it lasts less than ``min_seconds``.
    """
    signal = np.concatenate(list(iter_audio(path, sample_rate=sample_rate, chunk_seconds=600.0, limits=limits)))
    seconds = signal.size / sample_rate
    if seconds < min_seconds:
        raise AudioError(f"{printable(path)}: {seconds:.2f} s is shorter than one block ({min_seconds:.2f} s)")
    return signal


def _check_limits(name: str, rate: int, channels: int, frames: int, limits: AudioLimits) -> None:
    """AudioError if a header's rate, channels or duration is past ``limits`` (before any decoding)."""
    hint = f"(raise it with {LIMITS_ENV}, e.g. {LIMITS_ENV}="
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise AudioError(f"{name}: sample rate {rate} Hz is outside {limits.min_sample_rate}.."
                         f"{limits.max_sample_rate} Hz {hint}min_sample_rate={min(rate, limits.min_sample_rate)},"
                         f"max_sample_rate={max(rate, limits.max_sample_rate)} if the file is genuine)")
    if channels > limits.max_channels:
        raise AudioError(f"{name}: {channels} channels, more than {limits.max_channels} {hint}max_channels="
                         f"{channels} if the file is genuine)")
    seconds = frames / rate
    if seconds > limits.max_seconds:
        raise AudioError(f"{name}: {seconds / 3600:.1f} h long, more than {limits.max_seconds / 3600:.1f} h "
                         f"{hint}max_seconds={int(seconds) + 1} if the file is genuine)")


def _check_samples(name: str, mono: np.ndarray) -> None:
    """AudioError for NaN / infinite samples or an absurd level (a corrupt float file)."""
    if not mono.size:
        return
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{name}: contains NaN or infinite samples (corrupt float audio)")
    peak = float(np.max(np.abs(mono)))
    if peak > C.MAX_ABS_SAMPLE:
        raise AudioError(f"{name}: samples reach {peak:.3g}, far past full scale (1.0; at most {C.MAX_ABS_SAMPLE:g} "
                         "accepted): corrupt float audio")


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
