"""Audio front end: decode and validate, log-mel, 1-s blocks. Never imports torch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from singerid import constants as C
from singerid.audio.env import ensure_numba_cache

ensure_numba_cache()  # before librosa (features) loads numba

from singerid.audio.blocks import BlockBatch, block_starts, n_blocks, segment_blocks, stream_blocks  # noqa: E402
from singerid.audio.features import LogMel  # noqa: E402
from singerid.audio.load import (  # noqa: E402
    AudioInfo, AudioLimits, Waveform, check_path, default_limits, iter_audio, iter_waveform, load_audio, probe_audio,
)
from singerid.config import FeatureConfig  # noqa: E402
from singerid.errors import AudioError, printable  # noqa: E402

ChunkTransform = Callable[[np.ndarray], np.ndarray]  # mono float32 (n,) -> float32 (n,), e.g. voice separation
Source = str | Path | Waveform  # an audio file, or audio already in memory

__all__ = [
    "AudioInfo", "AudioLimits", "ChunkTransform", "BlockBatch", "Source", "Waveform", "LogMel", "block_starts",
    "check_path", "compute_logmel", "default_limits", "iter_audio",
    "iter_song_blocks", "iter_waveform", "load_audio", "n_blocks", "probe_audio", "segment_blocks", "song_blocks",
    "stream_blocks",
]


def compute_logmel(path: Source, cfg: FeatureConfig, *, logmel: LogMel | None = None,
                   chunk_seconds: float = C.STREAM_CHUNK_SECONDS, transform: ChunkTransform | None = None
                   ) -> np.ndarray:
    """Log-mel of a whole file: float32 (n_mels, frames). Raises AudioError (also if < 1 block).

    ``transform`` is applied to each decoded chunk first (the voice separator of a "vocals"
    front end), exactly as ``iter_song_blocks`` applies it, so both give the same features.
    Holds the decoded signal in memory; use ``iter_song_blocks`` for unbounded files.
    """
    front = logmel or LogMel(cfg)
    signal = np.concatenate(list(_decoded(path, cfg, chunk_seconds, transform)))
    _check_long_enough(path, signal.size, cfg)
    return front(signal)


def iter_song_blocks(path: Source, cfg: FeatureConfig, *, logmel: LogMel | None = None,
                     chunk_seconds: float = C.STREAM_CHUNK_SECONDS,
                     transform: ChunkTransform | None = None) -> Iterator[BlockBatch]:
    """Stream the blocks of one file in bounded memory (about ``chunk_seconds`` of audio).

    ``transform`` maps each decoded chunk before the log-mel (see ``compute_logmel``). Raises
    AudioError for bad audio, for a file shorter than one block, and when every block
    was dropped as silent.
    """
    front = logmel or LogMel(cfg)
    samples_seen = 0
    yielded = 0

    def counted() -> Iterator[np.ndarray]:
        nonlocal samples_seen
        for chunk in _decoded(path, cfg, chunk_seconds, transform):
            samples_seen += chunk.size
            yield chunk

    for batch in stream_blocks(front.stream(counted()), cfg):
        yielded += len(batch)
        yield batch
    _check_long_enough(path, samples_seen, cfg)
    if yielded == 0:
        raise AudioError(f"{_name(path)}: every block is below the silence threshold ({cfg.silence_db} dB)")


def song_blocks(path: Source, cfg: FeatureConfig, *, logmel: LogMel | None = None,
                transform: ChunkTransform | None = None) -> BlockBatch:
    """All blocks of one file as a single ``BlockBatch`` (see ``iter_song_blocks``)."""
    batches = list(iter_song_blocks(path, cfg, logmel=logmel, transform=transform))
    return BlockBatch(np.concatenate([b.blocks for b in batches]),
                      np.concatenate([b.offsets_seconds for b in batches]))


def _decoded(path: Source, cfg: FeatureConfig, chunk_seconds: float,
             transform: ChunkTransform | None) -> Iterator[np.ndarray]:
    decode = iter_waveform if isinstance(path, Waveform) else iter_audio
    for chunk in decode(path, sample_rate=cfg.sample_rate, chunk_seconds=chunk_seconds):
        yield chunk if transform is None else transform(chunk)


def _check_long_enough(path: Source, n_samples: int, cfg: FeatureConfig) -> None:
    """A file must hold one block's duration (block_frames * hop_samples samples)."""
    if n_samples < cfg.block_frames * cfg.hop_samples:
        seconds = n_samples / cfg.sample_rate
        raise AudioError(f"{_name(path)}: {seconds:.2f} s is shorter than one block ({cfg.block_seconds:.2f} s)")


def _name(source: Source) -> str:
    return source.name if isinstance(source, Waveform) else printable(Path(source))
