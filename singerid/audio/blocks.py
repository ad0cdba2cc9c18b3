"""Cut a log-mel spectrogram into the paper's blocks (32 frames, about 1 s). No torch here.

Block ``i`` starts at frame ``i * block_hop_frames``; its start time in seconds is
``start_frame * hop_samples / sample_rate``. A trailing partial block is dropped. Both the
whole-array function and the streaming one use ``block_starts`` so their boundaries agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from singerid.config import FeatureConfig


@dataclass(frozen=True, slots=True)
class BlockBatch:
    """Consecutive blocks of one song.

    blocks: float32 (n, n_mels, block_frames), log-mel dB.
    offsets_seconds: float64 (n,), start time of each block in the song.
    """

    blocks: np.ndarray
    offsets_seconds: np.ndarray

    def __len__(self) -> int:
        return int(self.blocks.shape[0])


def n_blocks(n_frames: int, *, block_frames: int, block_hop_frames: int) -> int:
    """Number of whole blocks in ``n_frames`` frames."""
    if n_frames < block_frames:
        return 0
    return 1 + (n_frames - block_frames) // block_hop_frames


def block_starts(n_frames: int, *, block_frames: int, block_hop_frames: int) -> np.ndarray:
    """int64 (n_blocks,) start frame of each whole block."""
    count = n_blocks(n_frames, block_frames=block_frames, block_hop_frames=block_hop_frames)
    return np.arange(count, dtype=np.int64) * block_hop_frames


def segment_blocks(logmel: np.ndarray, *, block_frames: int, block_hop_frames: int) -> np.ndarray:
    """Cut float32 (n_mels, frames) into float32 (n_blocks, n_mels, block_frames) (a copy)."""
    starts = block_starts(logmel.shape[1], block_frames=block_frames, block_hop_frames=block_hop_frames)
    if starts.size == 0:
        return np.zeros((0, logmel.shape[0], block_frames), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(logmel, block_frames, axis=1)  # (mels, frames-bf+1, bf)
    return np.ascontiguousarray(view[:, starts, :].transpose(1, 0, 2), dtype=np.float32)


def stream_blocks(logmel_chunks: Iterable[np.ndarray], cfg: FeatureConfig) -> Iterator[BlockBatch]:
    """Turn consecutive log-mel pieces into consecutive ``BlockBatch``es, in bounded memory.

    Applies ``cfg.silence_db`` (drops blocks whose mean dB is below it) when it is set.
    The union of the batches equals ``segment_blocks`` of the concatenated log-mel.
    """
    bf, hop = cfg.block_frames, cfg.block_hop_frames
    seconds_per_frame = cfg.hop_samples / cfg.sample_rate
    buf = np.zeros((cfg.n_mels, 0), dtype=np.float32)
    buf_start = 0  # global frame index of buf[:, 0]; always a block start
    for piece in logmel_chunks:
        buf = np.concatenate([buf, piece], axis=1)
        blocks = segment_blocks(buf, block_frames=bf, block_hop_frames=hop)
        if len(blocks) == 0:
            continue
        starts = buf_start + np.arange(len(blocks), dtype=np.int64) * hop
        consumed = len(blocks) * hop
        buf, buf_start = buf[:, consumed:], buf_start + consumed
        batch = _drop_silent(BlockBatch(blocks, starts * seconds_per_frame), cfg.silence_db)
        if len(batch):
            yield batch


def block_level_db(blocks: np.ndarray) -> np.ndarray:
    """float64 (n,) level of each block: 10 log10 of its mean mel power (frames x bands).

    Digital silence is -100 dB; a -20 dBFS 440 Hz sine measures about +1 dB, 60 dB quieter -42 dB.
    """
    power = np.power(10.0, blocks.astype(np.float64) / 10.0)
    return 10.0 * np.log10(np.maximum(power.mean(axis=(1, 2)), 1e-10))


def _drop_silent(batch: BlockBatch, silence_db: float | None) -> BlockBatch:
    if silence_db is None:
        return batch
    keep = block_level_db(batch.blocks) >= silence_db
    return BlockBatch(batch.blocks[keep], batch.offsets_seconds[keep])
