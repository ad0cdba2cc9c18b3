"""Feature cache: the log-mel of each audio file, computed once and memory-mapped afterwards.

A file's features are stored at ``CACHE/<feature fingerprint>/<content sha256>.npy`` as a
float32 (frames, n_mels) NumPy array: frame-major, so that one block (32 frames) is one
contiguous 16 KiB read. The key is the file's content (not its path or mtime) plus the
``FeatureConfig`` fingerprint, so a renamed file still hits and a changed config misses.
Entries are written to a temporary name and renamed, so a killed run leaves no torn entry.
float32 rather than float16: 5.4 GB for artist20, and no rounding of the features the model
sees at inference (which reads audio directly).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singerid.audio import LogMel, check_path, compute_logmel
from singerid.config import FeatureConfig
from singerid.errors import AudioError

log = logging.getLogger(__name__)

_HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class CachedFeatures:
    """Where one file's cached log-mel lives and how long it is."""

    path: Path  # the .npy file in the cache
    n_frames: int


class FeatureCache:
    """Content-addressed log-mel cache for one ``FeatureConfig`` under ``cache_dir``.

    ``hits`` / ``misses`` count lookups served from disk / computed from audio.
    """

    def __init__(self, cache_dir: Path, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.dir = Path(cache_dir) / cfg.fingerprint()
        self._logmel = LogMel(cfg)
        self.hits = 0
        self.misses = 0

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
        logmel = compute_logmel(audio_path, self.cfg, logmel=self._logmel)  # (n_mels, frames)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(logmel.shape[1], logmel.shape[0]))
        out[:] = logmel.T  # (frames, n_mels)
        out.flush()
        del out
        os.replace(tmp, entry)
        self.misses += 1
        return CachedFeatures(entry, int(logmel.shape[1]))

    def logmel(self, audio_path: Path) -> np.ndarray:
        """Read-only memory map float32 (frames, n_mels) of the file's log-mel (dB)."""
        return open_features(self.ensure(audio_path).path)


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
