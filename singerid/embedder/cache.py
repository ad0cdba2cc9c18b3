"""Feature cache: the log-mel of each audio file, computed once and memory-mapped afterwards.

A file's features are stored at ``CACHE/<feature fingerprint>/<content sha256>.npy`` as a
float32 (frames, n_mels) NumPy array: frame-major, so that one block (32 frames) is one
contiguous 16 KiB read. The key is the file's content (not its path or mtime) plus the
``FeatureConfig`` fingerprint, so a renamed file still hits and a changed config misses.
Entries are written to a temporary name and renamed, so a killed run leaves no torn entry.

Stem caches (``stem="vocals"`` or ``"accompaniment"``) live at
``CACHE/<feature fingerprint>-sep-<separation fingerprint>/<stem>/<content sha256>.npy``: the
log-mel of the voice / accompaniment that ``singerid.separation`` separates from the file.
A miss separates the song once and writes both stems, so training, evaluation and reruns
separate each song once.
float32 rather than float16: 5.4 GB for artist20, and no rounding of the features the model
sees at inference (which reads audio directly).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from singerid.audio import LogMel, check_path, compute_logmel, iter_audio
from singerid.config import FeatureConfig
from singerid.errors import AudioError, ParameterError
from singerid.frontend import STEMS, FrontEnd, FrontEndConfig

SEPARATED_STEMS = tuple(s for s in STEMS if s != "mix")  # ("vocals", "accompaniment")
PCM_SUFFIX = ".pcm16.npy"  # a separated stem's audio, int16, beside its log-mel entry

log = logging.getLogger(__name__)

_HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class CachedFeatures:
    """Where one file's cached log-mel lives and how long it is."""

    path: Path  # the .npy file in the cache
    n_frames: int


class FeatureCache:
    """Content-addressed log-mel cache for one ``FeatureConfig`` (and stem) under ``cache_dir``.

    ``stem``: "mix" (the file as it is), "vocals" or "accompaniment" (separated with
    ``separation``, a ``SeparationConfig``; default: the default one). ``hits`` / ``misses``
    count lookups served from disk / computed from audio.
    """

    def __init__(self, cache_dir: Path, cfg: FeatureConfig, *, stem: str = "mix", separation: Any = None,
                 device: str = "cpu") -> None:
        if stem not in STEMS:
            raise ParameterError(f"stem must be mix, vocals or accompaniment, got {stem!r}")
        self.cfg = cfg
        self.stem = stem
        self.root = Path(cache_dir)
        self._front: FrontEnd | None = None
        if stem == "mix":
            self.dir = self.root / cfg.fingerprint()
        else:
            front_cfg = FrontEndConfig(input="vocals", **({"separation": separation} if separation else {}))
            self._front = FrontEnd(cfg, front_cfg, device=device)
            self.dir = self._stem_dir(stem)
        self._logmel = LogMel(cfg)
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_input(cls, cache_dir: Path, cfg: FeatureConfig, front_end: FrontEndConfig, *,
                  device: str = "cpu") -> FeatureCache:
        """The cache of what a model with ``front_end`` hears (the mix or the separated vocals)."""
        if front_end.input == "mix":
            return cls(cache_dir, cfg)
        return cls(cache_dir, cfg, stem="vocals", separation=front_end.separation, device=device)

    def sibling(self, stem: str) -> FeatureCache:
        """The cache of another stem of the same songs (sharing the separator)."""
        if stem == self.stem:
            return self
        sep = self._front.cfg.separation if self._front is not None else None
        other = FeatureCache(self.root, self.cfg, stem=stem, separation=sep)
        if self._front is not None and other._front is not None:
            other._front = self._front
        return other

    def _stem_dir(self, stem: str) -> Path:
        assert self._front is not None
        return self.root / f"{self.cfg.fingerprint()}-sep-{self._front.cfg.separation.fingerprint()}" / stem

    def entry_path(self, audio_path: Path) -> Path:
        """The cache file for ``audio_path`` (hashes the file's bytes; decodes nothing).

        Raises AudioError if the file is missing, empty or unreadable.
        """
        path = check_path(audio_path)
        try:
            return self.dir / f"{content_sha256(path)}.npy"
        except OSError as exc:
            raise AudioError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc

    def ensure(self, audio_path: Path) -> CachedFeatures:
        """Make sure ``audio_path`` is cached; return where. Raises AudioError for bad audio."""
        entry = self.entry_path(audio_path)
        if entry.is_file():
            try:
                frames = np.load(entry, mmap_mode="r")
            except (OSError, ValueError) as exc:  # a foreign or damaged file: recompute it
                log.warning("%s: unreadable cache entry (%s); recomputing", entry, exc)
            else:
                if frames.ndim == 2 and frames.shape[1] == self.cfg.n_mels and frames.dtype == np.float32:
                    self.hits += 1
                    return CachedFeatures(entry, int(frames.shape[0]))
                log.warning("%s: cache entry has shape %s, recomputing", entry, frames.shape)
        if self._front is not None:
            return self.ensure_separated(audio_path)
        logmel = compute_logmel(audio_path, self.cfg, logmel=self._logmel)  # (n_mels, frames)
        _write_entry(entry, logmel)
        self.misses += 1
        return CachedFeatures(entry, int(logmel.shape[1]))

    def waveform(self, audio_path: Path) -> np.ndarray:
        """The stem's audio: float32 (n,) at the feature sample rate (the decoded file for "mix").

        Separated stems are kept as 16-bit PCM beside their log-mel, so other models (GE2E, MFCC)
        hear the same separated voice without a second separation. Raises AudioError.
        """
        if self._front is None:
            return np.concatenate(list(iter_audio(audio_path, sample_rate=self.cfg.sample_rate)))
        entry = self.entry_path(audio_path)
        pcm = entry.with_name(entry.stem + PCM_SUFFIX)
        if not pcm.is_file():
            self.ensure_separated(audio_path)
        return np.load(pcm, allow_pickle=False).astype(np.float32) / 32767.0

    def ensure_separated(self, audio_path: Path) -> CachedFeatures:
        """Separate ``audio_path`` (once for all stems) and write every stem's entries: log-mel and PCM."""
        entry = self.entry_path(audio_path)
        stems, waves = self._separate(audio_path)
        for stem, stem_logmel in stems.items():
            _write_entry(self._stem_dir(stem) / entry.name, stem_logmel)
            _write_pcm(self._stem_dir(stem) / f"{entry.stem}{PCM_SUFFIX}", waves[stem])
        self.misses += 1
        return CachedFeatures(entry, int(stems[self.stem].shape[1]))

    def _separate(self, audio_path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Log-mel float32 (n_mels, frames) and audio float32 (n,) of each separated stem, chunk by chunk
        exactly as ``FrontEnd`` separates a file at query time."""
        assert self._front is not None
        separator = self._front.separator()
        pieces: dict[str, list[np.ndarray]] = {s: [] for s in SEPARATED_STEMS}
        for chunk in iter_audio(audio_path, sample_rate=self.cfg.sample_rate):
            stems = separator.separate(chunk, sample_rate=self.cfg.sample_rate)
            for s in SEPARATED_STEMS:
                pieces[s].append(getattr(stems, s))
        n_samples = sum(p.size for p in pieces["vocals"])
        if n_samples < self.cfg.block_frames * self.cfg.hop_samples:
            raise AudioError(f"{Path(audio_path)}: {n_samples / self.cfg.sample_rate:.2f} s is shorter than one "
                             f"block ({self.cfg.block_seconds:.2f} s)")
        waves = {s: np.concatenate(p) for s, p in pieces.items()}
        return {s: self._logmel(w) for s, w in waves.items()}, waves

    def logmel(self, audio_path: Path) -> np.ndarray:
        """Read-only memory map float32 (frames, n_mels) of the file's log-mel (dB)."""
        return open_features(self.ensure(audio_path).path)


def _write_entry(entry: Path, logmel: np.ndarray) -> None:
    """Write float32 (n_mels, frames) as the frame-major entry, atomically."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(logmel.shape[1], logmel.shape[0]))
    out[:] = logmel.T  # (frames, n_mels)
    out.flush()
    del out
    os.replace(tmp, entry)


def _write_pcm(path: Path, audio: np.ndarray) -> None:
    """Write float32 audio (n,) as int16 PCM .npy, atomically."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16))
    os.replace(tmp, path)


def open_features(path: Path) -> np.ndarray:
    """Memory-map a cache entry: read-only float32 (frames, n_mels)."""
    return np.load(path, mmap_mode="r")


def content_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
