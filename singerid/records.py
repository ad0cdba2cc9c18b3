"""Frozen records that cross module boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True, slots=True)
class Track:
    """One song of a dataset, with its label and split.

    ``song_id`` is unique within the dataset and stable across runs (e.g. the artist20 list
    entry ``aerosmith/Aerosmith/01-Make_It``).
    """

    path: Path
    singer: str
    song_id: str
    split: Split
    album: str | None = None
    dataset: str = "folder"


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One reference block returned for a query block."""

    block_id: int  # FAISS id = primary key of the block in the metadata store
    similarity: float  # cosine similarity (inner product of unit vectors), in [-1, 1]
    singer: str
    song: str  # song id or path of the reference song
    offset_seconds: float  # start of the reference block within its song


@dataclass(frozen=True, slots=True)
class BlockDecision:
    """The vote of one query block."""

    offset_seconds: float
    singer: str
    votes: int  # neighbours (of K) that named ``singer``; for softmax, 0
    score: float  # summed similarity of those neighbours; for softmax, the probability


@dataclass(frozen=True, slots=True)
class SongDecision:
    """A song-level answer with the evidence behind it."""

    song: str
    singer: str  # predicted singer, or "unknown" when below the acceptance threshold
    vote_share: float  # fraction of blocks that voted for ``singer``
    n_blocks: int
    runners_up: tuple[tuple[str, float], ...] = ()  # (singer, vote share), best first
    evidence: tuple[Neighbour, ...] = ()  # nearest reference blocks of the winning singer
    mean_similarity: float = 0.0  # mean top-1 similarity of the query blocks
    method: str = "knn"
    extra: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.song)
