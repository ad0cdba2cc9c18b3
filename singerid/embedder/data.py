"""Training blocks read from the feature cache, a batch at a time, never all in RAM.

``build_block_table`` lists every block (track, start frame, label) of a set of cached
tracks; ``BlockDataset`` reads a batch of those blocks from the memory-mapped cache files;
``epoch_batches`` is the seeded shuffle of one epoch (a pure function of seed and epoch, so a
resumed run sees exactly the batches the uninterrupted run would have seen).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from singerid.audio.blocks import block_level_db, block_starts
from singerid.config import FeatureConfig
from singerid.embedder.cache import open_features

MAX_OPEN_MAPS = 256  # ours: memory maps kept open per process (each holds a file descriptor)


@dataclass(frozen=True, slots=True)
class LabelledFeatures:
    """One cached track with its class label."""

    features_path: Path  # cache entry, float32 (frames, n_mels)
    n_frames: int
    label: int  # index into the sorted singer list
    album: str = ""  # "<singer>/<album>" (or the song id where a dataset has no albums): remix partners differ
    source: Path | None = None  # the audio file the features were computed from


@dataclass(frozen=True, slots=True)
class BlockTable:
    """Every usable block of a set of tracks, as three aligned arrays.

    track: int32 (n,) index into the track list; start: int64 (n,) first frame; label:
    int64 (n,) class of the block's singer.
    """

    track: np.ndarray
    start: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return int(self.track.shape[0])


def build_block_table(tracks: Sequence[LabelledFeatures], cfg: FeatureConfig) -> BlockTable:
    """List the blocks of ``tracks`` with ``cfg``'s block size and hop (and silence rule)."""
    track_ids, starts, labels = [], [], []
    for i, item in enumerate(tracks):
        s = block_starts(item.n_frames, block_frames=cfg.block_frames, block_hop_frames=cfg.block_hop_frames)
        if cfg.silence_db is not None and s.size:
            s = s[_block_levels(item.features_path, s, cfg.block_frames) >= cfg.silence_db]
        track_ids.append(np.full(s.size, i, dtype=np.int32))
        starts.append(s.astype(np.int64))
        labels.append(np.full(s.size, item.label, dtype=np.int64))
    if not tracks:
        return BlockTable(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return BlockTable(np.concatenate(track_ids), np.concatenate(starts), np.concatenate(labels))


def _block_levels(features_path: Path, starts: np.ndarray, block_frames: int) -> np.ndarray:
    frames = open_features(features_path)  # (frames, n_mels)
    blocks = np.stack([frames[s:s + block_frames].T for s in starts])  # (n, n_mels, block_frames)
    return block_level_db(blocks)


class BlockDataset(torch.utils.data.Dataset):
    """Batches of blocks from cached features. ``ds[indices]`` -> (x, y).

    x: float32 tensor (len(indices), n_mels, block_frames), log-mel dB; y: int64 (len(indices),).
    Memory maps are opened lazily per process (so the dataset pickles small for loader
    workers) and at most ``MAX_OPEN_MAPS`` stay open.
    """

    def __init__(self, tracks: Sequence[LabelledFeatures], table: BlockTable, *, block_frames: int) -> None:
        self.paths = tuple(t.features_path for t in tracks)
        self.table = table
        self.block_frames = block_frames
        self._maps: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.table)

    def __getstate__(self) -> dict:
        return {"paths": self.paths, "table": self.table, "block_frames": self.block_frames}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._maps = OrderedDict()

    def __getitem__(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        bf = self.block_frames
        rows = [self._map(int(self.table.track[i]))[self.table.start[i]:self.table.start[i] + bf] for i in idx]
        x = np.stack(rows).transpose(0, 2, 1)  # (batch, n_mels, block_frames)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(self.table.label[idx])

    def _map(self, track: int) -> np.ndarray:
        frames = self._maps.get(track)
        if frames is None:
            frames = open_features(self.paths[track])  # (frames, n_mels), read-only memory map
            self._maps[track] = frames
            if len(self._maps) > MAX_OPEN_MAPS:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(track)
        return frames


def epoch_batches(n_blocks: int, *, batch_size: int, seed: int, epoch: int, shuffle: bool = True) -> list[np.ndarray]:
    """The batches (int64 index arrays) of one epoch: a shuffle seeded by (seed, epoch).

    The last batch may be smaller. The same arguments always give the same batches.
    """
    order = np.random.default_rng([seed, epoch]).permutation(n_blocks) if shuffle else np.arange(n_blocks)
    return [order[i:i + batch_size] for i in range(0, n_blocks, batch_size)]


def make_loader(dataset: BlockDataset, batches: list[np.ndarray], *, workers: int) -> torch.utils.data.DataLoader:
    """A DataLoader yielding (x, y) for ``batches`` in order, with ``workers`` processes."""
    return torch.utils.data.DataLoader(dataset, sampler=batches, batch_size=None, num_workers=workers,
                                       persistent_workers=False)
