"""Separate audio files into stem files on disk, streaming, one file's failure never stopping the rest.

``separate_files(separator, paths, out_dir)`` writes ``OUT/<file stem>.<stem>.<format>`` for each
input, decoding, separating and writing chunk by chunk (memory bounded by the separator's
``chunk_seconds``). Stems are written under a temporary name and renamed when the file is done,
so a failed or interrupted file leaves no stem behind.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from singerid.errors import AudioError, ParameterError
from singerid.progress import Progress, ProgressArg
from singerid.separation.separator import SAMPLE_RATE_HZ, Separator

log = logging.getLogger(__name__)

STEM_NAMES = ("vocals", "accompaniment")
FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "FLOAT")}  # extension -> (format, subtype)


@dataclass(frozen=True, slots=True)
class FileResult:
    """What happened to one input file."""

    path: str
    ok: bool
    seconds: float  # audio duration separated (0 if failed)
    outputs: tuple[str, ...]  # stem files written
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SeparateSummary:
    """The outcome of ``separate_files``."""

    results: tuple[FileResult, ...]
    wall_seconds: float  # decode + separate + write

    @property
    def n_failed(self) -> int:
        return sum(not r.ok for r in self.results)

    @property
    def audio_seconds(self) -> float:
        return sum(r.seconds for r in self.results)

    @property
    def x_real_time(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def line(self) -> str:
        """One summary line, e.g. ``separated 3 files (1 failed), 612.0 s of audio in 9.1 s (67x real time)``."""
        n = len(self.results)
        failed = f" ({self.n_failed} failed)" if self.n_failed else ""
        return (f"separated {n - self.n_failed} of {n} file(s){failed}, {self.audio_seconds:,.1f} s of audio "
                f"in {self.wall_seconds:,.1f} s ({self.x_real_time:,.0f}x real time)")


def stem_paths(path: str | Path, out_dir: str | Path, stems: Sequence[str], audio_format: str) -> tuple[Path, ...]:
    """``OUT/<file stem>.<stem>.<format>`` for each stem."""
    return tuple(Path(out_dir) / f"{Path(path).stem}.{stem}.{audio_format}" for stem in stems)


def separate_files(separator: Separator, paths: Sequence[str | Path], out_dir: str | Path, *,
                   stems: Sequence[str] = STEM_NAMES, audio_format: str = "flac",
                   progress: ProgressArg = False) -> SeparateSummary:
    """Separate each file of ``paths`` into ``stems`` under ``out_dir`` (created if needed).

    A bad file (unreadable, corrupt, silent, non-finite, or whose output names collide with an
    earlier file's) is recorded as failed and the next one is processed. ``progress``: a
    ``singerid.progress`` mode (or the old bool): a bar, or one line at the end. Raises ParameterError
    for an unknown stem or format.
    """
    bad = [s for s in stems if s not in STEM_NAMES]
    if bad or not stems:
        raise ParameterError(f"unknown stem(s) {bad or list(stems)}: choose from {', '.join(STEM_NAMES)}")
    if audio_format not in FORMATS:
        raise ParameterError(f"unknown format {audio_format!r}: choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    claimed: dict[Path, str] = {}
    results: list[FileResult] = []
    start = time.perf_counter()
    with Progress("separate", total=len(paths), unit="file", progress=progress) as bar:
        for path in paths:
            results.append(_separate_checked(separator, path, out, claimed, stems, audio_format))
            bar.update(1, failed=sum(not r.ok for r in results))
        bar.close(f"{sum(r.seconds for r in results):,.1f} s of audio"
                  + (f", {sum(not r.ok for r in results)} failed" if not all(r.ok for r in results) else ""))
    return SeparateSummary(results=tuple(results), wall_seconds=time.perf_counter() - start)


def _separate_checked(separator: Separator, path: str | Path, out: Path, claimed: dict[Path, str],
                      stems: Sequence[str], audio_format: str) -> FileResult:
    """Separate one file unless its outputs collide with an earlier file's (``claimed`` is updated)."""
    targets = stem_paths(path, out, stems, audio_format)
    clash = next((claimed[t] for t in targets if t in claimed), None)
    if clash is not None:
        return FileResult(str(path), False, 0.0, (), f"{path}: output {targets[0].name} would overwrite "
                                                     f"the stems of {clash}; rename one of them")
    claimed.update({t: str(path) for t in targets})
    try:
        seconds = _separate_one(separator, path, dict(zip(stems, targets)), audio_format)
    except AudioError as exc:
        log.info("failed: %s", exc)
        return FileResult(str(path), False, 0.0, (), str(exc))
    return FileResult(str(path), True, seconds, tuple(str(t) for t in targets))


def _separate_one(separator: Separator, path: str | Path, targets: dict[str, Path], audio_format: str) -> float:
    """Stream one file into its stem files; returns its duration in seconds. Raises AudioError."""
    fmt, subtype = FORMATS[audio_format]
    parts = {stem: target.with_name(f".{target.name}.part") for stem, target in targets.items()}
    writers = {stem: sf.SoundFile(str(p), "w", samplerate=SAMPLE_RATE_HZ, channels=1, format=fmt, subtype=subtype)
               for stem, p in parts.items()}
    n = 0
    try:
        for piece in separator.iter_separate_file(path):
            for stem, writer in writers.items():
                writer.write(getattr(piece, stem))
            n += len(piece)
    except BaseException:
        for writer in writers.values():
            writer.close()
        for p in parts.values():
            p.unlink(missing_ok=True)
        raise
    for writer in writers.values():
        writer.close()
    for stem, p in parts.items():
        os.replace(p, targets[stem])
    return n / SAMPLE_RATE_HZ
